"""resolve_model_path for s3:// URIs against SeaweedFS: mirror a prefix, skip unchanged files."""

from __future__ import annotations

import io
from pathlib import Path

import pytest

from lora_trainer.errors import InvalidInputError
from lora_trainer.models.resolve import resolve_model_path

pytestmark = [pytest.mark.trainer, pytest.mark.s3]


@pytest.fixture
def s3_env(s3, tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    """S3 credentials in the environment and a fresh cache root; returns the s3 fixture."""
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", s3.access_key)
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", s3.secret_key)
    monkeypatch.setenv("LORA_CACHE_DIR", str(tmp_path / "cache"))
    return s3


@pytest.fixture
def uploaded_sd(s3_env, s3_bucket, tmp_path_factory) -> dict[str, bytes]:
    """builtin://tiny-sd uploaded under models/tiny-sd/; returns {relative key: content}."""
    from lora_trainer.models.builtin_sd import tiny_sd_path

    source = tiny_sd_path()
    client = s3_env.client()
    contents = {}
    for path in sorted(source.rglob("*")):
        if path.is_file():
            relative = path.relative_to(source).as_posix()
            client.fput_object(s3_bucket, f"models/tiny-sd/{relative}", str(path))
            contents[relative] = path.read_bytes()
    return contents


def _resolve(s3, uri: str) -> Path:
    return resolve_model_path(uri, s3_endpoint=s3.endpoint, s3_secure=s3.secure)


def _put(s3, bucket: str, key: str, data: bytes) -> None:
    s3.client().put_object(bucket, key, io.BytesIO(data), len(data))


def test_prefix_mirrored_to_cache(s3_env, s3_bucket, uploaded_sd, tmp_path):
    folder = _resolve(s3_env, f"s3://{s3_bucket}/models/tiny-sd")

    assert folder == (tmp_path / "cache" / "s3" / s3_bucket / "models" / "tiny-sd").resolve()
    for relative, content in uploaded_sd.items():
        assert (folder / relative).read_bytes() == content, relative


def test_mirrored_pipeline_loads(s3_env, s3_bucket, uploaded_sd):
    from diffusers import StableDiffusionPipeline

    folder = _resolve(s3_env, f"s3://{s3_bucket}/models/tiny-sd/")

    pipeline = StableDiffusionPipeline.from_pretrained(folder)

    assert pipeline.unet.config.sample_size == 8


def test_unchanged_files_not_downloaded(s3_env, s3_bucket, uploaded_sd):
    uri = f"s3://{s3_bucket}/models/tiny-sd"
    folder = _resolve(s3_env, uri)
    before = {path: path.stat().st_mtime_ns for path in folder.rglob("*") if path.is_file()}

    _resolve(s3_env, uri)

    after = {path: path.stat().st_mtime_ns for path in folder.rglob("*") if path.is_file()}
    assert after == before


def test_changed_file_downloaded_again(s3_env, s3_bucket, uploaded_sd):
    uri = f"s3://{s3_bucket}/models/tiny-sd"
    folder = _resolve(s3_env, uri)
    # Same size, new content: only the ETag differs.
    changed = uploaded_sd["model_index.json"].replace(b"{", b" ", 1)
    _put(s3_env, s3_bucket, "models/tiny-sd/model_index.json", changed)

    _resolve(s3_env, uri)

    assert (folder / "model_index.json").read_bytes() == changed


def test_removed_object_removed_locally(s3_env, s3_bucket, uploaded_sd):
    uri = f"s3://{s3_bucket}/models/tiny-sd"
    _put(s3_env, s3_bucket, "models/tiny-sd/extra.txt", b"temporary")
    folder = _resolve(s3_env, uri)
    assert (folder / "extra.txt").is_file()
    s3_env.client().remove_object(s3_bucket, "models/tiny-sd/extra.txt")

    _resolve(s3_env, uri)

    assert not (folder / "extra.txt").exists()
    assert (folder / "model_index.json").is_file()


def test_locally_damaged_file_replaced(s3_env, s3_bucket, uploaded_sd):
    uri = f"s3://{s3_bucket}/models/tiny-sd"
    folder = _resolve(s3_env, uri)
    (folder / "model_index.json").write_bytes(b"truncated")

    _resolve(s3_env, uri)

    assert (folder / "model_index.json").read_bytes() == uploaded_sd["model_index.json"]


def test_single_object_key_downloads_file(s3_env, s3_bucket):
    _put(s3_env, s3_bucket, "weights/model.safetensors", b"0123456789")

    path = _resolve(s3_env, f"s3://{s3_bucket}/weights/model.safetensors")

    assert path.read_bytes() == b"0123456789"


def test_similar_prefix_not_mixed_in(s3_env, s3_bucket):
    _put(s3_env, s3_bucket, "models/a/file.txt", b"a")
    _put(s3_env, s3_bucket, "models/ab/file.txt", b"ab")

    folder = _resolve(s3_env, f"s3://{s3_bucket}/models/a")

    assert sorted(path.name for path in folder.iterdir()) == ["file.txt"]
    assert (folder / "file.txt").read_bytes() == b"a"


def test_empty_prefix_rejected(s3_env, s3_bucket):
    with pytest.raises(InvalidInputError, match=f"s3://{s3_bucket}/models/absent.*matches no objects"):
        _resolve(s3_env, f"s3://{s3_bucket}/models/absent")


def test_missing_bucket_rejected(s3_env):
    with pytest.raises(InvalidInputError, match="NoSuchBucket"):
        _resolve(s3_env, "s3://no-such-bucket-here/models/x")


def test_missing_credentials_rejected(s3_env, monkeypatch):
    monkeypatch.delenv("AWS_ACCESS_KEY_ID")

    with pytest.raises(InvalidInputError, match="AWS_ACCESS_KEY_ID"):
        _resolve(s3_env, "s3://bucket/models/x")


def test_dotdot_prefix_rejected(s3_env):
    with pytest.raises(InvalidInputError, match="'..' part"):
        _resolve(s3_env, "s3://bucket/models/../../etc")

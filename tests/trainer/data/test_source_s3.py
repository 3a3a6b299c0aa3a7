"""s3:// sources against the SeaweedFS S3 server: prefixes, single objects, sidecars, limits, errors."""

from __future__ import annotations

import io
from pathlib import Path

import pytest
from lora_operator.api.training_spec import DatasetSpec, DataSource

from lora_trainer.data.prepare import prepare_image_dataset
from lora_trainer.errors import InvalidInputError
from lora_trainer.sources import FetchedFile, SourceOptions, fetch_source
from tests.datasets import PHOTOS_DIR

pytestmark = pytest.mark.s3

COFFEE = (PHOTOS_DIR / "coffee.png").read_bytes()
HORSE = (PHOTOS_DIR / "horse.png").read_bytes()


@pytest.fixture
def bucket(s3, s3_bucket: str, monkeypatch: pytest.MonkeyPatch) -> str:
    """A bucket holding set/ (two images, a sidecar, a JSON file) and other/, with credentials in the environment."""
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", s3.access_key)
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", s3.secret_key)
    client = s3.client()
    objects = {
        "set/coffee.png": COFFEE,
        "set/coffee.txt": "a cup of coffee".encode(),
        "set/nested/horse.png": HORSE,
        "set/labels.json": b"{}",
        "other/elsewhere.png": HORSE,
    }
    for key, data in objects.items():
        client.put_object(s3_bucket, key, io.BytesIO(data), len(data))
    return s3_bucket


def fetch(s3, uri: str, tmp_path: Path, *, include: list[str] | None = None, max_file_bytes: int = 1 << 20) -> dict[str, FetchedFile]:
    options = SourceOptions(base_dir=tmp_path, s3_endpoint=s3.endpoint, s3_secure=s3.secure, max_file_bytes=max_file_bytes)
    files = fetch_source(DataSource(uri=uri, include=include or []), destination=tmp_path / "downloads", options=options)
    return {file.name: file for file in files}


def test_prefix_downloads_images_and_sidecars(s3, bucket: str, tmp_path: Path) -> None:
    files = fetch(s3, f"s3://{bucket}/set", tmp_path)

    assert sorted(files) == ["coffee.png", "coffee.txt", "nested/horse.png"]
    assert files["nested/horse.png"].path == tmp_path / "downloads" / "nested" / "horse.png"
    assert files["nested/horse.png"].path.read_bytes() == HORSE
    assert files["coffee.txt"].path.read_text(encoding="utf-8") == "a cup of coffee"


def test_include_filters_objects(s3, bucket: str, tmp_path: Path) -> None:
    files = fetch(s3, f"s3://{bucket}/set/", tmp_path, include=["nested/*"])

    assert sorted(files) == ["nested/horse.png"]


def test_single_object_with_sidecar(s3, bucket: str, tmp_path: Path) -> None:
    files = fetch(s3, f"s3://{bucket}/set/coffee.png", tmp_path)

    assert sorted(files) == ["coffee.png", "coffee.txt"]
    assert files["coffee.png"].path.read_bytes() == COFFEE


def test_large_object_not_downloaded(s3, bucket: str, tmp_path: Path) -> None:
    files = fetch(s3, f"s3://{bucket}/set", tmp_path, max_file_bytes=len(HORSE))

    assert files["coffee.png"].path is None
    assert files["coffee.png"].skip_reason.startswith("coffee.png: file too large")
    assert files["nested/horse.png"].path is not None
    assert not (tmp_path / "downloads" / "coffee.png").exists()


def test_empty_prefix_rejected(s3, bucket: str, tmp_path: Path) -> None:
    with pytest.raises(InvalidInputError, match=f"source s3://{bucket}/nothing contains no image file"):
        fetch(s3, f"s3://{bucket}/nothing", tmp_path)


def test_missing_bucket_rejected(s3, bucket: str, tmp_path: Path) -> None:
    with pytest.raises(InvalidInputError, match="check the bucket name"):
        fetch(s3, f"s3://{bucket}-missing/set", tmp_path)


def test_wrong_secret_rejected(s3, bucket: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "not-the-secret")

    with pytest.raises(InvalidInputError, match="AWS_SECRET_ACCESS_KEY"):
        fetch(s3, f"s3://{bucket}/set", tmp_path)


def test_missing_credentials_rejected(s3, bucket: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("AWS_ACCESS_KEY_ID")

    with pytest.raises(InvalidInputError, match=f"cannot read s3://{bucket}/set: S3 credentials are missing"):
        fetch(s3, f"s3://{bucket}/set", tmp_path)


def test_prepare_from_s3(s3, bucket: str, tmp_path: Path) -> None:
    spec = DatasetSpec(sources=[{"uri": f"s3://{bucket}/set"}], resolution=64)

    records = prepare_image_dataset(
        spec, work_dir=tmp_path / "work", base_dir=tmp_path, s3_endpoint=s3.endpoint, s3_secure=s3.secure
    )

    assert [record.name for record in records] == ["coffee.png", "nested/horse.png"]
    assert all(record.accepted for record in records)
    assert records[0].caption == "a cup of coffee"
    assert records[0].source_uri == f"s3://{bucket}/set"

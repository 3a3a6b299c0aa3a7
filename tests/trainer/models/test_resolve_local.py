"""resolve_model_path for builtin://, file:// and pvc:// URIs, and its errors."""

from __future__ import annotations

from pathlib import Path

import pytest

from lora_trainer.errors import InvalidInputError
from lora_trainer.models.resolve import resolve_model_path

pytestmark = pytest.mark.trainer


@pytest.fixture(autouse=True)
def isolated_model_cache(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LORA_CACHE_DIR", str(tmp_path_factory.getbasetemp() / "resolve-model-cache"))


@pytest.fixture
def model_folder(tmp_path: Path) -> Path:
    """A saved builtin://tiny-clip checkpoint under tmp_path/volume/models/tiny clip."""
    from lora_trainer.models.builtin_clip import build_tiny_clip, save_open_clip_checkpoint

    folder = tmp_path / "volume" / "models" / "tiny clip"
    save_open_clip_checkpoint(build_tiny_clip(), folder)
    return folder


def test_builtin_tiny_clip_builds_checkpoint():
    path = resolve_model_path("builtin://tiny-clip")

    assert (path / "open_clip_config.json").is_file()
    assert (path / "open_clip_model.safetensors").is_file()


def test_builtin_tiny_sd_builds_pipeline():
    path = resolve_model_path("builtin://tiny-sd")

    assert (path / "model_index.json").is_file()


@pytest.mark.parametrize("name", ["tiny-sdxl"])
def test_planned_builtins_not_available(name):
    with pytest.raises(InvalidInputError) as caught:
        resolve_model_path(f"builtin://{name}")

    assert f"builtin://{name}" in str(caught.value)
    assert "not available in this version" in str(caught.value)
    assert "builtin://tiny-sd" in str(caught.value)
    assert "builtin://tiny-clip" in str(caught.value)


def test_unknown_builtin_names_supported():
    with pytest.raises(InvalidInputError, match="unknown builtin model 'builtin://huge'.*builtin://tiny-clip"):
        resolve_model_path("builtin://huge")


def test_file_absolute_path(model_folder):
    assert resolve_model_path(f"file://{model_folder}") == model_folder


def test_file_percent_encoded_path(model_folder):
    assert resolve_model_path(model_folder.as_uri()) == model_folder


def test_file_relative_to_base_dir(model_folder, tmp_path):
    path = resolve_model_path("file://volume/models/tiny clip", base_dir=tmp_path)

    assert path == model_folder


def test_file_relative_to_working_dir(model_folder, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path / "volume")

    assert resolve_model_path("file://models/tiny clip").resolve() == model_folder.resolve()


def test_file_missing_names_uri_and_path(tmp_path):
    with pytest.raises(InvalidInputError) as caught:
        resolve_model_path("file://absent", base_dir=tmp_path)

    assert "'file://absent'" in str(caught.value)
    assert str(tmp_path / "absent") in str(caught.value)


def test_pvc_under_mount_root(model_folder, tmp_path, monkeypatch):
    monkeypatch.setenv("LORA_PVC_ROOT", str(tmp_path))

    assert resolve_model_path("pvc://volume/models/tiny clip") == model_folder.resolve()


def test_pvc_default_root(monkeypatch):
    monkeypatch.delenv("LORA_PVC_ROOT", raising=False)

    with pytest.raises(InvalidInputError, match="/mnt/pvc/claim/model"):
        resolve_model_path("pvc://claim/model")


def test_pvc_missing_mentions_mount(tmp_path, monkeypatch):
    monkeypatch.setenv("LORA_PVC_ROOT", str(tmp_path))

    with pytest.raises(InvalidInputError, match="pvc://claim/absent.*LORA_PVC_ROOT"):
        resolve_model_path("pvc://claim/absent")


def test_pvc_escape_rejected(model_folder, tmp_path, monkeypatch):
    monkeypatch.setenv("LORA_PVC_ROOT", str(tmp_path / "volume"))
    (tmp_path / "volume" / "other").mkdir()

    with pytest.raises(InvalidInputError, match="outside its volume claim"):
        resolve_model_path("pvc://models/../other")


def test_pvc_dotdot_claim_rejected(tmp_path, monkeypatch):
    monkeypatch.setenv("LORA_PVC_ROOT", str(tmp_path / "volume"))

    with pytest.raises(InvalidInputError, match="pvc://CLAIM/PATH"):
        resolve_model_path("pvc://../volume")


def test_pvc_without_claim_rejected():
    with pytest.raises(InvalidInputError, match="pvc://CLAIM/PATH"):
        resolve_model_path("pvc:///models/x")


def test_unknown_scheme_lists_supported():
    with pytest.raises(InvalidInputError) as caught:
        resolve_model_path("ftp://host/model")

    assert "'ftp://host/model'" in str(caught.value)
    assert "s3://" in str(caught.value)
    assert "hf://" in str(caught.value)


def test_bare_path_needs_scheme(model_folder):
    with pytest.raises(InvalidInputError, match="no scheme.*file:///absolute/path"):
        resolve_model_path(str(model_folder))

"""pvc://claim/path sources map to LORA_PVC_ROOT/claim/path."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from lora_operator.api.training_spec import DataSource

from lora_trainer.errors import InvalidInputError
from lora_trainer.sources import SourceOptions, fetch_source
from lora_trainer.sources.local import pvc_uri_path
from tests.datasets import PHOTOS_DIR

pytestmark = pytest.mark.unit


@pytest.fixture
def pvc_root(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    root = tmp_path / "mnt" / "pvc"
    (root / "data" / "photos").mkdir(parents=True)
    shutil.copy(PHOTOS_DIR / "coffee.png", root / "data" / "photos" / "coffee.png")
    monkeypatch.setenv("LORA_PVC_ROOT", str(root))
    return root


def test_default_root_is_mnt_pvc(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("LORA_PVC_ROOT", raising=False)

    assert pvc_uri_path("pvc://data/photos") == Path("/mnt/pvc/data/photos")


def test_env_root_used(pvc_root: Path) -> None:
    assert pvc_uri_path("pvc://data/photos") == (pvc_root / "data" / "photos").resolve()


def test_pvc_folder_fetched(pvc_root: Path, tmp_path: Path) -> None:
    source = DataSource(uri="pvc://data/photos")

    files = fetch_source(source, destination=tmp_path / "downloads", options=SourceOptions(base_dir=tmp_path))

    assert [file.name for file in files] == ["coffee.png"]
    assert files[0].path == (pvc_root / "data" / "photos" / "coffee.png").resolve()


def test_parent_escape_rejected(pvc_root: Path) -> None:
    with pytest.raises(InvalidInputError, match="leaves the claim's mount"):
        pvc_uri_path("pvc://data/../../etc")


def test_invalid_claim_rejected(pvc_root: Path) -> None:
    with pytest.raises(InvalidInputError, match="invalid claim name 'Data_Set'"):
        pvc_uri_path("pvc://Data_Set/photos")


def test_unmounted_claim_explained(pvc_root: Path, tmp_path: Path) -> None:
    source = DataSource(uri="pvc://other/photos")

    with pytest.raises(InvalidInputError) as raised:
        fetch_source(source, destination=tmp_path, options=SourceOptions(base_dir=tmp_path))

    assert "pvc://other/photos not found" in str(raised.value)
    assert "mounted" in str(raised.value)

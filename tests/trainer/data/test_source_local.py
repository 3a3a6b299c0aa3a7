"""file:// sources: folders and single files, relative paths, include patterns and sidecars."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from lora_operator.api.training_spec import DataSource

from lora_trainer.errors import InvalidInputError
from lora_trainer.sources import SourceOptions, fetch_source
from tests.datasets import PHOTOS_DIR

pytestmark = pytest.mark.unit


@pytest.fixture
def data_folder(tmp_path: Path) -> Path:
    """A folder with images, sidecars, a nested folder, a hidden file and a non-image file."""
    folder = tmp_path / "project" / "data"
    (folder / "nested").mkdir(parents=True)
    shutil.copy(PHOTOS_DIR / "coffee.png", folder / "coffee.png")
    shutil.copy(PHOTOS_DIR / "china.jpg", folder / "nested" / "china.jpg")
    shutil.copy(PHOTOS_DIR / "horse.png", folder / ".hidden.png")
    (folder / "coffee.txt").write_text("a cup of coffee", encoding="utf-8")
    (folder / "nested" / "china.txt").write_text("a temple", encoding="utf-8")
    (folder / "orphan.txt").write_text("no image has this stem", encoding="utf-8")
    (folder / "labels.json").write_text("{}", encoding="utf-8")
    return folder


def fetch(uri: str, *, base_dir: Path, include: list[str] | None = None) -> dict[str, Path | None]:
    source = DataSource(uri=uri, include=include or [])
    files = fetch_source(source, destination=base_dir / "downloads", options=SourceOptions(base_dir=base_dir))
    return {file.name: file.path for file in files}


def test_folder_lists_images_and_sidecars(data_folder: Path) -> None:
    files = fetch(data_folder.as_uri(), base_dir=data_folder)

    assert sorted(files) == ["coffee.png", "coffee.txt", "nested/china.jpg", "nested/china.txt"]
    assert files["nested/china.jpg"] == data_folder / "nested" / "china.jpg"


def test_relative_uri_uses_base_dir(data_folder: Path) -> None:
    project = data_folder.parent

    files = fetch("file://data", base_dir=project)

    assert files["coffee.png"] == project / "data" / "coffee.png"


def test_include_filters_images_only(data_folder: Path) -> None:
    files = fetch(data_folder.as_uri(), base_dir=data_folder, include=["*.jpg"])

    assert sorted(files) == ["nested/china.jpg", "nested/china.txt"]


def test_single_file_brings_sidecar(data_folder: Path) -> None:
    files = fetch((data_folder / "coffee.png").as_uri(), base_dir=data_folder)

    assert sorted(files) == ["coffee.png", "coffee.txt"]


def test_percent_escaped_uri_decoded(tmp_path: Path) -> None:
    folder = tmp_path / "my photos"
    folder.mkdir()
    shutil.copy(PHOTOS_DIR / "coffee.png", folder / "coffee.png")

    files = fetch(folder.as_uri(), base_dir=tmp_path)

    assert "%20" in folder.as_uri()
    assert list(files) == ["coffee.png"]


def test_missing_folder_names_base_dir(tmp_path: Path) -> None:
    with pytest.raises(InvalidInputError) as raised:
        fetch("file://no/such/folder", base_dir=tmp_path)

    message = str(raised.value)
    assert "file://no/such/folder" in message
    assert f"resolve against {tmp_path}" in message


def test_folder_without_images_rejected(tmp_path: Path) -> None:
    (tmp_path / "notes.txt").write_text("text only", encoding="utf-8")

    with pytest.raises(InvalidInputError, match="contains no image file"):
        fetch(tmp_path.as_uri(), base_dir=tmp_path)


def test_include_matching_nothing_rejected(data_folder: Path) -> None:
    with pytest.raises(InvalidInputError, match=r"include patterns: \*\.webp"):
        fetch(data_folder.as_uri(), base_dir=data_folder, include=["*.webp"])

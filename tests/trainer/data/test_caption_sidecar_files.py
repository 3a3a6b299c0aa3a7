"""Sidecar caption files: pairing by stem, UTF-8 with or without BOM, legacy encodings, whitespace."""

from __future__ import annotations

import codecs
import logging
import shutil
from pathlib import Path

import pytest
from lora_operator.api.training_spec import DatasetSpec

from lora_trainer.data.captions import match_sidecars, read_sidecar
from lora_trainer.data.prepare import prepare_image_dataset
from tests.datasets import PHOTOS_DIR

pytestmark = pytest.mark.unit


def write_caption(tmp_path: Path, data: bytes) -> Path:
    path = tmp_path / "photo.txt"
    path.write_bytes(data)
    return path


def test_utf8_bom_stripped(tmp_path: Path) -> None:
    path = write_caption(tmp_path, codecs.BOM_UTF8 + "a red fox".encode())

    caption = read_sidecar(path, name="photo.txt")

    assert caption.text == "a red fox"
    assert caption.warnings == ()


def test_whitespace_collapsed(tmp_path: Path) -> None:
    path = write_caption(tmp_path, b"  a red fox,\r\n\tin   snow \n\n")

    assert read_sidecar(path, name="photo.txt").text == "a red fox, in snow"


def test_utf8_non_ascii_kept(tmp_path: Path) -> None:
    path = write_caption(tmp_path, "雨夜城市, café".encode())

    assert read_sidecar(path, name="photo.txt").text == "雨夜城市, café"


def test_gb2312_fallback_warns(tmp_path: Path) -> None:
    path = write_caption(tmp_path, "雨夜城市, 一个女孩".encode("gb2312"))

    caption = read_sidecar(path, name="photo.txt")

    assert caption.text == "雨夜城市, 一个女孩"
    assert len(caption.warnings) == 1
    assert caption.warnings[0].startswith("photo.txt: not valid UTF-8")
    assert "gb2312" in caption.warnings[0]


@pytest.mark.parametrize("text", ["smörgåsbord on a plate", "café au lait", "naïve résumé, crème brûlée"])
def test_cp1252_fallback_warns(tmp_path: Path, text: str) -> None:
    path = write_caption(tmp_path, text.encode("cp1252"))

    caption = read_sidecar(path, name="photo.txt")

    assert caption.text == text
    assert "cp1252" in caption.warnings[0]


def test_utf16_with_bom_read(tmp_path: Path) -> None:
    path = write_caption(tmp_path, "a red fox".encode("utf-16"))

    assert read_sidecar(path, name="photo.txt").text == "a red fox"


def test_sidecar_matched_by_stem() -> None:
    names = ["a.png", "a.txt", "b.jpg", "B.txt", "c.png", "c.TXT", "sub/d.webp", "sub/d.txt", "e.txt", "f.json"]

    matches = match_sidecars(names, caption_extension=".txt")

    assert matches == {"a.png": "a.txt", "c.png": "c.TXT", "sub/d.webp": "sub/d.txt"}


def test_custom_caption_extension() -> None:
    matches = match_sidecars(["a.png", "a.txt", "a.caption"], caption_extension=".caption")

    assert matches == {"a.png": "a.caption"}


def test_sidecar_reaches_record(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    folder = tmp_path / "photos"
    folder.mkdir()
    shutil.copy(PHOTOS_DIR / "coffee.png", folder / "coffee.png")
    shutil.copy(PHOTOS_DIR / "horse.png", folder / "horse.png")
    (folder / "coffee.txt").write_bytes("a cup of coffee, crème".encode("cp1252"))
    spec = DatasetSpec(sources=[{"uri": folder.as_uri()}], resolution=64)

    with caplog.at_level(logging.WARNING):
        records = prepare_image_dataset(spec, work_dir=tmp_path / "work", base_dir=tmp_path)
    by_name = {record.name: record for record in records}

    assert by_name["coffee.png"].caption == "a cup of coffee, crème"
    assert by_name["coffee.png"].caption_source == "sidecar"
    assert any("coffee.txt: not valid UTF-8" in warning for warning in by_name["coffee.png"].warnings)
    assert "coffee.txt: not valid UTF-8" in caplog.text
    assert by_name["horse.png"].caption == ""
    assert by_name["horse.png"].caption_source == "none"

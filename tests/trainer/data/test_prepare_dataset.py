"""prepare_image_dataset: order, parallel modes, several sources, logging and the no-usable-image error."""

from __future__ import annotations

import logging
import shutil
from pathlib import Path

import numpy as np
import pytest
from lora_operator.api.training_spec import DatasetSpec
from PIL import Image

from lora_trainer.data.prepare import NoUsableImagesError, prepare_image_dataset
from lora_trainer.data.records import ImageRecord
from lora_trainer.errors import InvalidInputError
from tests.datasets import BAD_IMAGES_DIR, PHOTOS_DIR

pytestmark = pytest.mark.unit


def folder_with(tmp_path: Path, name: str, files: dict[str, Path]) -> Path:
    folder = tmp_path / name
    folder.mkdir()
    for target, source in files.items():
        shutil.copy(source, folder / target)
    return folder


def outcome(records: list[ImageRecord]) -> list[tuple]:
    """The parts of each record that must not depend on how the work was scheduled."""
    return [
        (record.name, record.status, record.reason, record.sha256, record.bucket, record.duplicate_of,
         record.image_path.read_bytes() if record.image_path else b"")
        for record in records
    ]


def test_bad_files_only_raises(tmp_path: Path) -> None:
    folder = folder_with(
        tmp_path, "broken", {name: BAD_IMAGES_DIR / name for name in ("truncated.jpg", "zero-bytes.png", "tiny-8x8.png")}
    )
    spec = DatasetSpec(sources=[{"uri": folder.as_uri()}], resolution=64)

    with pytest.raises(NoUsableImagesError) as raised:
        prepare_image_dataset(spec, work_dir=tmp_path / "work", base_dir=tmp_path)

    message = str(raised.value)
    assert isinstance(raised.value, InvalidInputError)
    assert folder.as_uri() in message
    assert "1 truncated or corrupt" in message
    assert "1 empty file" in message
    assert "dataset.minSide" in message
    assert [record.name for record in raised.value.records] == ["tiny-8x8.png", "truncated.jpg", "zero-bytes.png"]


def test_each_skip_logged_once(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    names = ("coffee.png", "truncated.jpg", "not-an-image.jpg")
    sources = {name: (PHOTOS_DIR if name == "coffee.png" else BAD_IMAGES_DIR) / name for name in names}
    folder = folder_with(tmp_path, "mixed", sources)
    spec = DatasetSpec(sources=[{"uri": folder.as_uri()}], resolution=64)

    with caplog.at_level(logging.WARNING):
        prepare_image_dataset(spec, work_dir=tmp_path / "work", base_dir=tmp_path)
    skip_lines = [record.getMessage() for record in caplog.records if record.getMessage().startswith("Skipped ")]

    assert skip_lines == [
        "Skipped not-an-image.jpg: not an image (no supported image format recognised)",
        "Skipped truncated.jpg: truncated or corrupt (image file is truncated (8 bytes not processed))",
    ]


def test_same_name_in_two_sources(tmp_path: Path) -> None:
    first = folder_with(tmp_path, "first", {"photo.png": PHOTOS_DIR / "coffee.png"})
    second = folder_with(tmp_path, "second", {"photo.png": PHOTOS_DIR / "horse.png", "copy.png": PHOTOS_DIR / "coffee.png"})
    spec = DatasetSpec(sources=[{"uri": first.as_uri()}, {"uri": second.as_uri()}], resolution=64)

    records = prepare_image_dataset(spec, work_dir=tmp_path / "work", base_dir=tmp_path)

    assert [record.name for record in records] == ["photo.png", "copy.png", "source-2/photo.png"]
    assert [record.source_uri for record in records] == [first.as_uri(), second.as_uri(), second.as_uri()]
    assert records[1].duplicate_of == "photo.png"
    assert records[2].accepted


def test_threads_processes_same_result(tmp_path: Path) -> None:
    spec = DatasetSpec(sources=[{"uri": BAD_IMAGES_DIR.as_uri()}], resolution=64)

    serial = prepare_image_dataset(spec, work_dir=tmp_path / "serial", base_dir=tmp_path, workers=1)
    threads = prepare_image_dataset(spec, work_dir=tmp_path / "threads", base_dir=tmp_path, workers=2)
    processes = prepare_image_dataset(
        spec, work_dir=tmp_path / "processes", base_dir=tmp_path, workers=2, parallelism="processes"
    )

    assert outcome(threads) == outcome(serial)
    assert outcome(processes) == outcome(serial)


def test_file_size_limit_skips(tmp_path: Path) -> None:
    folder = folder_with(tmp_path, "sizes", {"coffee.png": PHOTOS_DIR / "coffee.png", "horse.png": PHOTOS_DIR / "horse.png"})
    spec = DatasetSpec(sources=[{"uri": folder.as_uri()}], resolution=64, max_file_bytes=20_000)

    records = prepare_image_dataset(spec, work_dir=tmp_path / "work", base_dir=tmp_path)

    assert records[0].reason == "coffee.png: file too large (466706 bytes; dataset.maxFileBytes is 20000)"
    assert records[0].sha256 == ""
    assert records[1].accepted


def test_no_bucketing_gives_squares(tmp_path: Path) -> None:
    spec = DatasetSpec(sources=[{"uri": PHOTOS_DIR.as_uri()}], resolution=64, bucketing=False)

    records = prepare_image_dataset(spec, work_dir=tmp_path / "work", base_dir=tmp_path)

    assert {record.bucket for record in records} == {(64, 64)}


def test_background_colour_used(tmp_path: Path) -> None:
    folder = folder_with(tmp_path, "alpha", {"alpha.png": BAD_IMAGES_DIR / "alpha.png"})
    spec = DatasetSpec(sources=[{"uri": folder.as_uri()}], resolution=64, background="#000000")

    records = prepare_image_dataset(spec, work_dir=tmp_path / "work", base_dir=tmp_path)

    with Image.open(records[0].image_path) as image:
        pixels = np.asarray(image)
    # 35% opacity over black: no channel can exceed about 35% of 255.
    assert pixels.max() <= 100


def test_caption_copy_written_for_large_images(tmp_path: Path) -> None:
    folder = folder_with(tmp_path, "photos", {name: PHOTOS_DIR / name for name in ("coffee.png", "rocket.jpg")})
    spec = DatasetSpec(sources=[{"uri": folder.as_uri()}], resolution=512)

    records = prepare_image_dataset(spec, work_dir=tmp_path / "work", base_dir=tmp_path, caption_image_side=256)

    for record in records:
        assert record.caption_image_path is not None, record.name
        with Image.open(record.caption_image_path) as copy, Image.open(record.image_path) as bucket_image:
            assert copy.format == "PPM"
            assert min(copy.size) == 256
            # The copy keeps the bucket's aspect ratio, within rounding.
            assert abs(copy.size[0] / copy.size[1] - bucket_image.size[0] / bucket_image.size[1]) < 0.01


def test_no_caption_copy_when_small_or_off(tmp_path: Path) -> None:
    folder = folder_with(tmp_path, "photos", {"coffee.png": PHOTOS_DIR / "coffee.png"})
    small = DatasetSpec(sources=[{"uri": folder.as_uri()}], resolution=128)
    large = DatasetSpec(sources=[{"uri": folder.as_uri()}], resolution=512)

    (small_record,) = prepare_image_dataset(small, work_dir=tmp_path / "small", base_dir=tmp_path, caption_image_side=256)
    (off_record,) = prepare_image_dataset(large, work_dir=tmp_path / "off", base_dir=tmp_path)

    assert small_record.accepted
    assert small_record.caption_image_path is None
    assert off_record.accepted
    assert off_record.caption_image_path is None
    assert not list((tmp_path / "off").rglob("*.ppm"))

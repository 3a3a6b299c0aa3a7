"""Every sample photo is accepted and converted to an RGB PNG of its bucket's size."""

from __future__ import annotations

from pathlib import Path

import pytest
from lora_operator.api.training_spec import DatasetSpec
from PIL import Image

from lora_trainer.data.buckets import build_buckets
from lora_trainer.data.prepare import prepare_image_dataset
from lora_trainer.data.records import ImageRecord
from tests.datasets import PHOTOS_DIR

pytestmark = pytest.mark.unit

RESOLUTION = 64


@pytest.fixture(scope="module")
def photo_records(tmp_path_factory: pytest.TempPathFactory) -> list[ImageRecord]:
    work_dir = tmp_path_factory.mktemp("photos")
    spec = DatasetSpec(sources=[{"uri": PHOTOS_DIR.as_uri()}], resolution=RESOLUTION)
    return prepare_image_dataset(spec, work_dir=work_dir, base_dir=work_dir)


def test_every_photo_accepted(photo_records: list[ImageRecord]) -> None:
    photo_names = sorted(path.name for path in PHOTOS_DIR.iterdir() if path.suffix in (".png", ".jpg"))

    assert [record.name for record in photo_records] == photo_names
    assert [record.name for record in photo_records if not record.accepted] == []


def test_photos_converted_to_bucket(photo_records: list[ImageRecord]) -> None:
    buckets = build_buckets(resolution=RESOLUTION, max_aspect_ratio=2.0)

    for record in photo_records:
        assert record.bucket in buckets, record.name
        assert isinstance(record.image_path, Path)
        with Image.open(record.image_path) as image:
            assert image.mode == "RGB", record.name
            assert image.size == record.bucket, record.name


def test_photo_orientation_kept(photo_records: list[ImageRecord]) -> None:
    for record in photo_records:
        assert record.original_size is not None
        assert record.bucket is not None
        width, height = record.original_size
        bucket_width, bucket_height = record.bucket
        if width > height * 1.2:
            assert bucket_width > bucket_height, record.name
        if height > width * 1.2:
            assert bucket_height > bucket_width, record.name

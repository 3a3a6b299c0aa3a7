"""Captioning reads the smaller copy that data preparation writes, when the model's input fits it."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import open_clip
import pytest
from PIL import Image

from lora_operator.api.training_spec import CaptioningSpec
from lora_trainer.captioning import caption_records
from lora_trainer.captioning.captioner import CAPTION_IMAGE_SIDE, caption_input_path, model_input_side
from lora_trainer.data.records import ImageRecord
from lora_trainer.models.builtin_clip import (
    TINY_CLIP_MODEL_CONFIG,
    TINY_CLIP_PREPROCESS_CONFIG,
    save_open_clip_checkpoint,
)

pytestmark = pytest.mark.trainer


def with_broken_bucket_images(records: list[ImageRecord], folder: Path) -> list[ImageRecord]:
    """Give each record a readable captioning copy and an unreadable bucket image."""
    folder.mkdir(parents=True, exist_ok=True)
    for record in records:
        copy = folder / f"{record.image_path.stem}.caption.ppm"
        with Image.open(record.image_path) as image:
            image.save(copy, format="PPM")
        record.caption_image_path = copy
        record.image_path.write_bytes(b"not a PNG any more")
    return records


def large_input_clip(folder: Path) -> str:
    """Save a random tiny open_clip model whose input is larger than the captioning copy; return its URI."""
    config = {**TINY_CLIP_MODEL_CONFIG, "vision_cfg": {**TINY_CLIP_MODEL_CONFIG["vision_cfg"], "image_size": 288}}
    model = open_clip.CLIP(**config)
    save_open_clip_checkpoint(model, folder, model_config=config, preprocess_config=TINY_CLIP_PREPROCESS_CONFIG)
    return folder.as_uri()


def test_copy_read_for_small_model(make_records: Callable[..., list[ImageRecord]], tmp_path: Path) -> None:
    records = with_broken_bucket_images(make_records(["a.png", "b.png", "c.png"]), tmp_path / "copies")

    stats = caption_records(records, CaptioningSpec(triggerWord="zwx"))

    assert stats.failed == 0
    assert stats.captioned == 3
    assert all(record.caption_source == "generated" for record in records)


def test_bucket_image_read_for_large_model(make_records: Callable[..., list[ImageRecord]], tmp_path: Path) -> None:
    records = with_broken_bucket_images(make_records(["a.png", "b.png"]), tmp_path / "copies")
    model = large_input_clip(tmp_path / "clip-288")

    stats = caption_records(records, CaptioningSpec(model=model, triggerWord="zwx"))

    # The copy is too small for a 288-pixel input, so captioning read the (broken) bucket images.
    assert stats.failed == 2
    assert all("failed to read" in record.warnings[-1] for record in records)


def test_input_path_rule(tmp_path: Path) -> None:
    record = ImageRecord(name="a.png", source_uri="file:///a.png", image_path=tmp_path / "a.png",
                         caption_image_path=tmp_path / "a.caption.ppm")
    without_copy = ImageRecord(name="b.png", source_uri="file:///b.png", image_path=tmp_path / "b.png")

    assert caption_input_path(record, 224) == record.caption_image_path
    assert caption_input_path(record, CAPTION_IMAGE_SIDE) == record.caption_image_path
    assert caption_input_path(record, CAPTION_IMAGE_SIDE + 1) == record.image_path
    assert caption_input_path(record, None) == record.image_path
    assert caption_input_path(without_copy, 224) == without_copy.image_path


def test_model_input_side_of_open_clip() -> None:
    model = open_clip.CLIP(**TINY_CLIP_MODEL_CONFIG)
    assert model_input_side(model) == TINY_CLIP_MODEL_CONFIG["vision_cfg"]["image_size"]

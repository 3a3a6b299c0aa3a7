"""Images whose header claims too many pixels are skipped from the header alone, never decoded."""

from __future__ import annotations

import struct
import warnings
import zlib
from collections.abc import Callable
from pathlib import Path

import pytest
from lora_operator.api.training_spec import DatasetSpec
from PIL import Image

from lora_trainer.data import images
from lora_trainer.data.images import ConversionSettings, check_and_convert
from lora_trainer.data.prepare import raise_pillow_pixel_limit
from lora_trainer.data.records import ImageRecord
from tests.datasets import BAD_IMAGES_DIR

pytestmark = pytest.mark.unit


def header_only_png(path: Path, *, width: int, height: int) -> Path:
    """Write a PNG with a valid header claiming width x height and no pixel data."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IEND", b""))
    return path


@pytest.fixture
def decode_calls(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Record every call of images.decode_image, the only step that decodes pixels, and let it run."""
    calls: list[str] = []
    original: Callable[..., Image.Image] = images.decode_image

    def counting_decode(image: Image.Image, *, warnings: list[str]) -> Image.Image:
        calls.append(str(image.size))
        return original(image, warnings=warnings)

    monkeypatch.setattr(images, "decode_image", counting_decode)
    return calls


def convert(path: Path, tmp_path: Path, **spec_fields: object) -> ImageRecord:
    spec = DatasetSpec(sources=[{"uri": "file:///unused"}], resolution=64, **spec_fields)
    settings = ConversionSettings.from_spec(spec, output_dir=tmp_path / "out")
    record = ImageRecord(name=path.name, source_uri="file:///unused", sha256="0" * 64)
    return check_and_convert(record, path, settings)


def test_bomb_never_decoded(tmp_path: Path, decode_calls: list[str]) -> None:
    record = convert(BAD_IMAGES_DIR / "bomb-60000x60000.png", tmp_path)

    assert record.reason.startswith("bomb-60000x60000.png: too many pixels")
    assert decode_calls == []


def test_spy_sees_normal_decode(tmp_path: Path, decode_calls: list[str]) -> None:
    record = convert(BAD_IMAGES_DIR / "duplicate-a.png", tmp_path)

    assert record.accepted
    assert decode_calls == ["(320, 240)"]


def test_header_over_limit_skipped(tmp_path: Path, decode_calls: list[str]) -> None:
    # 120 million pixels: over the default dataset.maxPixels (100 million) but under
    # Pillow's own error limit, so the dataset's check is what rejects it.
    path = header_only_png(tmp_path / "wide.png", width=12000, height=10000)

    # Pillow warns about headers over Image.MAX_IMAGE_PIXELS (about 89 million) and opens them anyway.
    with pytest.warns(Image.DecompressionBombWarning):
        record = convert(path, tmp_path)

    assert record.reason == (
        "wide.png: too many pixels (12000x10000 = 120000000 pixels; dataset.maxPixels is 100000000)"
    )
    assert decode_calls == []


def test_bomb_warning_as_error_skipped(tmp_path: Path, decode_calls: list[str]) -> None:
    path = header_only_png(tmp_path / "wide.png", width=12000, height=10000)

    with warnings.catch_warnings():
        warnings.simplefilter("error", Image.DecompressionBombWarning)
        record = convert(path, tmp_path)

    assert record.reason.startswith("wide.png: too many pixels")
    assert decode_calls == []


def test_max_pixels_setting_applies(tmp_path: Path, decode_calls: list[str]) -> None:
    record = convert(BAD_IMAGES_DIR / "duplicate-a.png", tmp_path, max_pixels=50_000)

    assert record.reason == (
        "duplicate-a.png: too many pixels (320x240 = 76800 pixels; dataset.maxPixels is 50000)"
    )
    assert decode_calls == []


def test_pillow_limit_only_raised(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 1_000_000)

    raise_pillow_pixel_limit(500_000)
    after_lower_request = Image.MAX_IMAGE_PIXELS
    raise_pillow_pixel_limit(300_000_000)

    assert after_lower_request == 1_000_000
    assert Image.MAX_IMAGE_PIXELS == 300_000_000

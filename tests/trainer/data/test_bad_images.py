"""Each awkward or broken image is accepted and converted correctly, or skipped with a reason naming it.

One test per row of the awkward-image README table. The pictures are noise with a
block of MARKER_RGB near the top-left corner, which the pixel checks look for.
"""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from lora_trainer.data.buckets import aspect_ratio
from lora_trainer.data.records import ImageRecord
from tests.datasets import BAD_IMAGES_DIR
from tests.trainer.data.image_checks import MARKER_RGB, load_pixels, marker_mask

pytestmark = pytest.mark.unit

# 35% opacity, as the README states; alpha.png stores 90 / 255.
ALPHA_OPACITY = 90 / 255
# The marker block covers x 20-160 and y 20-120 of the 320x240 pictures, so this
# point, given as a fraction of width and height, lies inside it after any bucket crop.
BLOCK_CENTRE = (0.28, 0.29)


def window_median(pixels: np.ndarray, centre: tuple[float, float], radius: int = 4) -> np.ndarray:
    """Return the per-channel median of a small window around a point given in fractions of the size."""
    height, width = pixels.shape[:2]
    x, y = int(centre[0] * width), int(centre[1] * height)
    window = pixels[y - radius : y + radius + 1, x - radius : x + radius + 1, :3]
    return np.median(window.reshape(-1, 3), axis=0)


def neighbour_correlations(gray: np.ndarray) -> tuple[float, float]:
    """Return the correlation of horizontally and of vertically adjacent pixels."""
    horizontal = np.corrcoef(gray[:, :-1].ravel(), gray[:, 1:].ravel())[0, 1]
    vertical = np.corrcoef(gray[:-1, :].ravel(), gray[1:, :].ravel())[0, 1]
    return float(horizontal), float(vertical)


def assert_skipped(record: ImageRecord, cause: str) -> None:
    assert record.status == "skipped"
    assert record.reason.startswith(f"{record.name}: {cause}"), record.reason
    assert record.image_path is None


def test_truncated_jpeg_skipped(bad_image_records: dict[str, ImageRecord]) -> None:
    record = bad_image_records["truncated.jpg"]

    assert_skipped(record, "truncated or corrupt")
    assert "\n" not in record.reason


def test_empty_file_skipped(bad_image_records: dict[str, ImageRecord]) -> None:
    record = bad_image_records["zero-bytes.png"]

    assert_skipped(record, "empty file")
    assert record.size_bytes == 0


def test_text_as_jpeg_skipped(bad_image_records: dict[str, ImageRecord]) -> None:
    record = bad_image_records["not-an-image.jpg"]

    assert_skipped(record, "not an image")
    assert len(record.sha256) == 64


def test_bomb_skipped_for_pixels(bad_image_records: dict[str, ImageRecord]) -> None:
    record = bad_image_records["bomb-60000x60000.png"]

    assert_skipped(record, "too many pixels")
    assert "3600000000" in record.reason
    assert "dataset.maxPixels" in record.reason


def test_tiny_image_below_min_side(bad_image_records: dict[str, ImageRecord]) -> None:
    record = bad_image_records["tiny-8x8.png"]

    assert_skipped(record, "smaller than the minimum side")
    assert "8x8" in record.reason
    assert "dataset.minSide is 64" in record.reason


def test_panorama_cropped_not_stretched(bad_image_records: dict[str, ImageRecord]) -> None:
    record = bad_image_records["panorama-20to1.png"]
    assert record.accepted
    assert record.bucket is not None
    pixels = load_pixels(record.image_path)
    scale = record.bucket[1] / 100  # the source is 100 pixels high

    assert record.original_size == (2000, 100)
    assert aspect_ratio(record.bucket) <= 2.0
    assert "centre-cropped from 2000x100" in record.reason
    assert pixels.shape[:2] == (record.bucket[1], record.bucket[0])
    # The marker block spans source rows 20-50, so its height shows the vertical scale.
    block_rows = np.flatnonzero(marker_mask(pixels, tolerance=20).mean(axis=1) > 0.2)
    assert abs(len(block_rows) - 31 * scale) <= 4
    # Noise scaled equally on both axes is equally smooth across and down. A 20:1
    # image squeezed into the bucket would be far smoother down than across.
    noise = pixels[:, pixels.shape[1] // 2 + 10 :, :3].astype(float).mean(axis=2)
    horizontal, vertical = neighbour_correlations(noise)
    assert abs(horizontal - vertical) < 0.1, (horizontal, vertical)


def test_cmyk_converted_to_rgb(bad_image_records: dict[str, ImageRecord]) -> None:
    record = bad_image_records["cmyk.jpg"]
    assert record.accepted
    pixels = load_pixels(record.image_path)

    assert pixels.shape[2] == 3
    # An inverted or channel-swapped CMYK conversion would not give the marker colour.
    assert np.abs(window_median(pixels, BLOCK_CENTRE) - MARKER_RGB).max() <= 12


def test_gray16_scaled_not_clipped(bad_image_records: dict[str, ImageRecord]) -> None:
    record = bad_image_records["gray16.png"]
    assert record.accepted
    with Image.open(BAD_IMAGES_DIR / "gray16.png") as source:
        source_mean_8bit = np.asarray(source).astype(float).mean() / 257
    pixels = load_pixels(record.image_path).astype(float)

    assert pixels.shape[2] == 3
    assert np.array_equal(pixels[..., 0], pixels[..., 1])
    assert np.array_equal(pixels[..., 1], pixels[..., 2])
    # The source averages mid-gray; clipping at 255 would push the mean near white.
    assert abs(pixels.mean() - source_mean_8bit) < 3
    assert 100 < pixels.mean() < 155


def test_alpha_composited_on_background(bad_image_records: dict[str, ImageRecord]) -> None:
    record = bad_image_records["alpha.png"]
    assert record.accepted
    with Image.open(BAD_IMAGES_DIR / "alpha.png") as source:
        source_rgb_mean = np.asarray(source)[..., :3].astype(float).mean(axis=(0, 1))
    pixels = load_pixels(record.image_path).astype(float)
    on_white = ALPHA_OPACITY * source_rgb_mean + (1 - ALPHA_OPACITY) * 255
    marker_on_white = ALPHA_OPACITY * np.array(MARKER_RGB) + (1 - ALPHA_OPACITY) * 255

    # On black no pixel could exceed 35% of 255 (about 90).
    assert np.percentile(pixels, 1) > 150
    assert np.abs(pixels.mean(axis=(0, 1)) - on_white).max() < 3
    assert np.abs(window_median(pixels, BLOCK_CENTRE) - marker_on_white).max() <= 8


def test_palette_gif_converted(bad_image_records: dict[str, ImageRecord]) -> None:
    record = bad_image_records["palette.gif"]
    assert record.accepted
    pixels = load_pixels(record.image_path)

    assert pixels.ndim == 3
    assert pixels.shape[2] == 3
    assert np.abs(window_median(pixels, BLOCK_CENTRE) - MARKER_RGB).max() <= 12


def test_animated_gif_first_frame(bad_image_records: dict[str, ImageRecord]) -> None:
    record = bad_image_records["animated.gif"]
    assert record.accepted
    assert record.bucket is not None
    pixels = load_pixels(record.image_path).astype(float)
    differences = []
    with Image.open(BAD_IMAGES_DIR / "animated.gif") as source:
        for frame in range(source.n_frames):
            source.seek(frame)
            # The 64x64 frames go to the square bucket, so a plain resize is the expected result.
            expected = source.convert("RGB").resize(record.bucket, Image.Resampling.LANCZOS)
            differences.append(np.abs(np.asarray(expected, dtype=float) - pixels).mean())

    assert differences[0] < 1.0
    assert min(differences[1:]) > 10 * differences[0] + 5
    assert "only the first of 3 frames is used" in record.warnings[0]


def test_exif_orientation_applied(bad_image_records: dict[str, ImageRecord]) -> None:
    record = bad_image_records["exif-rotate-6.jpg"]
    assert record.accepted
    assert record.bucket is not None
    pixels = load_pixels(record.image_path)

    assert record.original_size == (200, 400)
    assert record.bucket[1] > record.bucket[0]
    # Orientation 6 turns the stored top-left block to the top-right; turning
    # the wrong way would move it to the bottom-left.
    assert np.abs(window_median(pixels, (0.7, 0.25)) - MARKER_RGB).max() <= 12
    assert np.abs(window_median(pixels, (0.3, 0.75)) - MARKER_RGB).max() > 40


def test_upper_case_extension_accepted(bad_image_records: dict[str, ImageRecord]) -> None:
    record = bad_image_records["UPPER CASE.JPG"]

    assert record.accepted
    assert record.image_path is not None
    assert record.image_path.is_file()


def test_non_ascii_name_accepted(bad_image_records: dict[str, ImageRecord]) -> None:
    record = bad_image_records["雨夜城市 01.png"]

    assert record.accepted
    assert record.name == "雨夜城市 01.png"


def test_webp_accepted(bad_image_records: dict[str, ImageRecord]) -> None:
    record = bad_image_records["webp-image.webp"]
    assert record.accepted
    pixels = load_pixels(record.image_path)

    assert pixels.shape[2] == 3
    assert np.abs(window_median(pixels, BLOCK_CENTRE) - MARKER_RGB).max() <= 12


def test_tiff_accepted(bad_image_records: dict[str, ImageRecord]) -> None:
    record = bad_image_records["tiff-image.tif"]
    assert record.accepted
    pixels = load_pixels(record.image_path)

    assert pixels.shape[2] == 3
    assert np.abs(window_median(pixels, BLOCK_CENTRE) - MARKER_RGB).max() <= 12


def test_duplicate_reported_once(bad_image_records: dict[str, ImageRecord]) -> None:
    first = bad_image_records["duplicate-a.png"]
    second = bad_image_records["duplicate-b.png"]

    assert first.accepted
    assert first.duplicate_of == ""
    assert_skipped(second, "duplicate")
    assert second.duplicate_of == "duplicate-a.png"
    assert second.sha256 == first.sha256


def test_readme_not_an_image_candidate(bad_image_records: dict[str, ImageRecord]) -> None:
    image_files = {path.name for path in BAD_IMAGES_DIR.iterdir() if path.suffix != ".md"}

    assert "README.md" not in bad_image_records
    assert set(bad_image_records) == image_files

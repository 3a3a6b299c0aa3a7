"""Aspect-ratio buckets: shapes on the VAE grid, about resolution squared in area, and no stretching."""

from __future__ import annotations

import random

import numpy as np
import pytest
from PIL import Image

from lora_trainer.data.buckets import (
    aspect_ratio,
    bucket_step,
    build_buckets,
    cover_crop_box,
    nearest_bucket,
    square_bucket,
)
from lora_trainer.data.images import fit_to_bucket

pytestmark = pytest.mark.unit

RESOLUTIONS = [64, 128, 256, 512, 768, 1024, 2048]


@pytest.mark.parametrize("resolution", RESOLUTIONS)
def test_bucket_sides_on_grid(resolution: int) -> None:
    buckets = build_buckets(resolution=resolution, max_aspect_ratio=2.0)

    for width, height in buckets:
        assert width % 8 == 0
        assert height % 8 == 0


@pytest.mark.parametrize("resolution", RESOLUTIONS)
def test_bucket_area_near_square(resolution: int) -> None:
    buckets = build_buckets(resolution=resolution, max_aspect_ratio=2.0)

    for width, height in buckets:
        assert width * height <= resolution * resolution
        assert width * height >= 0.75 * resolution * resolution, (width, height)


@pytest.mark.parametrize("max_ratio", [1.0, 1.5, 2.0, 4.0])
def test_bucket_ratio_within_limit(max_ratio: float) -> None:
    buckets = build_buckets(resolution=512, max_aspect_ratio=max_ratio)

    assert all(aspect_ratio(bucket) <= max_ratio for bucket in buckets)
    assert (512, 512) in buckets


def test_small_resolution_has_shapes() -> None:
    buckets = build_buckets(resolution=64, max_aspect_ratio=2.0)

    assert bucket_step(64) == 8
    assert any(width > height for width, height in buckets)
    assert any(width < height for width, height in buckets)


def test_step_is_64_from_512() -> None:
    assert bucket_step(512) == 64
    assert bucket_step(2048) == 64
    assert bucket_step(256) == 32


def test_square_bucket_rounds_down() -> None:
    assert square_bucket(100) == (96, 96)
    assert square_bucket(512) == (512, 512)


def test_nearest_bucket_keeps_orientation() -> None:
    buckets = build_buckets(resolution=512, max_aspect_ratio=2.0)

    wide = nearest_bucket((1600, 900), buckets)
    tall = nearest_bucket((900, 1600), buckets)

    assert wide[0] > wide[1]
    assert tall == (wide[1], wide[0])
    assert nearest_bucket((1000, 1000), buckets) == (512, 512)


def test_crop_box_never_stretches() -> None:
    generator = random.Random(7)
    sizes = [(generator.randint(8, 5000), generator.randint(8, 5000)) for _ in range(500)]
    sizes += [(2000, 100), (100, 2000), (1, 1), (8, 8), (4096, 4095)]
    for resolution in (64, 512, 1024):
        buckets = build_buckets(resolution=resolution, max_aspect_ratio=2.0)
        for size in sizes:
            bucket = nearest_bucket(size, buckets)
            left, top, right, bottom = cover_crop_box(size, bucket)

            assert 0 <= left <= right <= size[0]
            assert 0 <= top <= bottom <= size[1]
            horizontal_scale = bucket[0] / (right - left)
            vertical_scale = bucket[1] / (bottom - top)
            assert horizontal_scale == pytest.approx(vertical_scale, rel=1e-9), (size, bucket)


def test_crop_box_keeps_full_side() -> None:
    # A wide image keeps its full height and loses only the sides.
    left, top, right, bottom = cover_crop_box((2000, 100), (640, 384))

    assert (top, bottom) == (0.0, 100.0)
    assert left == pytest.approx(1000 - 100 * 640 / 384 / 2)
    assert right - left == pytest.approx(100 * 640 / 384)


def test_fitted_circle_stays_round() -> None:
    # A circle in the middle of a wide image must stay a circle after fitting.
    width, height, radius = 900, 300, 100
    y, x = np.mgrid[0:height, 0:width]
    inside = (x - width / 2) ** 2 + (y - height / 2) ** 2 <= radius**2
    image = Image.fromarray(np.where(inside, 255, 0).astype(np.uint8), mode="L")

    fitted = np.asarray(fit_to_bucket(image, (640, 384))) > 127
    rows = np.flatnonzero(fitted.any(axis=1))
    columns = np.flatnonzero(fitted.any(axis=0))

    circle_height = rows.max() - rows.min() + 1
    circle_width = columns.max() - columns.min() + 1
    assert abs(circle_width - circle_height) <= 2

"""Aspect-ratio buckets: training sizes of about resolution x resolution pixels in several shapes.

Each image goes to the bucket whose aspect ratio is nearest to its own, is scaled so
that it covers the bucket, and is centre-cropped to it. Both axes use the same scale,
so an image is never stretched.
"""

from __future__ import annotations

import math

Size = tuple[int, int]
"""(width, height) in pixels."""

# Latent diffusion VAEs downsample by 8, so every side must be a multiple of 8.
VAE_FACTOR = 8
# The common bucket grid at 512 px and above; smaller resolutions use a finer grid
# so that even 64 px keeps a few shapes.
MAX_STEP = 64


def bucket_step(resolution: int) -> int:
    """Return the grid of bucket sides: resolution / 8 rounded down to a multiple of 8, between 8 and 64."""
    step = resolution // 8 // VAE_FACTOR * VAE_FACTOR
    return min(MAX_STEP, max(VAE_FACTOR, step))


def square_bucket(resolution: int) -> Size:
    """Return the square bucket, its side rounded down to a multiple of 8."""
    side = max(VAE_FACTOR, resolution // VAE_FACTOR * VAE_FACTOR)
    return (side, side)


def build_buckets(*, resolution: int, max_aspect_ratio: float) -> list[Size]:
    """Return the buckets for a resolution, sorted from the tallest to the widest.

    For every width on the grid, the height is the largest grid value that keeps the
    area at or below resolution squared. Shapes whose long side exceeds max_aspect_ratio
    times the short side are left out. The square bucket is always included.
    """
    step = bucket_step(resolution)
    max_area = resolution * resolution
    buckets = {square_bucket(resolution)}
    for width in range(step, max_area // step + 1, step):
        height = max_area // width // step * step
        if height < step:
            break
        if aspect_ratio((width, height)) <= max_aspect_ratio * (1 + 1e-9):
            buckets.add((width, height))
    return sorted(buckets, key=lambda size: size[0] / size[1])


def aspect_ratio(size: Size) -> float:
    """Return the long side divided by the short side (1.0 for a square)."""
    width, height = size
    return max(width, height) / min(width, height)


def nearest_bucket(size: Size, buckets: list[Size]) -> Size:
    """Return the bucket whose width/height ratio is nearest to the image's, on a log scale.

    The log scale makes 2:1 and 1:2 equally far from 1:1. Ties go to the earlier bucket.
    """
    target = math.log(size[0] / size[1])
    return min(buckets, key=lambda bucket: abs(math.log(bucket[0] / bucket[1]) - target))


def cover_crop_box(size: Size, bucket: Size) -> tuple[float, float, float, float]:
    """Return the centred (left, top, right, bottom) region of the image with the bucket's aspect ratio.

    Scaling this region to the bucket uses one scale for both axes: the largest region
    that fits in the image, so the image covers the bucket and only the overhanging
    sides are cut off. The box may have fractional edges, which Image.resize accepts.
    """
    width, height = size
    bucket_width, bucket_height = bucket
    scale = max(bucket_width / width, bucket_height / height)
    crop_width = bucket_width / scale
    crop_height = bucket_height / scale
    # Clamped because rounding can push an edge a hair outside the image, which Pillow rejects.
    left = max(0.0, (width - crop_width) / 2)
    top = max(0.0, (height - crop_height) / 2)
    return (left, top, min(float(width), left + crop_width), min(float(height), top + crop_height))

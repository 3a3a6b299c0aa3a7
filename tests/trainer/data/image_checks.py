"""Pixel helpers of the data-preparation tests."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image

# Every picture in the awkward-image set is noise with a block of this colour near its top-left corner.
MARKER_RGB = (255, 0, 128)


def load_pixels(path: Path | None) -> np.ndarray:
    """Return an image file as an array of shape (height, width, channels)."""
    assert path is not None, "accepted record has no converted image"
    with Image.open(path) as image:
        return np.asarray(image)


def marker_mask(pixels: np.ndarray, colour: tuple[int, int, int] = MARKER_RGB, *, tolerance: int = 40) -> np.ndarray:
    """Return where the pixels are within tolerance of colour on every channel."""
    difference = np.abs(pixels[..., :3].astype(int) - np.array(colour))
    return (difference <= tolerance).all(axis=-1)

"""Conversion of decoded images of any mode to 8-bit sRGB without transparency."""

from __future__ import annotations

import io

import numpy as np
from PIL import Image, ImageCms

# Pillow's modes for 16- and 32-bit integer grayscale. Image.convert("L") clips
# these at 255 instead of scaling them, which turns most of a 16-bit image white.
WIDE_GRAY_MODES = frozenset({"I;16", "I;16L", "I;16B", "I;16N", "I"})
UINT16_TO_UINT8 = 257  # 65535 / 255
_SRGB_PROFILE = ImageCms.createProfile("sRGB")


def parse_hex_colour(colour: str) -> tuple[int, int, int]:
    """Return the (red, green, blue) of a '#rrggbb' colour."""
    text = colour.removeprefix("#")
    if len(text) != 6:
        raise ValueError(f"invalid colour {colour!r}: use #rrggbb, for example #ffffff")
    return (int(text[0:2], 16), int(text[2:4], 16), int(text[4:6], 16))


def to_rgb(image: Image.Image, *, background: tuple[int, int, int], warnings: list[str]) -> Image.Image:
    """Return an 8-bit RGB copy: wide grayscale scaled, transparency composited onto background.

    Colours with an embedded ICC profile are converted to sRGB. Problems that leave a
    usable image (an unreadable profile) are appended to warnings.
    """
    if image.mode in WIDE_GRAY_MODES:
        image = _scale_wide_gray(image)
    elif image.mode == "F":
        image = _scale_float_gray(image)

    icc_profile = image.info.get("icc_profile")
    if _has_transparency(image):
        return _composite(image, background=background, icc_profile=icc_profile, warnings=warnings)
    if icc_profile and image.mode in ("RGB", "CMYK"):
        return _icc_to_srgb(image, icc_profile, warnings=warnings)
    return image.convert("RGB")


def _scale_wide_gray(image: Image.Image) -> Image.Image:
    values = np.clip(np.asarray(image, dtype=np.int64), 0, 65535)
    # Mode "I" (32-bit) may carry 8-bit or 16-bit data, so only values above 255 are scaled.
    # NOTE: a 32-bit gray image with values above 65535 is clipped, not scaled.
    if image.mode == "I" and values.max(initial=0) <= 255:
        return Image.fromarray(values.astype(np.uint8), mode="L")
    scaled = np.rint(values / UINT16_TO_UINT8).astype(np.uint8)
    return Image.fromarray(scaled, mode="L")


def _scale_float_gray(image: Image.Image) -> Image.Image:
    values = np.asarray(image, dtype=np.float64)
    values = np.nan_to_num(values, nan=0.0, posinf=0.0, neginf=0.0)
    # Float images store either 0..1 or 0..255; a maximum of at most 1 means the former.
    if values.max(initial=0.0) <= 1.0:
        values = values * 255.0
    return Image.fromarray(np.clip(np.rint(values), 0, 255).astype(np.uint8), mode="L")


def _has_transparency(image: Image.Image) -> bool:
    if image.mode in ("RGBA", "LA", "PA", "RGBa", "La"):
        return True
    return "transparency" in image.info


def _composite(
    image: Image.Image,
    *,
    background: tuple[int, int, int],
    icc_profile: bytes | None,
    warnings: list[str],
) -> Image.Image:
    rgba = image.convert("RGBA")
    if icc_profile:
        alpha = rgba.getchannel("A")
        rgba = _icc_to_srgb(rgba.convert("RGB"), icc_profile, warnings=warnings).convert("RGBA")
        rgba.putalpha(alpha)
    canvas = Image.new("RGBA", rgba.size, (*background, 255))
    return Image.alpha_composite(canvas, rgba).convert("RGB")


def _icc_to_srgb(image: Image.Image, icc_profile: bytes, *, warnings: list[str]) -> Image.Image:
    try:
        source_profile = ImageCms.ImageCmsProfile(io.BytesIO(icc_profile))
        converted = ImageCms.profileToProfile(image, source_profile, _SRGB_PROFILE, outputMode="RGB")
    except (ImageCms.PyCMSError, OSError, ValueError) as error:
        warnings.append(f"embedded ICC profile unreadable ({error}); colours used as stored")
        return image.convert("RGB")
    assert converted is not None  # profileToProfile returns None only with inPlace=True
    return converted

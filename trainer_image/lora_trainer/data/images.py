"""Checking one input image and converting it to an RGB PNG at its bucket size.

Every failure becomes a skip reason of the form ``NAME: CAUSE (DETAIL)``; nothing
here raises on bad input. The header is read and checked before any pixel is
decoded, so a decompression bomb costs only the read of its header.
"""

from __future__ import annotations

import hashlib
import struct
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from lora_operator.api.training_spec import DatasetSpec
from PIL import Image, ImageOps

from lora_trainer.data.buckets import Size, aspect_ratio, build_buckets, cover_crop_box, nearest_bucket, square_bucket
from lora_trainer.data.pixels import parse_hex_colour, to_rgb
from lora_trainer.data.records import ImageRecord

IMAGE_EXTENSIONS = frozenset(
    {".png", ".apng", ".jpg", ".jpeg", ".jpe", ".jfif", ".webp", ".gif", ".bmp", ".dib", ".tif", ".tiff", ".avif"}
)
# Image.open tries only these decoders, so a file with an image extension never
# reaches plugins such as EPS, which runs Ghostscript. The JPEG decoder also opens
# MPO files (JPEGs that carry several pictures).
PILLOW_FORMATS = ("PNG", "JPEG", "WEBP", "GIF", "BMP", "DIB", "TIFF", "AVIF")

# Skip causes. A skip reason reads "NAME: CAUSE (DETAIL)"; manifest.skip_cause() parses the cause back.
EMPTY_FILE = "empty file"
FILE_TOO_LARGE = "file too large"
NOT_AN_IMAGE = "not an image"
CORRUPT = "truncated or corrupt"
TOO_MANY_PIXELS = "too many pixels"
TOO_SMALL = "smaller than the minimum side"
DUPLICATE = "duplicate"
UNREADABLE = "unreadable file"

# Exceptions that Pillow's decoders raise on damaged data. Any other exception is a bug and propagates.
DECODE_ERRORS = (OSError, SyntaxError, ValueError, EOFError, struct.error, IndexError, KeyError, ZeroDivisionError)
HASH_BUFFER_BYTES = 1 << 20
# Lanczos from a much larger image is slow. With a reducing gap Pillow first shrinks by an
# integer factor; Pillow's docs say a gap of 3 is indistinguishable from plain resampling
# in most cases.
REDUCING_GAP = 3.0
# Upscaling by more than this visibly blurs training images, so the record gets a warning.
UPSCALE_WARNING_FACTOR = 2.0
# Converted files are scratch files read once for encoding, so fast compression wins.
PNG_COMPRESS_LEVEL = 1


class SkipImage(Exception):
    """The file cannot be used; ``cause`` is one of the skip causes above."""

    def __init__(self, cause: str, detail: str = "") -> None:
        super().__init__(cause)
        self.cause = cause
        self.detail = detail


@dataclass(frozen=True)
class ConversionSettings:
    """The checks and the target sizes of a dataset, in a form that pickles to worker processes."""

    buckets: tuple[Size, ...]
    max_aspect_ratio: float
    min_side: int
    max_pixels: int
    max_file_bytes: int
    background: tuple[int, int, int]
    output_dir: Path
    caption_image_side: int | None = None
    """Short side in pixels of the captioning copy of each image larger than that; None writes none."""

    @classmethod
    def from_spec(
        cls, spec: DatasetSpec, *, output_dir: Path, caption_image_side: int | None = None
    ) -> ConversionSettings:
        if spec.bucketing:
            buckets = tuple(build_buckets(resolution=spec.resolution, max_aspect_ratio=spec.max_aspect_ratio))
        else:
            buckets = (square_bucket(spec.resolution),)
        return cls(
            buckets=buckets,
            max_aspect_ratio=spec.max_aspect_ratio,
            min_side=spec.min_side,
            max_pixels=spec.max_pixels,
            max_file_bytes=spec.max_file_bytes,
            background=parse_hex_colour(spec.background),
            output_dir=output_dir,
            caption_image_side=caption_image_side,
        )


def is_image_name(name: str) -> bool:
    """Return whether a file name has an image extension (any letter case)."""
    return PurePosixPath(name).suffix.lower() in IMAGE_EXTENSIONS


def skip_reason(name: str, cause: str, detail: str = "") -> str:
    """Format a one-line skip reason that names the file."""
    return f"{name}: {cause} ({detail})" if detail else f"{name}: {cause}"


def hash_file(record: ImageRecord, path: Path, *, max_file_bytes: int) -> ImageRecord:
    """Fill in size and sha256 of the raw bytes, or skip an empty, too large or unreadable file.

    Files over max_file_bytes are skipped without hashing, so their sha256 stays empty.
    """
    try:
        record.size_bytes = path.stat().st_size
        if record.size_bytes == 0:
            raise SkipImage(EMPTY_FILE)
        if record.size_bytes > max_file_bytes:
            raise SkipImage(FILE_TOO_LARGE, f"{record.size_bytes} bytes; dataset.maxFileBytes is {max_file_bytes}")
        with path.open("rb") as handle:
            record.sha256 = hashlib.file_digest(handle, "sha256").hexdigest()
    except SkipImage as skip:
        record.skip(skip_reason(record.name, skip.cause, skip.detail))
    except OSError as error:
        record.skip(skip_reason(record.name, UNREADABLE, error.strerror or str(error)))
    return record


def check_and_convert(record: ImageRecord, path: Path, settings: ConversionSettings) -> ImageRecord:
    """Check one hashed image and save it as an RGB PNG at its bucket size, or skip it with the reason."""
    try:
        with open_header(path, max_pixels=settings.max_pixels) as image:
            check_header(image, settings)
            decoded = decode_image(image, warnings=record.warnings)
        rgb = convert_to_rgb(decoded, settings=settings, warnings=record.warnings)
    except SkipImage as skip:
        record.skip(skip_reason(record.name, skip.cause, skip.detail))
        return record

    record.original_size = rgb.size
    record.bucket = nearest_bucket(rgb.size, list(settings.buckets))
    width, height = rgb.size
    if aspect_ratio(rgb.size) > settings.max_aspect_ratio:
        record.reason = (
            f"centre-cropped from {width}x{height} (aspect ratio {aspect_ratio(rgb.size):.2f}) to the "
            f"{record.bucket[0]}x{record.bucket[1]} bucket; dataset.maxAspectRatio is {settings.max_aspect_ratio:g}"
        )
    upscale = max(record.bucket[0] / width, record.bucket[1] / height)
    if upscale > UPSCALE_WARNING_FACTOR:
        record.warnings.append(f"upscaled {upscale:.1f}x from {width}x{height}; expect soft detail")
    fitted = fit_to_bucket(rgb, record.bucket)

    settings.output_dir.mkdir(parents=True, exist_ok=True)
    record.image_path = settings.output_dir / f"{record.sha256}.png"
    fitted.save(record.image_path, format="PNG", compress_level=PNG_COMPRESS_LEVEL)
    side = settings.caption_image_side
    if side is not None and min(fitted.size) > side:
        record.caption_image_path = write_caption_image(fitted, settings.output_dir / f"{record.sha256}.caption.ppm", side=side)
    return record


def write_caption_image(image: Image.Image, path: Path, *, side: int) -> Path:
    """Save ``image`` scaled to a short side of ``side`` pixels as an uncompressed PPM, and return ``path``.

    Captioning models read inputs of about 224 pixels, and decoding a 512-pixel PNG takes
    several milliseconds, so captioning reads this copy instead. A PPM reads back without
    any decompression.
    """
    scale = side / min(image.size)
    size = (max(side, round(image.width * scale)), max(side, round(image.height * scale)))
    image.resize(size, Image.Resampling.BICUBIC, reducing_gap=REDUCING_GAP).save(path, format="PPM")
    return path


def open_header(path: Path, *, max_pixels: int) -> Image.Image:
    """Open an image lazily: Pillow reads the header, and no pixel is decoded yet."""
    try:
        return Image.open(path, formats=PILLOW_FORMATS)
    except Image.UnidentifiedImageError as error:
        raise SkipImage(NOT_AN_IMAGE, "no supported image format recognised") from error
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as error:
        # Pillow raises this from the header alone when it claims more than twice
        # Image.MAX_IMAGE_PIXELS, or from the warning when warnings are errors.
        raise SkipImage(TOO_MANY_PIXELS, f"{error} dataset.maxPixels is {max_pixels}") from error
    except DECODE_ERRORS as error:
        raise SkipImage(CORRUPT, f"header unreadable: {error}") from error


def check_header(image: Image.Image, settings: ConversionSettings) -> None:
    """Skip images whose header claims too many pixels or too short a side."""
    width, height = image.size
    if width * height > settings.max_pixels:
        raise SkipImage(
            TOO_MANY_PIXELS,
            f"{width}x{height} = {width * height} pixels; dataset.maxPixels is {settings.max_pixels}",
        )
    if min(width, height) < settings.min_side:
        raise SkipImage(TOO_SMALL, f"{width}x{height} pixels; dataset.minSide is {settings.min_side}")


def decode_image(image: Image.Image, *, warnings: list[str]) -> Image.Image:
    """Decode the first frame and turn it upright by its EXIF orientation."""
    try:
        # Asked before load() because finding a second frame seeks, which would discard decoded pixels.
        if getattr(image, "is_animated", False):
            warnings.append(f"animated image: only the first of {image.n_frames} frames is used")
            image.seek(0)
        image.load()
    except DECODE_ERRORS as error:
        raise SkipImage(CORRUPT, str(error)) from error
    try:
        return ImageOps.exif_transpose(image)
    except DECODE_ERRORS as error:
        warnings.append(f"EXIF orientation unreadable ({error}); image used as stored")
        return image


def convert_to_rgb(image: Image.Image, *, settings: ConversionSettings, warnings: list[str]) -> Image.Image:
    """Convert a decoded image to RGB, or skip it when its pixel data cannot be converted."""
    try:
        return to_rgb(image, background=settings.background, warnings=warnings)
    except DECODE_ERRORS as error:
        raise SkipImage(CORRUPT, f"mode {image.mode} cannot be converted to RGB: {error}") from error


def fit_to_bucket(image: Image.Image, bucket: Size) -> Image.Image:
    """Scale the image to cover the bucket and centre-crop it, in one Lanczos resampling."""
    box = cover_crop_box(image.size, bucket)
    return image.resize(bucket, Image.Resampling.LANCZOS, box=box, reducing_gap=REDUCING_GAP)


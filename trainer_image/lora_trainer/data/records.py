"""ImageRecord: one input file's journey through preparation, captioning and the manifest."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

CaptionSource = Literal["sidecar", "generated", "none"]


@dataclass
class ImageRecord:
    """One input file. Skipped files keep their record, with the reason, for the manifest."""

    name: str
    """Path relative to its source, POSIX separators, original spelling (non-ASCII kept)."""
    source_uri: str
    sha256: str = ""
    size_bytes: int = 0
    status: Literal["accepted", "skipped"] = "accepted"
    reason: str = ""
    """One-line reason a skipped file was skipped, or what was done to an accepted one (for example a crop)."""
    duplicate_of: str = ""
    """Name of the earlier identical file, when this one is an exact duplicate."""
    original_size: tuple[int, int] | None = None
    """(width, height) after EXIF orientation, before cropping."""
    bucket: tuple[int, int] | None = None
    """(width, height) the image was cropped and resized to for training."""
    image_path: Path | None = None
    """Local RGB PNG at the bucket size, ready to encode; None for skipped files."""
    caption_image_path: Path | None = None
    """Smaller uncompressed copy of the bucket image for captioning, when preparation wrote one."""
    caption: str = ""
    caption_source: CaptionSource = "none"
    tags: list[tuple[str, float]] = field(default_factory=list)
    """Generated tags with their probabilities, best first."""
    warnings: list[str] = field(default_factory=list)

    @property
    def accepted(self) -> bool:
        return self.status == "accepted"

    def skip(self, reason: str) -> None:
        """Mark the file skipped; ``reason`` names the file and the cause."""
        self.status = "skipped"
        self.reason = reason
        self.image_path = None
        self.caption_image_path = None
        self.bucket = None

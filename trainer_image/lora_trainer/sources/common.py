"""Pieces shared by every source scheme: fetched files, options, file selection and bounded writes."""

from __future__ import annotations

import os
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from fnmatch import fnmatchcase
from pathlib import Path, PurePosixPath

import httpx

from lora_trainer.data.captions import match_sidecars
from lora_trainer.data.images import IMAGE_EXTENSIONS, is_image_name
from lora_trainer.errors import InvalidInputError

DEFAULT_MAX_FILE_BYTES = 200 * 1024 * 1024
COPY_CHUNK_BYTES = 256 * 1024


@dataclass(frozen=True)
class FetchedFile:
    """One file of a source, available on the local disk unless skip_reason is set."""

    name: str
    """Path relative to the source, POSIX separators, original spelling."""
    path: Path | None
    source_uri: str
    size_bytes: int = 0
    skip_reason: str = ""
    """Reason the file was not fetched (for example its size); its record is skipped with this reason."""


@dataclass(frozen=True)
class SourceOptions:
    """Settings of every fetch, whatever the scheme."""

    base_dir: Path
    """Folder that relative file:// paths resolve against (the manifest's folder or the working directory)."""
    caption_extension: str = ".txt"
    max_file_bytes: int = DEFAULT_MAX_FILE_BYTES
    s3_endpoint: str = ""
    s3_secure: bool = True
    s3_region: str = ""
    http_client: httpx.Client | None = field(default=None, compare=False)
    """Client for https:// sources; None builds one with the default timeouts and system trust."""
    pvc_root: Path | None = None
    """Mount root of pvc:// claims; None reads LORA_PVC_ROOT, default /mnt/pvc."""


def select_files(names: Iterable[str], *, include: Sequence[str], caption_extension: str) -> list[str]:
    """Return the images that match include (all images when it is empty) plus their sidecars, sorted.

    A pattern matches the whole relative name or its last part, case-sensitively, so
    '*.png' selects 'a.png' and 'sub/a.png'. Hidden files and folders (a leading dot)
    and files that are neither an image nor a matched sidecar are left out.
    """
    visible = sorted(name for name in set(names) if not is_hidden(name))
    images = [name for name in visible if is_image_name(name) and matches_include(name, include)]
    sidecars = match_sidecars(visible, caption_extension=caption_extension)
    selected = set(images)
    selected.update(sidecars[name] for name in images if name in sidecars)
    return sorted(selected)


def matches_include(name: str, include: Sequence[str]) -> bool:
    """Return whether a relative name matches one of the glob patterns; an empty list matches all."""
    if not include:
        return True
    base = PurePosixPath(name).name
    return any(fnmatchcase(name, pattern) or fnmatchcase(base, pattern) for pattern in include)


def is_hidden(name: str) -> bool:
    return any(part.startswith(".") for part in PurePosixPath(name).parts)


def local_path_for(destination: Path, name: str, *, uri: str) -> Path:
    """Return destination/name, rejecting names that are absolute or climb out with '..'."""
    parts = PurePosixPath(name).parts
    if not parts or name.startswith("/") or any(part in ("", ".", "..") for part in parts):
        raise InvalidInputError(
            f"unsafe file name {name!r} in {uri}: rename the object so it has no '..' or leading '/'"
        )
    return destination.joinpath(*parts)


class FileTooLarge(Exception):
    """A download went past its byte limit; the partial file was removed."""


def write_limited(chunks: Iterable[bytes], path: Path, *, max_bytes: int) -> int:
    """Write chunks to path through a temporary file, stopping past max_bytes; return the size.

    Raises FileTooLarge, with nothing left on disk, when the data exceeds max_bytes.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(f".{path.name}.partial")
    written = 0
    try:
        with partial.open("wb") as handle:
            for chunk in chunks:
                written += len(chunk)
                if written > max_bytes:
                    raise FileTooLarge(f"more than {max_bytes} bytes")
                handle.write(chunk)
        os.replace(partial, path)
    finally:
        partial.unlink(missing_ok=True)
    return written


def require_images(files: list[FetchedFile], *, uri: str, include: Sequence[str]) -> list[FetchedFile]:
    """Raise InvalidInputError when a source yielded no image file; return files otherwise."""
    if any(is_image_name(file.name) for file in files):
        return files
    patterns = ", ".join(include) if include else "none, so every image"
    extensions = " ".join(sorted(IMAGE_EXTENSIONS))
    raise InvalidInputError(
        f"source {uri} contains no image file (include patterns: {patterns}). "
        f"Check the URI and the include patterns; supported extensions: {extensions}"
    )

"""Sidecar captions: photo.png is captioned by photo.txt (the dataset's caption extension)."""

from __future__ import annotations

import codecs
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from lora_trainer.data.images import is_image_name

# Tried in order when a sidecar is not UTF-8. GB2312 comes first because its strict byte
# ranges (both bytes of a character in 0xA1-0xFE) reject typical Western text, where an
# accented letter usually sits alone between ASCII letters. cp1252 is the Western Windows
# default. Latin-1 decodes any byte, so the chain always ends with some text.
LEGACY_ENCODINGS = ("gb2312", "cp1252", "latin-1")
MAX_CAPTION_BYTES = 64 * 1024


@dataclass(frozen=True)
class SidecarCaption:
    """A caption read from a sidecar file, with the problems met while reading it."""

    text: str
    warnings: tuple[str, ...] = ()


def read_sidecar(path: Path, *, name: str) -> SidecarCaption:
    """Read a caption file as UTF-8 (BOM stripped), falling back to legacy encodings.

    Whitespace runs, line breaks included, collapse to single spaces. A fallback decode,
    a UTF-16 file or a caption cut at MAX_CAPTION_BYTES adds a warning that names the file.
    """
    warnings: list[str] = []
    data = path.read_bytes()
    if len(data) > MAX_CAPTION_BYTES:
        warnings.append(f"{name}: caption longer than {MAX_CAPTION_BYTES} bytes; the rest is ignored")
        data = data[:MAX_CAPTION_BYTES]
        # Cut at the last space so that a multi-byte character is not split.
        last_space = data.rfind(b" ")
        if last_space > 0:
            data = data[:last_space]
    text = _decode(data, name=name, warnings=warnings)
    return SidecarCaption(text=" ".join(text.split()), warnings=tuple(warnings))


def _decode(data: bytes, *, name: str, warnings: list[str]) -> str:
    # Windows Notepad saves "Unicode" as UTF-16 with a byte order mark.
    if data.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        try:
            return data.decode("utf-16")
        except UnicodeDecodeError:
            warnings.append(f"{name}: starts with a UTF-16 byte order mark but is not valid UTF-16")
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as error:
        first_error = error
    for encoding in LEGACY_ENCODINGS:
        try:
            text = data.decode(encoding)
        except UnicodeDecodeError:
            continue
        warnings.append(
            f"{name}: not valid UTF-8 (byte {first_error.start}); read as {encoding}. "
            "Save captions as UTF-8 to avoid a wrong guess"
        )
        return text
    raise AssertionError("latin-1 decodes every byte sequence")


def match_sidecars(names: list[str], *, caption_extension: str) -> dict[str, str]:
    """Map each image name to the name of its sidecar among names.

    The stem must match exactly and the extension in any letter case, so photo.png
    is captioned by photo.txt or photo.TXT.
    """
    sidecars_by_stem = {
        str(PurePosixPath(name).with_suffix("")): name
        for name in names
        if PurePosixPath(name).suffix.lower() == caption_extension.lower()
    }
    matches = {}
    for name in names:
        if not is_image_name(name):
            continue
        sidecar = sidecars_by_stem.get(str(PurePosixPath(name).with_suffix("")))
        if sidecar is not None:
            matches[name] = sidecar
    return matches

"""file:// and pvc:// sources: folders or single files already on a local or mounted disk.

Their files are read in place; nothing is copied.
"""

from __future__ import annotations

import os
import re
from collections.abc import Sequence
from pathlib import Path
from urllib.parse import unquote

from lora_trainer.errors import InvalidInputError
from lora_trainer.sources.common import FetchedFile, SourceOptions, require_images, select_files

PVC_ROOT_ENV = "LORA_PVC_ROOT"
DEFAULT_PVC_ROOT = Path("/mnt/pvc")
# A PersistentVolumeClaim name is a DNS-1123 subdomain.
CLAIM_NAME = re.compile(r"^[a-z0-9]([-a-z0-9.]{0,251}[a-z0-9])?$")


def file_uri_path(uri: str, *, base_dir: Path) -> Path:
    """Return the local path of a file:// URI; a relative path resolves against base_dir.

    file:///data/photos is absolute and file://examples/photos is relative. Percent
    escapes are decoded, so file:///tmp/my%20photos names 'my photos'.
    """
    remainder = unquote(uri.removeprefix("file://"))
    if remainder.startswith("localhost/"):
        remainder = remainder.removeprefix("localhost")
    if not remainder:
        raise InvalidInputError(f"file URI {uri!r} names no path: use file:///absolute/path or file://relative/path")
    path = Path(remainder)
    return path if path.is_absolute() else base_dir / path


def pvc_uri_path(uri: str, *, pvc_root: Path | None = None) -> Path:
    """Return where pvc://claim/path is mounted: PVC_ROOT/claim/path.

    The root is pvc_root, else the LORA_PVC_ROOT environment variable, else /mnt/pvc.
    """
    root = pvc_root or Path(os.environ.get(PVC_ROOT_ENV) or DEFAULT_PVC_ROOT)
    remainder = unquote(uri.removeprefix("pvc://"))
    claim, _, inner = remainder.partition("/")
    if not CLAIM_NAME.match(claim):
        raise InvalidInputError(
            f"invalid claim name {claim!r} in {uri}: use pvc://CLAIM/path with the PersistentVolumeClaim's name"
        )
    claim_root = (root / claim).resolve()
    path = (claim_root / inner).resolve()
    if path != claim_root and claim_root not in path.parents:
        raise InvalidInputError(f"path of {uri} leaves the claim's mount {claim_root}: remove the '..' parts")
    return path


def fetch_local(
    uri: str,
    path: Path,
    *,
    include: Sequence[str],
    options: SourceOptions,
    missing_hint: str,
) -> list[FetchedFile]:
    """List the images (and their sidecars) of a local folder, or a single local file with its sidecar."""
    if path.is_file():
        names = [path.name, *_sibling_names(path, options.caption_extension)]
        chosen = select_files(names, include=(), caption_extension=options.caption_extension)
        files = [_fetched(uri, path.parent / name, name) for name in chosen]
        return require_images(files, uri=uri, include=())
    if not path.is_dir():
        raise InvalidInputError(f"source {uri} not found: {path} is neither a file nor a folder. {missing_hint}")

    names = list_folder(path)
    chosen = select_files(names, include=include, caption_extension=options.caption_extension)
    files = [_fetched(uri, path / name, name) for name in chosen]
    return require_images(files, uri=uri, include=include)


def list_folder(root: Path) -> list[str]:
    """Return the relative POSIX names of every file under root, following no folder links."""
    names = []
    for folder, subfolders, filenames in os.walk(root):
        subfolders.sort()
        relative = Path(folder).relative_to(root)
        for filename in sorted(filenames):
            if (Path(folder) / filename).is_file():
                names.append((relative / filename).as_posix())
    return names


def _sibling_names(path: Path, caption_extension: str) -> list[str]:
    return [
        sibling.name
        for sibling in path.parent.glob(f"{_glob_escape(path.stem)}.*")
        if sibling.suffix.lower() == caption_extension.lower()
    ]


def _glob_escape(text: str) -> str:
    return re.sub(r"([*?\[])", r"[\1]", text)


def _fetched(uri: str, path: Path, name: str) -> FetchedFile:
    return FetchedFile(name=name, path=path, source_uri=uri, size_bytes=path.stat().st_size)

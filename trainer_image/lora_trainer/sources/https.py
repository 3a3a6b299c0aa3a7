"""https:// sources: one image per URL, plus its sidecar caption when the server has one.

Every download is bounded: connect and read timeouts, an overall deadline, a byte
limit checked while streaming, and a redirect limit with each hop checked by
check_url. The response must be an image (by content type or magic bytes), or
plain text for a sidecar, so an HTML error or login page is never taken as data.
"""

from __future__ import annotations

import logging
import mimetypes
import ssl
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Literal
from urllib.parse import unquote

import httpx

from lora_trainer.data.images import is_image_name
from lora_trainer.errors import InvalidInputError, TrainerError
from lora_trainer.fetch_guard import FetchGuard, FetchPolicy
from lora_trainer.sources.common import FetchedFile, FileTooLarge, SourceOptions, local_path_for, write_limited
from lora_trainer.sources.url_check import check_url

logger = logging.getLogger(__name__)

DEFAULT_TIMEOUT = httpx.Timeout(connect=10.0, read=60.0, write=60.0, pool=10.0)
DOWNLOAD_DEADLINE_SECONDS = 30 * 60.0
MAX_REDIRECTS = 5
# Ask for an uncompressed body: a small gzip body could decode to far more than the byte
# limit. The limit counts decoded bytes, so a server that compresses anyway is still bounded.
IDENTITY_ENCODING = {"Accept-Encoding": "identity"}
STREAM_CHUNK_BYTES = 64 * 1024
# Statuses that a later attempt may not see again; other 4xx statuses are permanent.
TRANSIENT_STATUSES = frozenset({408, 425, 429})
# Leading bytes of the raster formats that data preparation decodes, with their extension.
MAGIC_EXTENSIONS = (
    (b"\x89PNG\r\n\x1a\n", ".png"),
    (b"\xff\xd8\xff", ".jpg"),
    (b"GIF87a", ".gif"),
    (b"GIF89a", ".gif"),
    (b"II*\x00", ".tif"),
    (b"MM\x00*", ".tif"),
    (b"BM", ".bmp"),
)


ContentKind = Literal["image", "text"]


@dataclass(frozen=True)
class _Download:
    path: Path
    size: int


def fetch_https(uri: str, *, destination: Path, options: SourceOptions) -> list[FetchedFile]:
    """Download the image at uri into destination, then its sidecar caption if one exists."""
    # A caller's own client skips the connect-time address check; check_url still runs on every hop.
    client = options.http_client or FetchGuard(FetchPolicy.from_env()).client(timeout=DEFAULT_TIMEOUT)
    try:
        name = _name_from_url(uri)
        image = _download(client, uri, destination=destination, name=name, expect="image",
                          max_bytes=options.max_file_bytes)
        files = [FetchedFile(name=image.path.name, path=image.path, source_uri=uri, size_bytes=image.size)]
        sidecar = _fetch_sidecar(client, uri, destination=destination, image_name=image.path.name, options=options)
        if sidecar is not None:
            files.append(sidecar)
    finally:
        if options.http_client is None:
            client.close()
    return files


def _fetch_sidecar(
    client: httpx.Client, uri: str, *, destination: Path, image_name: str, options: SourceOptions
) -> FetchedFile | None:
    """Download URL-with-the-caption-extension; a missing or non-text sidecar means no caption."""
    url = httpx.URL(uri)
    if not is_image_name(url.path):
        return None
    sidecar_url = str(url.copy_with(path=str(PurePosixPath(url.path).with_suffix(options.caption_extension))))
    name = str(PurePosixPath(image_name).with_suffix(options.caption_extension))
    try:
        sidecar = _download(client, sidecar_url, destination=destination, name=name, expect="text",
                            max_bytes=options.max_file_bytes)
    except InvalidInputError as error:
        logger.info("No sidecar caption for %s: %s", uri, error)
        return None
    return FetchedFile(name=name, path=sidecar.path, source_uri=uri, size_bytes=sidecar.size)


def _download(
    client: httpx.Client, uri: str, *, destination: Path, name: str, expect: ContentKind, max_bytes: int
) -> _Download:
    """GET uri, following at most MAX_REDIRECTS redirects, and save the body as destination/name."""
    current = uri
    deadline = time.monotonic() + DOWNLOAD_DEADLINE_SECONDS
    for _ in range(MAX_REDIRECTS + 1):
        check_url(current)
        try:
            with client.stream("GET", current, headers=IDENTITY_ENCODING, follow_redirects=False) as response:
                if response.is_redirect:
                    current = _redirect_target(response, uri=uri)
                    continue
                _check_status(response, uri=uri)
                return _save_body(response, uri=uri, destination=destination, name=name, expect=expect,
                                  max_bytes=max_bytes, deadline=deadline)
        except httpx.TimeoutException as error:
            raise TrainerError(
                f"download of {uri} timed out ({type(error).__name__}); the run retries, or host the file elsewhere"
            ) from error
        except httpx.TransportError as error:
            raise _transport_failure(error, uri=uri) from error
    raise InvalidInputError(f"download of {uri} redirected more than {MAX_REDIRECTS} times: use the final URL")


def _redirect_target(response: httpx.Response, *, uri: str) -> str:
    location = response.headers.get("location")
    if not location:
        raise InvalidInputError(f"download of {uri} got redirect {response.status_code} without a Location header")
    return str(response.url.join(location))


def _check_status(response: httpx.Response, *, uri: str) -> None:
    status = response.status_code
    if status == 200:
        return
    if status >= 500 or status in TRANSIENT_STATUSES:
        raise TrainerError(f"download of {uri} failed with HTTP {status}; the server may recover, so the run retries")
    raise InvalidInputError(f"download of {uri} failed with HTTP {status}: check that the URL is right and public")


def _save_body(
    response: httpx.Response,
    *,
    uri: str,
    destination: Path,
    name: str,
    expect: ContentKind,
    max_bytes: int,
    deadline: float,
) -> _Download:
    declared = response.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > max_bytes:
        raise InvalidInputError(
            f"{uri} is {declared} bytes, larger than dataset.maxFileBytes ({max_bytes}): "
            "raise the limit or use a smaller file"
        )

    chunks = _chunks_until(response.iter_bytes(STREAM_CHUNK_BYTES), deadline=deadline, uri=uri)
    head = next(chunks, b"")
    content_type = response.headers.get("content-type", "")
    kind = classify_content(content_type, head)
    if kind != expect:
        raise InvalidInputError(
            f"{uri} is not {'an image' if expect == 'image' else 'plain text'} "
            f"(content type {content_type or 'missing'!r}); point the source at the file itself, not a web page"
        )

    if expect == "image":
        name = _with_image_extension(name, head, content_type)
    path = local_path_for(destination, name, uri=uri)
    try:
        size = write_limited(_prepend(head, chunks), path, max_bytes=max_bytes)
    except FileTooLarge as error:
        raise InvalidInputError(
            f"download of {uri} stopped: larger than dataset.maxFileBytes ({max_bytes} bytes); "
            "raise the limit or use a smaller file"
        ) from error
    return _Download(path=path, size=size)


def classify_content(content_type: str, head: bytes) -> ContentKind | None:
    """Return 'image', 'text' or None from the content type and the first bytes of a body."""
    if sniff_image_extension(head):
        return "image"
    mime = content_type.split(";", 1)[0].strip().lower()
    # SVG is an image type but no raster decoder reads it.
    if mime.startswith("image/") and mime != "image/svg+xml":
        return "image"
    if mime == "text/plain":
        return "text"
    return None


def sniff_image_extension(head: bytes) -> str:
    """Return the extension of the raster format that head starts with, or ''."""
    if head[:4] == b"RIFF" and head[8:12] == b"WEBP":
        return ".webp"
    if head[4:12] in (b"ftypavif", b"ftypavis"):
        return ".avif"
    for magic, extension in MAGIC_EXTENSIONS:
        if head.startswith(magic):
            return extension
    return ""


def _name_from_url(uri: str) -> str:
    name = unquote(PurePosixPath(httpx.URL(uri).path).name)
    return name or "download"


def _with_image_extension(name: str, head: bytes, content_type: str) -> str:
    """Give a downloaded image an image extension from its bytes or content type when its name has none."""
    if is_image_name(name):
        return name
    mime = content_type.split(";", 1)[0].strip()
    extension = sniff_image_extension(head) or mimetypes.guess_extension(mime) or ".img"
    return f"{name}{extension}"


def _chunks_until(chunks: Iterator[bytes], *, deadline: float, uri: str) -> Iterator[bytes]:
    for chunk in chunks:
        if time.monotonic() > deadline:
            raise TrainerError(
                f"download of {uri} took longer than {DOWNLOAD_DEADLINE_SECONDS:.0f} s; the run retries, "
                "or host the file closer"
            )
        if chunk:
            yield chunk


def _prepend(head: bytes, chunks: Iterator[bytes]) -> Iterator[bytes]:
    if head:
        yield head
    yield from chunks


def _transport_failure(error: httpx.TransportError, *, uri: str) -> TrainerError:
    cause = error.__cause__ or error.__context__
    while cause is not None and not isinstance(cause, ssl.SSLCertVerificationError):
        cause = cause.__cause__ or cause.__context__
    if cause is not None:
        return InvalidInputError(
            f"TLS certificate of {uri} failed verification ({cause.verify_message}): fix the server's certificate"
        )
    return TrainerError(f"download of {uri} failed: {error}; the run retries")

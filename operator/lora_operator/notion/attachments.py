"""Copy a row's images into the training's dataset folder before the training exists.

Notion-hosted file URLs expire about an hour after the API hands them out, so the
operator copies every attachment into S3 (or a local folder) and the trainer reads that
copy. A URL that has expired meanwhile (the file host responds 400 or 403) is fetched
again: the page is retrieved through the API for a fresh URL. External URLs pass the
URL guard first, on every redirect, and download through a client that checks each
address again when it connects.
"""

from __future__ import annotations

import logging
import mimetypes
import re
import tempfile
from collections.abc import Callable
from pathlib import Path, PurePosixPath

import httpx

from lora_operator.notion.overrides import RowRejected
from lora_operator.notion.rows import Attachment, NotionRow
from lora_operator.notion.url_guard import UrlBlocked, UrlGuard
from lora_trainer.fetch_guard import FetchBlocked, FetchFailed
from lora_trainer.storage import ArtifactStore

# Statuses of a file host that mean the URL, not the file, has gone stale.
EXPIRED_STATUSES = frozenset({400, 403})
# Statuses that may pass: the copy is tried again at the next sync pass.
TRANSIENT_STATUSES = frozenset({408, 425, 429, 500, 502, 503, 504, 529})
MAX_REFRESHES = 2
MAX_REDIRECTS = 5
CHUNK_BYTES = 256 * 1024
UNSAFE_NAME_CHARACTERS = re.compile(r"[^\w.\-]+")
log = logging.getLogger("lora_operator.notion")


class AttachmentUnavailable(RuntimeError):
    """A download that failed for a reason that may pass; the row stays claimed and is retried."""


def copy_attachments(
    row: NotionRow,
    *,
    store: ArtifactStore,
    refresh: Callable[[], NotionRow],
    guard: UrlGuard,
    http: httpx.Client,
    external_http: httpx.Client,
    max_bytes: int,
) -> list[str]:
    """Copy every image of ``row`` into ``store`` and return the keys written.

    Notion-hosted files download with ``http``, external URLs with ``external_http``, which
    comes from ``guard.client()``.

    Raises RowRejected for data that no retry fixes (a missing file, a blocked URL, a
    file over ``max_bytes``) and AttachmentUnavailable for failures that may pass.
    """
    store.delete_prefix("")  # Files of an earlier, interrupted copy.
    urls = _FreshUrls(row, refresh)
    keys = []
    for attachment in row.images:
        key = attachment_key(attachment)
        client = external_http if attachment.kind == "external" else http
        _copy_one(attachment, key=key, store=store, urls=urls, guard=guard, http=client, max_bytes=max_bytes)
        keys.append(key)
    return keys


def attachment_key(attachment: Attachment) -> str:
    """Return a unique, safe object name: the position in the row, then the file's own name."""
    name = UNSAFE_NAME_CHARACTERS.sub("_", PurePosixPath(attachment.name).name).strip("._") or "image"
    return f"{attachment.index:02d}-{name[:120]}"


class _FreshUrls:
    """The newest URLs of a row's files; one page retrieval renews the URLs of every file."""

    def __init__(self, row: NotionRow, refresh: Callable[[], NotionRow]) -> None:
        self._row = row
        self._refresh = refresh
        self.renewals = 0

    def current(self, attachment: Attachment) -> Attachment:
        for candidate in self._row.images:
            if candidate.index == attachment.index and candidate.name == attachment.name:
                return candidate
        raise RowRejected("reject.attachment", name=attachment.name,
                          detail="the file was removed from the row while it was copied")

    def renew(self, expired: Attachment) -> Attachment:
        """Return a fresh URL for ``expired``, retrieving the page unless an earlier renewal already did."""
        latest = self.current(expired)
        if latest.url != expired.url:
            return latest
        log.info("attachment %r: its URL expired; fetching fresh URLs through the API", expired.name)
        self._row = self._refresh()
        self.renewals += 1
        return self.current(expired)


def _copy_one(
    attachment: Attachment,
    *,
    key: str,
    store: ArtifactStore,
    urls: _FreshUrls,
    guard: UrlGuard,
    http: httpx.Client,
    max_bytes: int,
) -> None:
    current = urls.current(attachment)
    for tries in range(MAX_REFRESHES + 1):
        with tempfile.TemporaryDirectory(prefix="notion-attachment-") as folder:
            path = Path(folder) / "data"
            status, content_type = _download(current, path=path, guard=guard, http=http, max_bytes=max_bytes)
            if status == 200:
                store.put_file(_with_extension(key, content_type), path)
                return
        if current.kind == "file" and status in EXPIRED_STATUSES and tries < MAX_REFRESHES:
            current = urls.renew(current)
            continue
        if status in TRANSIENT_STATUSES:
            raise AttachmentUnavailable(f"download of {current.name!r} failed with HTTP {status}; retrying at the next pass")
        raise RowRejected("reject.attachment", name=current.name, detail=f"HTTP {status}")


def _download(
    attachment: Attachment, *, path: Path, guard: UrlGuard, http: httpx.Client, max_bytes: int
) -> tuple[int, str]:
    """Stream one URL to ``path``; return (HTTP status, content type)."""
    url = attachment.url
    try:
        for _ in range(MAX_REDIRECTS + 1):
            if attachment.kind == "external":
                guard.check(url)
            with http.stream("GET", url, follow_redirects=False) as response:
                if response.is_redirect:
                    url = str(response.url.join(response.headers.get("location", "")))
                    continue
                if response.status_code != 200:
                    return response.status_code, ""
                _write_limited(response, path=path, max_bytes=max_bytes, name=attachment.name)
                return 200, response.headers.get("content-type", "")
    except (UrlBlocked, FetchBlocked) as error:
        # FetchBlocked comes from the connect-time check: the host now resolves to a blocked address.
        raise RowRejected("reject.url_blocked", name=attachment.name, detail=str(error)) from None
    except (httpx.TransportError, FetchFailed) as error:
        raise AttachmentUnavailable(f"download of {attachment.name!r} failed: {error!r}") from error
    raise RowRejected("reject.attachment", name=attachment.name, detail=f"more than {MAX_REDIRECTS} redirects")


def _write_limited(response: httpx.Response, *, path: Path, max_bytes: int, name: str) -> None:
    written = 0
    with path.open("wb") as handle:
        for chunk in response.iter_bytes(CHUNK_BYTES):
            written += len(chunk)
            if written > max_bytes:
                raise RowRejected("reject.attachment", name=name, detail=f"larger than {max_bytes} bytes")
            handle.write(chunk)


def _with_extension(key: str, content_type: str) -> str:
    # Data preparation picks images by extension, so a name without one gets it from the type.
    if PurePosixPath(key).suffix:
        return key
    extension = mimetypes.guess_extension(content_type.split(";")[0].strip()) if content_type else None
    return key + (extension or "")

"""Notion-hosted files: stored blobs behind signed URLs that expire.

Like Notion's S3-hosted files, each URL handed out carries an expiry time and a
signature; the file host answers 403 AccessDenied ("Request has expired") after it.
`expire_issued_urls` ends every URL handed out so far, as if an hour had passed.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import threading
import time
from dataclasses import dataclass
from urllib.parse import quote

from tests.notion_server.times import iso_time

EXPIRED_BODY = (
    '<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>AccessDenied</Code>'
    "<Message>Request has expired</Message></Error>"
)
DENIED_BODY = (
    '<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>AccessDenied</Code>'
    "<Message>Access Denied</Message></Error>"
)


@dataclass
class Blob:
    id: str
    name: str
    data: bytes
    content_type: str


class FileHost:
    """Blobs by id, and the signing of their URLs."""

    def __init__(self, *, ttl_seconds: float = 3600.0) -> None:
        self.ttl_seconds = ttl_seconds
        self.base_url = ""
        self._key = secrets.token_bytes(16)
        self._lock = threading.Lock()
        self._blobs: dict[str, Blob] = {}
        self._revoked_before = 0.0
        self.downloads: list[tuple[str, int]] = []  # (blob id, status)

    def add(self, name: str, data: bytes, content_type: str) -> Blob:
        with self._lock:
            blob = Blob(id=secrets.token_hex(16), name=name, data=data, content_type=content_type)
            self._blobs[blob.id] = blob
            return blob

    def blob(self, blob_id: str) -> Blob | None:
        with self._lock:
            return self._blobs.get(blob_id)

    def signed_url(self, blob_id: str, name: str) -> tuple[str, str]:
        """Return (url, expiry_time) of a fresh URL for one blob."""
        issued = time.time()
        expires = issued + self.ttl_seconds
        query = f"issued={issued:.6f}&expires={expires:.6f}"
        signature = self._sign(blob_id, query)
        url = f"{self.base_url}/files/{blob_id}/{quote(name)}?{query}&signature={signature}"
        return url, iso_time(expires)

    def expire_issued_urls(self) -> None:
        """End every URL handed out so far; URLs handed out later work."""
        with self._lock:
            self._revoked_before = time.time()

    def check(self, blob_id: str, *, issued: str, expires: str, signature: str) -> tuple[int, str]:
        """Return (HTTP status, error body) of a download request; 200 means serve the blob."""
        query = f"issued={issued}&expires={expires}"
        if not hmac.compare_digest(signature, self._sign(blob_id, query)):
            return 403, DENIED_BODY
        with self._lock:
            revoked = float(issued) < self._revoked_before
        if revoked or time.time() > float(expires):
            return 403, EXPIRED_BODY
        return (200, "") if self.blob(blob_id) else (404, DENIED_BODY)

    def record(self, blob_id: str, status: int) -> None:
        with self._lock:
            self.downloads.append((blob_id, status))

    def _sign(self, blob_id: str, query: str) -> str:
        return hmac.new(self._key, f"{blob_id}?{query}".encode(), hashlib.sha256).hexdigest()

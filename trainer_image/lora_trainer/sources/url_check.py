"""The check that every URL passes before the trainer sends a request to it, redirects included."""

from __future__ import annotations

import httpx

from lora_trainer.errors import InvalidInputError


def check_url(url: str) -> None:
    """Raise InvalidInputError unless url may be fetched: https, a host, and no user:password@ part.

    Credentials in a URL would end up in logs and the manifest, so they are rejected.
    """
    # TODO: also reject loopback, private and link-local addresses, checked on the
    # resolved address that the connection then uses.
    try:
        parsed = httpx.URL(url)
    except httpx.InvalidURL as error:
        raise InvalidInputError(f"invalid URL {url!r}: {error}") from error
    if parsed.scheme != "https":
        raise InvalidInputError(f"URL {url!r} uses {parsed.scheme or 'no'} scheme: only https:// URLs are fetched")
    if parsed.userinfo:
        raise InvalidInputError(
            f"URL with credentials rejected (host {parsed.host}): remove the user:password@ part and "
            "make the file readable without them, or put it in S3"
        )
    if not parsed.host:
        raise InvalidInputError(f"URL {url!r} has no host: use https://host/path")

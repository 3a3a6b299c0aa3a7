"""The check that every URL passes before the trainer sends a request to it, redirects included."""

from __future__ import annotations

from lora_trainer.fetch_guard import FetchGuard, FetchPolicy


def check_url(url: str) -> None:
    """Raise InvalidInputError unless the fetch guard lets url through: https, a host, no user:password@ part.

    Credentials in a URL would end up in logs and the manifest, so they are rejected. An
    IP address host is checked here; a host name is checked on the addresses it resolves
    to when the guarded client connects. LORA_FETCH_ALLOWED_NETWORKS and
    LORA_FETCH_ALLOWED_SCHEMES widen the policy.
    """
    FetchGuard(FetchPolicy.from_env()).check_url(url)

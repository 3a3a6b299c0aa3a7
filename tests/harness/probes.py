"""HTTP readiness probes that always connect directly, never through a proxy from the environment."""

from __future__ import annotations

import ssl
import urllib.request

_handlers: list[urllib.request.BaseHandler] = [urllib.request.ProxyHandler({})]


def http_get(url: str, *, ssl_context: ssl.SSLContext | None = None, timeout: float = 2.0) -> tuple[int, bytes]:
    """Return the status and body of a GET request; raise OSError when the server does not respond."""
    handlers = [*_handlers]
    if ssl_context is not None:
        handlers.append(urllib.request.HTTPSHandler(context=ssl_context))
    opener = urllib.request.build_opener(*handlers)
    with opener.open(url, timeout=timeout) as response:
        return response.status, response.read()

"""The httpx transport that sends every request and connection through the fetch guard."""

from __future__ import annotations

import ssl
import time
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

import httpcore
import httpx

from lora_trainer.fetch_guard.policy import FetchBlocked

if TYPE_CHECKING:
    from lora_trainer.fetch_guard.guard import FetchGuard

Verify = ssl.SSLContext | str | bool


class GuardedTransport(httpx.HTTPTransport):
    """An httpx transport that checks each request's URL and connects only to checked addresses."""

    def __init__(self, guard: FetchGuard, *, verify: Verify = True) -> None:
        super().__init__(verify=verify)
        self._guard = guard
        # NOTE: httpx has no public way to pass a network backend, so the pool it built is replaced.
        # The fetch guard tests fail if a newer httpx no longer sends requests through this pool.
        # trust_env=True only lets SSL_CERT_FILE and SSL_CERT_DIR add trusted CAs; proxies are
        # a client setting, which FetchGuard.client() turns off.
        self._pool = httpcore.ConnectionPool(
            ssl_context=httpx.create_ssl_context(verify=verify, trust_env=True),
            network_backend=_GuardedBackend(guard),
        )

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        # Each redirect hop is a new request, so every hop is checked again here.
        self._guard.check_url(str(request.url))
        return super().handle_request(request)


class _GuardedBackend(httpcore.NetworkBackend):
    """Resolves through the guard and connects to the first checked address that accepts."""

    def __init__(self, guard: FetchGuard) -> None:
        self._guard = guard

    def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,
        local_address: str | None = None,
        socket_options: Iterable[Any] | None = None,
    ) -> httpcore.NetworkStream:
        last_error: httpcore.ConnectError | None = None
        for address in self._guard.resolve(host, port):
            try:
                return self._guard.network_backend.connect_tcp(
                    address, port, timeout=timeout, local_address=local_address, socket_options=socket_options
                )
            except httpcore.ConnectError as error:
                last_error = error
        assert last_error is not None  # resolve() returns at least one address or raises
        raise last_error

    def connect_unix_socket(
        self, path: str, timeout: float | None = None, socket_options: Iterable[Any] | None = None
    ) -> httpcore.NetworkStream:
        raise FetchBlocked(f"Unix socket {path} rejected: the guard fetches over TCP only")

    def sleep(self, seconds: float) -> None:
        time.sleep(seconds)

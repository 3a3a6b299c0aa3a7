"""A plain HTTP server on 127.0.0.1 with canned routes, for the fetch guard tests."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

LOOPBACK = "127.0.0.1"


@dataclass
class Route:
    """What the server sends for one path."""

    status: int = 200
    body: bytes = b""
    headers: dict[str, str] = field(default_factory=dict)
    send_length: bool = True
    """Send Content-Length; without it the body ends when the connection closes."""
    chunk_delay_seconds: float = 0.0
    """Pause before each 1 KiB piece of the body, to trip timeouts and deadlines."""


class _Handler(BaseHTTPRequestHandler):
    routes: dict[str, Route] = {}
    paths: list[str] = []

    def do_GET(self) -> None:  # noqa: N802  (name fixed by BaseHTTPRequestHandler)
        self.paths.append(self.path)
        route = self.routes.get(self.path, Route(status=404, body=b"not found"))
        self.send_response(route.status)
        for name, value in route.headers.items():
            self.send_header(name, value)
        if route.send_length:
            self.send_header("Content-Length", str(len(route.body)))
        else:
            self.send_header("Connection", "close")
            self.close_connection = True
        self.end_headers()
        try:
            for start in range(0, len(route.body), 1024):
                time.sleep(route.chunk_delay_seconds)
                self.wfile.write(route.body[start:start + 1024])
                self.wfile.flush()
        except (BrokenPipeError, ConnectionResetError):
            pass  # The client stopped reading, as the limit tests expect.

    def log_message(self, format: str, *args: object) -> None:  # noqa: A002  (signature fixed by the base class)
        pass


@dataclass
class LocalHttpServer:
    """A running server: its port, the routes it serves and the paths it was asked for."""

    port: int
    routes: dict[str, Route]
    paths: list[str]


@contextmanager
def serve_http() -> Iterator[LocalHttpServer]:
    """Run an HTTP server on a free loopback port until the block ends."""
    routes: dict[str, Route] = {}
    paths: list[str] = []
    handler = type("Handler", (_Handler,), {"routes": routes, "paths": paths})
    server = ThreadingHTTPServer((LOOPBACK, 0), handler)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, name="local-http", daemon=True)
    thread.start()
    try:
        yield LocalHttpServer(port=server.server_address[1], routes=routes, paths=paths)
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)

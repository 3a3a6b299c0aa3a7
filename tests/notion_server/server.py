"""The local Notion API server: a real HTTP server on 127.0.0.1, run in a background thread."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterable

from aiohttp import web

from tests.notion_server.app import RequestRecord, ServerState, build_app
from tests.notion_server.faults import DelayRule, FailRule, RateLimit
from tests.notion_server.files import FileHost
from tests.notion_server.workspace import Workspace

START_TIMEOUT_SECONDS = 30


class NotionServer:
    """Serves the Notion API at ``base_url`` (pass it as the client's base_url; paths start with /v1)."""

    def __init__(self, *, file_url_ttl_seconds: float = 3600.0) -> None:
        self.files = FileHost(ttl_seconds=file_url_ttl_seconds)
        self.workspace = Workspace(self.files)
        self.state = ServerState(self.workspace)
        self.faults = self.state.faults
        self.base_url = ""
        self._loop: asyncio.AbstractEventLoop | None = None
        self._runner: web.AppRunner | None = None
        self._thread: threading.Thread | None = None

    def start(self) -> NotionServer:
        started = threading.Event()
        failure: list[BaseException] = []

        def serve() -> None:
            loop = asyncio.new_event_loop()
            asyncio.set_event_loop(loop)
            self._loop = loop
            try:
                loop.run_until_complete(self._open())
            except BaseException as error:  # noqa: BLE001 - handed to the starting thread
                failure.append(error)
                started.set()
                return
            started.set()
            loop.run_forever()
            loop.run_until_complete(self._runner.cleanup())
            loop.close()

        self._thread = threading.Thread(target=serve, name="notion-server", daemon=True)
        self._thread.start()
        if not started.wait(START_TIMEOUT_SECONDS):
            raise TimeoutError(f"the local Notion server did not start within {START_TIMEOUT_SECONDS} s")
        if failure:
            raise failure[0]
        return self

    async def _open(self) -> None:
        self._runner = web.AppRunner(build_app(self.state), access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        port = site._server.sockets[0].getsockname()[1]  # noqa: SLF001 - aiohttp has no public accessor
        self.base_url = f"http://127.0.0.1:{port}"
        self.state.base_url = self.base_url
        self.files.base_url = self.base_url

    def stop(self) -> None:
        if self._loop is not None and self._thread is not None:
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join(timeout=30)

    # Test controls.

    def limit_rate(self, *, requests_per_second: float, burst: int) -> None:
        """Respond with 429 and Retry-After, per token, above this rate."""
        self.state.rate_limit = RateLimit(rate=requests_per_second, burst=burst)

    def delay(self, *, method: str, path_prefix: str, seconds: float, count: int = 1, after_effect: bool = True) -> None:
        self.faults.add_delay(DelayRule(method=method, path_prefix=path_prefix, seconds=seconds, count=count,
                                        after_effect=after_effect))

    def fail(self, *, method: str, path_prefix: str, kind: str, count: int = 1) -> None:
        """Respond to the next ``count`` matching requests with fault ``kind`` (429, 500, 502, 529 or slow)."""
        self.faults.add_failure(FailRule(method=method, path_prefix=path_prefix, kind=kind, count=count))

    def add_external_file(self, name: str, data: bytes, content_type: str) -> str:
        """Serve a file as a public web site would; return its URL."""
        self.state.external_files[name] = (data, content_type)
        return f"{self.base_url}/external/{name}"

    def requests(self, *, method: str | None = None, path_prefix: str = "/v1/") -> list[RequestRecord]:
        return [record for record in list(self.state.requests)
                if record.path.startswith(path_prefix) and (method is None or record.method == method)]

    def request_count(self, records: Iterable[RequestRecord] | None = None) -> int:
        return len(list(self.requests() if records is None else records))

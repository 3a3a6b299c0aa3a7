"""Downloads through the guarded client against a loopback server: hops re-checked, size, timeout, deadline.

The policy of these tests allows 127.0.0.1 and plain http explicitly. Every other name
resolves, through a stub, to a blocked address, and a spy on the socket layer shows that
no connection to it was opened.
"""

from __future__ import annotations

import io
import ipaddress
from collections.abc import Iterator

import httpcore
import pytest

from lora_trainer.fetch_guard import FetchBlocked, FetchFailed, FetchGuard, FetchPolicy, FetchTooLarge
from tests.security.local_http import LOOPBACK, LocalHttpServer, Route, serve_http

pytestmark = pytest.mark.unit

BODY = bytes(range(256)) * 16
LIMIT = 2048
MAX_REDIRECTS = 3
# Host names in the stub resolver's table: one that the policy allows, and two blocked ones.
ALLOWED_NAME = "files.test"
PRIVATE_NAME = "internal.test"
METADATA_NAME = "metadata.test"


class RecordingBackend(httpcore.NetworkBackend):
    """The real socket layer, recording each address it connects to."""

    def __init__(self) -> None:
        self.inner = httpcore.SyncBackend()
        self.connected: list[str] = []

    def connect_tcp(self, host, port, timeout=None, local_address=None, socket_options=None):  # noqa: ANN001, ANN201
        self.connected.append(host)
        return self.inner.connect_tcp(host, port, timeout, local_address, socket_options)

    def sleep(self, seconds: float) -> None:
        self.inner.sleep(seconds)


def stub_resolver(host: str, port: int) -> list[str]:
    table = {ALLOWED_NAME: [LOOPBACK], PRIVATE_NAME: ["10.0.0.7"], METADATA_NAME: ["169.254.169.254"]}
    if host not in table:
        raise AssertionError(f"unexpected DNS lookup of {host}")
    return table[host]


@pytest.fixture(scope="module")
def server() -> Iterator[LocalHttpServer]:
    with serve_http() as running:
        base = f"http://{ALLOWED_NAME}:{running.port}"
        running.routes.update(
            {
                "/file.bin": Route(body=BODY, headers={"Content-Type": "application/octet-stream"}),
                "/to-private": Route(status=302, headers={"Location": f"http://{PRIVATE_NAME}:{running.port}/file.bin"}),
                "/to-metadata": Route(status=302, headers={"Location": f"http://{METADATA_NAME}/latest/meta-data/"}),
                "/to-loopback-literal": Route(status=302, headers={"Location": f"http://127.0.0.2:{running.port}/file.bin"}),
                "/to-https": Route(status=302, headers={"Location": f"https://{ALLOWED_NAME}:{running.port}/file.bin"}),
                "/to-allowed": Route(status=302, headers={"Location": f"{base}/file.bin"}),
                "/large": Route(body=bytes(LIMIT * 2)),
                "/large-stream": Route(body=bytes(LIMIT * 2), send_length=False),
                "/stalled": Route(body=BODY, chunk_delay_seconds=2.0),
                "/trickle": Route(body=bytes(8 * 1024), chunk_delay_seconds=0.3),
                "/gone": Route(status=404, body=b"not found"),
                "/busy": Route(status=503, body=b"busy"),
            }
        )
        for hop in range(1, MAX_REDIRECTS + 3):
            target = "/file.bin" if hop == 1 else f"/hop/{hop - 1}"
            running.routes[f"/hop/{hop}"] = Route(status=302, headers={"Location": target})
        yield running


@pytest.fixture
def backend() -> RecordingBackend:
    return RecordingBackend()


def make_guard(backend: RecordingBackend, **limits: float) -> FetchGuard:
    policy = FetchPolicy(
        allowed_schemes=frozenset({"http"}),
        allowed_networks=(ipaddress.ip_network(f"{LOOPBACK}/32"),),
        max_bytes=int(limits.pop("max_bytes", 1 << 20)),
        max_redirects=MAX_REDIRECTS,
        **limits,
    )
    return FetchGuard(policy, resolver=stub_resolver, network_backend=backend)


def url(server: LocalHttpServer, path: str) -> str:
    return f"http://{ALLOWED_NAME}:{server.port}{path}"


def test_allowed_name_downloaded(server: LocalHttpServer, backend: RecordingBackend) -> None:
    sink = io.BytesIO()

    result = make_guard(backend).download(url(server, "/file.bin"), sink)

    assert sink.getvalue() == BODY
    assert result.size_bytes == len(BODY)
    assert backend.connected == [LOOPBACK]


def test_blocked_name_never_connected(backend: RecordingBackend) -> None:
    with pytest.raises(FetchBlocked, match="metadata"):
        make_guard(backend).download(f"http://{METADATA_NAME}/latest/meta-data/", io.BytesIO())

    assert backend.connected == []


@pytest.mark.parametrize(
    ("path", "reason"),
    [
        ("/to-private", "private address"),
        ("/to-metadata", "metadata address"),
        ("/to-loopback-literal", "loopback address"),
        ("/to-https", "uses https scheme"),
    ],
)
def test_redirect_hop_rechecked(server: LocalHttpServer, backend: RecordingBackend, path: str, reason: str) -> None:
    with pytest.raises(FetchBlocked, match=reason):
        make_guard(backend).download(url(server, path), io.BytesIO())

    assert backend.connected == [LOOPBACK]


def test_allowed_redirect_followed(server: LocalHttpServer, backend: RecordingBackend) -> None:
    sink = io.BytesIO()

    result = make_guard(backend).download(url(server, "/to-allowed"), sink)

    assert sink.getvalue() == BODY
    assert result.final_url == url(server, "/file.bin")


def test_redirects_within_limit(server: LocalHttpServer, backend: RecordingBackend) -> None:
    sink = io.BytesIO()

    make_guard(backend).download(url(server, f"/hop/{MAX_REDIRECTS}"), sink)

    assert sink.getvalue() == BODY


def test_redirects_over_limit(server: LocalHttpServer, backend: RecordingBackend) -> None:
    with pytest.raises(FetchBlocked, match=f"more than {MAX_REDIRECTS} times"):
        make_guard(backend).download(url(server, f"/hop/{MAX_REDIRECTS + 1}"), io.BytesIO())


def test_declared_size_over_limit(server: LocalHttpServer, backend: RecordingBackend) -> None:
    sink = io.BytesIO()

    with pytest.raises(FetchTooLarge, match=f"{LIMIT * 2} bytes"):
        make_guard(backend, max_bytes=LIMIT).download(url(server, "/large"), sink)

    assert sink.getvalue() == b""


def test_streamed_size_over_limit(server: LocalHttpServer, backend: RecordingBackend) -> None:
    sink = io.BytesIO()

    with pytest.raises(FetchTooLarge, match=f"limit of {LIMIT} bytes"):
        make_guard(backend, max_bytes=LIMIT).download(url(server, "/large-stream"), sink)

    assert len(sink.getvalue()) <= LIMIT


def test_stalled_read_times_out(server: LocalHttpServer, backend: RecordingBackend) -> None:
    with pytest.raises(FetchFailed, match="timed out"):
        make_guard(backend, read_timeout_seconds=0.5).download(url(server, "/stalled"), io.BytesIO())


def test_slow_body_hits_deadline(server: LocalHttpServer, backend: RecordingBackend) -> None:
    guard = make_guard(backend, read_timeout_seconds=5.0, deadline_seconds=0.5)

    with pytest.raises(FetchFailed, match="took longer than"):
        guard.download(url(server, "/trickle"), io.BytesIO())


def test_missing_file_not_retryable(server: LocalHttpServer, backend: RecordingBackend) -> None:
    with pytest.raises(Exception, match="HTTP 404") as raised:
        make_guard(backend).download(url(server, "/gone"), io.BytesIO())

    assert not isinstance(raised.value, FetchFailed)


def test_server_error_retryable(server: LocalHttpServer, backend: RecordingBackend) -> None:
    with pytest.raises(FetchFailed, match="HTTP 503"):
        make_guard(backend).download(url(server, "/busy"), io.BytesIO())


def test_proxy_variables_ignored(
    server: LocalHttpServer, backend: RecordingBackend, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Through a proxy, the socket would reach the proxy instead of the checked address.
    for name in ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "http_proxy", "https_proxy", "all_proxy"):
        monkeypatch.setenv(name, "http://10.0.0.9:3128")
    sink = io.BytesIO()

    make_guard(backend).download(url(server, "/file.bin"), sink)

    assert sink.getvalue() == BODY
    assert backend.connected == [LOOPBACK]

"""https:// sources against a local HTTPS server: content checks, size and redirect limits, timeouts, TLS."""

from __future__ import annotations

import ssl
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from lora_operator.api.training_spec import DataSource

from lora_trainer.errors import InvalidInputError, TrainerError
from lora_trainer.sources import SourceOptions, check_url, fetch_source
from lora_trainer.sources.https import MAX_REDIRECTS
from tests.datasets import PHOTOS_DIR
from tests.trainer.data.local_https import LocalHttpsServer, Route, serve_https

pytestmark = pytest.mark.unit

PNG = {"Content-Type": "image/png"}
TEXT = {"Content-Type": "text/plain; charset=utf-8"}
HTML = {"Content-Type": "text/html"}
SIZE_LIMIT = 4096


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalHttpsServer]:
    image = (PHOTOS_DIR / "horse.png").read_bytes()
    with serve_https(tmp_path_factory.mktemp("tls")) as running:
        running.routes.update(
            {
                "/photo.png": Route(body=image, headers=PNG),
                "/photo.txt": Route(body="a horse, side view\n".encode(), headers=TEXT),
                "/lonely.png": Route(body=image, headers=PNG),
                "/framed.png": Route(body=image, headers=PNG),
                "/framed.txt": Route(body=b"<!doctype html><p>not found</p>", headers=HTML),
                "/image?id=7": Route(body=image, headers={"Content-Type": "application/octet-stream"}),
                "/login.png": Route(body=b"<!doctype html><form>sign in</form>", headers=HTML),
                "/huge.png": Route(body=image[:8] + bytes(SIZE_LIMIT * 2), headers=PNG),
                "/huge-stream.png": Route(body=image[:8] + bytes(SIZE_LIMIT * 2), headers=PNG, send_length=False),
                "/slow.png": Route(body=image, headers=PNG, delay_seconds=3.0),
                "/broken.png": Route(status=503, body=b"busy", headers=TEXT),
                "/to-http.png": Route(status=302, headers={"Location": running.base_url.replace("https", "http") + "/photo.png"}),
            }
        )
        for hop in range(1, MAX_REDIRECTS + 2):
            target = "/photo.png" if hop == 1 else f"/hop/{hop - 1}"
            running.routes[f"/hop/{hop}"] = Route(status=302, headers={"Location": target})
        yield running


@pytest.fixture
def client(server: LocalHttpsServer) -> Iterator[httpx.Client]:
    context = ssl.create_default_context(cafile=str(server.tls.ca_cert))
    with httpx.Client(verify=context, timeout=httpx.Timeout(5.0, read=1.0)) as https_client:
        yield https_client


@pytest.fixture(autouse=True)
def allow_loopback_server(monkeypatch):
    """The test server listens on 127.0.0.1, which the fetch guard blocks unless configured."""
    monkeypatch.setenv("LORA_FETCH_ALLOWED_NETWORKS", "127.0.0.1/32")


def fetch(url: str, tmp_path: Path, client: httpx.Client | None, *, max_file_bytes: int = 1 << 20) -> dict[str, Path]:
    options = SourceOptions(base_dir=tmp_path, http_client=client, max_file_bytes=max_file_bytes)
    files = fetch_source(DataSource(uri=url), destination=tmp_path / "downloads", options=options)
    return {file.name: file.path for file in files if file.path is not None}


def test_image_with_sidecar_fetched(server: LocalHttpsServer, client: httpx.Client, tmp_path: Path) -> None:
    files = fetch(server.url("/photo.png"), tmp_path, client)

    assert sorted(files) == ["photo.png", "photo.txt"]
    assert files["photo.png"].read_bytes() == (PHOTOS_DIR / "horse.png").read_bytes()
    assert files["photo.txt"].read_text(encoding="utf-8") == "a horse, side view\n"


def test_missing_sidecar_is_fine(server: LocalHttpsServer, client: httpx.Client, tmp_path: Path) -> None:
    assert list(fetch(server.url("/lonely.png"), tmp_path, client)) == ["lonely.png"]


def test_html_sidecar_ignored(server: LocalHttpsServer, client: httpx.Client, tmp_path: Path) -> None:
    assert list(fetch(server.url("/framed.png"), tmp_path, client)) == ["framed.png"]


def test_magic_bytes_name_extension(server: LocalHttpsServer, client: httpx.Client, tmp_path: Path) -> None:
    assert list(fetch(server.url("/image?id=7"), tmp_path, client)) == ["image.png"]


def test_identity_encoding_requested(server: LocalHttpsServer, client: httpx.Client, tmp_path: Path) -> None:
    fetch(server.url("/lonely.png"), tmp_path, client)

    headers = next(headers for path, headers in server.requests if path == "/lonely.png")
    assert headers.get("Accept-Encoding") == "identity"


def test_html_page_rejected(server: LocalHttpsServer, client: httpx.Client, tmp_path: Path) -> None:
    with pytest.raises(InvalidInputError) as raised:
        fetch(server.url("/login.png"), tmp_path, client)

    assert "/login.png is not an image" in str(raised.value)
    assert "text/html" in str(raised.value)
    assert list(tmp_path.rglob("*.png")) == []


def test_declared_size_over_limit(server: LocalHttpsServer, client: httpx.Client, tmp_path: Path) -> None:
    with pytest.raises(InvalidInputError, match=r"larger than dataset.maxFileBytes \(4096\)"):
        fetch(server.url("/huge.png"), tmp_path, client, max_file_bytes=SIZE_LIMIT)


def test_streamed_size_over_limit(server: LocalHttpsServer, client: httpx.Client, tmp_path: Path) -> None:
    with pytest.raises(InvalidInputError, match=r"stopped: larger than dataset.maxFileBytes \(4096 bytes\)"):
        fetch(server.url("/huge-stream.png"), tmp_path, client, max_file_bytes=SIZE_LIMIT)

    assert list((tmp_path / "downloads").rglob("*")) == []


def test_redirects_within_limit(server: LocalHttpsServer, client: httpx.Client, tmp_path: Path) -> None:
    files = fetch(server.url(f"/hop/{MAX_REDIRECTS}"), tmp_path, client)

    # The name comes from the requested URL; the PNG bytes give it its extension.
    assert list(files) == [f"{MAX_REDIRECTS}.png"]
    assert files[f"{MAX_REDIRECTS}.png"].read_bytes() == (PHOTOS_DIR / "horse.png").read_bytes()


def test_redirects_over_limit(server: LocalHttpsServer, client: httpx.Client, tmp_path: Path) -> None:
    with pytest.raises(InvalidInputError, match=f"redirected more than {MAX_REDIRECTS} times"):
        fetch(server.url(f"/hop/{MAX_REDIRECTS + 1}"), tmp_path, client)


def test_redirect_to_http_rejected(server: LocalHttpsServer, client: httpx.Client, tmp_path: Path) -> None:
    with pytest.raises(InvalidInputError, match="only https:// URLs are fetched"):
        fetch(server.url("/to-http.png"), tmp_path, client)


def test_slow_server_times_out(server: LocalHttpsServer, client: httpx.Client, tmp_path: Path) -> None:
    with pytest.raises(TrainerError, match="/slow.png timed out") as raised:
        fetch(server.url("/slow.png"), tmp_path, client)

    assert not isinstance(raised.value, InvalidInputError)


def test_not_found_is_invalid_input(server: LocalHttpsServer, client: httpx.Client, tmp_path: Path) -> None:
    with pytest.raises(InvalidInputError, match="HTTP 404"):
        fetch(server.url("/nothing-here.png"), tmp_path, client)


def test_server_error_is_retryable(server: LocalHttpsServer, client: httpx.Client, tmp_path: Path) -> None:
    with pytest.raises(TrainerError, match="HTTP 503") as raised:
        fetch(server.url("/broken.png"), tmp_path, client)

    assert not isinstance(raised.value, InvalidInputError)


def test_untrusted_certificate_rejected(server: LocalHttpsServer, tmp_path: Path) -> None:
    with pytest.raises(InvalidInputError, match="TLS certificate .* failed verification"):
        fetch(server.url("/photo.png"), tmp_path, None)


def test_include_patterns_rejected(server: LocalHttpsServer, client: httpx.Client, tmp_path: Path) -> None:
    source = DataSource(uri=server.url("/photo.png"), include=["*.png"])

    with pytest.raises(InvalidInputError, match="include patterns do not apply"):
        fetch_source(source, destination=tmp_path, options=SourceOptions(base_dir=tmp_path, http_client=client))


def test_check_url_rejects_credentials() -> None:
    with pytest.raises(InvalidInputError) as raised:
        check_url("https://user:s3cret@example.org/a.png")

    assert "credentials" in str(raised.value)
    assert "s3cret" not in str(raised.value)


def test_check_url_rejects_plain_http() -> None:
    with pytest.raises(InvalidInputError, match="uses http scheme"):
        check_url("http://example.org/a.png")


def test_check_url_accepts_https() -> None:
    assert check_url("https://example.org/a.png") is None

"""https:// text sources against a local HTTPS server: one text file per URL, checked like image downloads."""

from __future__ import annotations

import json
import ssl
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from lora_operator.api.training_spec import DataSource
from lora_trainer.errors import InvalidInputError
from lora_trainer.sources import SourceOptions
from lora_trainer.text.fetch import fetch_text_source
from tests.trainer.data.local_https import LocalHttpsServer, Route, serve_https

pytestmark = pytest.mark.trainer

TEXT = {"Content-Type": "text/plain; charset=utf-8"}
LINES = (json.dumps({"prompt": "Open?", "completion": "Until six."}) + "\n").encode()


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalHttpsServer]:
    with serve_https(tmp_path_factory.mktemp("tls")) as running:
        running.routes.update({
            "/data/faq.jsonl": Route(body=LINES, headers=TEXT),
            "/data/page.jsonl": Route(body=b"<!doctype html><p>sign in</p>", headers={"Content-Type": "text/html"}),
            "/data/photo.png": Route(body=b"\x89PNG\r\n\x1a\n", headers={"Content-Type": "image/png"}),
        })
        yield running


@pytest.fixture
def options(server: LocalHttpsServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[SourceOptions]:
    # The test server listens on loopback, which the fetch policy blocks unless allowed.
    monkeypatch.setenv("LORA_FETCH_ALLOWED_NETWORKS", "127.0.0.0/8")
    context = ssl.create_default_context(cafile=str(server.tls.ca_cert))
    with httpx.Client(verify=context, timeout=httpx.Timeout(5.0)) as client:
        yield SourceOptions(base_dir=tmp_path, http_client=client)


def test_text_file_downloaded(server: LocalHttpsServer, options: SourceOptions, tmp_path: Path) -> None:
    files = fetch_text_source(DataSource(uri=server.url("/data/faq.jsonl")), destination=tmp_path / "d", options=options)

    assert [file.name for file in files] == ["faq.jsonl"]
    assert files[0].path.read_bytes() == LINES


def test_html_page_rejected(server: LocalHttpsServer, options: SourceOptions, tmp_path: Path) -> None:
    with pytest.raises(InvalidInputError, match=r"is not plain text \(content type 'text/html'\)"):
        fetch_text_source(DataSource(uri=server.url("/data/page.jsonl")), destination=tmp_path / "d", options=options)


def test_non_text_name_rejected(server: LocalHttpsServer, options: SourceOptions, tmp_path: Path) -> None:
    with pytest.raises(InvalidInputError, match=r"does not end in a text file name"):
        fetch_text_source(DataSource(uri=server.url("/data/photo.png")), destination=tmp_path / "d", options=options)

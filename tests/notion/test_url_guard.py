"""External attachment URLs pass the guard: http(s) to public addresses only, unless allowed."""

from __future__ import annotations

import re

import httpx
import pytest

from lora_operator.notion.attachments import copy_attachments
from lora_operator.notion.overrides import RowRejected
from lora_operator.notion.rows import Attachment, NotionRow
from lora_operator.notion.url_guard import UrlBlocked, UrlGuard
from lora_trainer.fetch_guard import FetchBlocked
from lora_trainer.storage import LocalStore

pytestmark = pytest.mark.unit


def resolving_to(*addresses: str):
    return lambda host, port: list(addresses)


def test_public_address_allowed():
    UrlGuard(resolve=resolving_to("93.184.215.14")).check("https://example.com/a.png")


@pytest.mark.parametrize("address", ["127.0.0.1", "10.0.0.7", "192.168.1.2", "169.254.169.254", "::1", "fd00::1", "100.64.0.1"])
def test_non_public_address_blocked(address):
    with pytest.raises(UrlBlocked, match=f"resolves to {re.escape(address)}, a .*address; upload the file"):
        UrlGuard(resolve=resolving_to(address)).check("https://images.example.com/a.png")


def test_metadata_blocked_with_private_allowed():
    guard = UrlGuard(allow_private_addresses=True, resolve=resolving_to("169.254.169.254"))
    with pytest.raises(UrlBlocked, match="a cloud metadata address"):
        guard.check("http://metadata.internal/latest")


def test_any_non_public_answer_blocks():
    with pytest.raises(UrlBlocked, match="10.1.2.3"):
        UrlGuard(resolve=resolving_to("93.184.215.14", "10.1.2.3")).check("https://mixed.example.com/a.png")


def test_private_allowed_when_configured():
    UrlGuard(allow_private_addresses=True, resolve=resolving_to("10.0.0.7")).check("http://minio.internal/a.png")


@pytest.mark.parametrize("url", ["ftp://example.com/a.png", "file:///etc/passwd", "gopher://example.com/"])
def test_other_schemes_blocked(url):
    with pytest.raises(UrlBlocked, match="is not allowed"):
        UrlGuard(resolve=resolving_to("93.184.215.14")).check(url)


def test_https_only_policy():
    with pytest.raises(UrlBlocked, match="'http' is not allowed"):
        UrlGuard(allowed_schemes=frozenset({"https"}), resolve=resolving_to("93.184.215.14")).check("http://example.com/a")


def test_credentials_in_url_blocked():
    with pytest.raises(UrlBlocked, match="user:password"):
        UrlGuard(resolve=resolving_to("93.184.215.14")).check("https://user:secret@example.com/a.png")


def test_loopback_name_blocked():
    with pytest.raises(UrlBlocked, match="127.0.0.1"):
        UrlGuard().check("http://localhost/a.png")


def answers_in_turn(*answers: list[str]):
    """A stub resolver that gives each answer once, in order, as a rebinding DNS server would."""
    remaining = iter(answers)
    return lambda host, port: next(remaining)


def test_rebinding_blocked_at_connect():
    # The check gets a public address, then the connection would go to loopback: no socket is opened.
    guard = UrlGuard(resolve=answers_in_turn(["93.184.215.14"], ["127.0.0.1"]))
    guard.check("https://rebind.invalid/a.png")

    with guard.client(timeout=httpx.Timeout(5.0)) as client, pytest.raises(FetchBlocked, match="127.0.0.1"):
        client.get("https://rebind.invalid/a.png")


def test_metadata_blocked_at_connect_with_private_allowed():
    guard = UrlGuard(allow_private_addresses=True, resolve=answers_in_turn(["169.254.169.254"]))

    with guard.client(timeout=httpx.Timeout(5.0)) as client, pytest.raises(FetchBlocked, match="metadata"):
        client.get("http://metadata.invalid/latest/meta-data/")


def test_rebound_attachment_rejects_row(tmp_path):
    row = NotionRow(
        page_id="p1", url="https://www.notion.so/p1", title="a", type="style", description="", status="",
        creator_id="", creator_name="", last_edited_time="",
        images=(Attachment(name="a.png", kind="external", url="https://rebind.invalid/a.png", index=0),),
    )
    guard = UrlGuard(resolve=answers_in_turn(["93.184.215.14"], ["10.0.0.5"]))
    with httpx.Client() as http, guard.client(timeout=httpx.Timeout(5.0)) as external_http:
        with pytest.raises(RowRejected) as rejected:
            copy_attachments(row, store=LocalStore(tmp_path), refresh=lambda: row, guard=guard, http=http,
                             external_http=external_http, max_bytes=1024)

    assert rejected.value.key == "reject.url_blocked"
    assert "10.0.0.5" in rejected.value.fields["detail"]

"""Fetch guard decisions on schemes, URLs and resolved addresses, with a stubbed resolver and no traffic."""

from __future__ import annotations

import ipaddress
import subprocess
import sys
from pathlib import Path

import pytest
from lora_operator.api.training_spec import DataSource

from lora_trainer.errors import InvalidInputError
from lora_trainer.fetch_guard import (
    ALLOWED_NETWORKS_ENV,
    ALLOWED_SCHEMES_ENV,
    FetchBlocked,
    FetchGuard,
    FetchPolicy,
    FetchPolicyError,
    redact_url,
)
from lora_trainer.sources import SourceOptions, check_url, fetch_source

pytestmark = pytest.mark.unit

# (address, words the rejection names)
BLOCKED_ADDRESSES = [
    ("127.0.0.1", "loopback"),
    ("127.8.9.10", "loopback"),
    ("::1", "loopback"),
    ("10.1.2.3", "private"),
    ("172.16.0.9", "private"),
    ("192.168.1.1", "private"),
    ("fd12:3456::1", "private"),
    ("169.254.169.254", "metadata"),
    ("fd00:ec2::254", "metadata"),
    ("100.100.100.200", "metadata"),
    ("169.254.10.20", "link-local"),
    ("fe80::1", "link-local"),
    ("100.64.0.1", "non-public"),
    ("0.0.0.0", "unspecified"),
    ("::", "unspecified"),
    ("224.0.0.1", "multicast"),
    ("255.255.255.255", "private"),
    ("192.0.2.10", "private"),
    ("::ffff:127.0.0.1", "loopback"),
    ("::ffff:169.254.169.254", "metadata"),
    ("64:ff9b::a9fe:a9fe", "metadata"),
    ("2002:7f00:1::", "loopback"),
]
PUBLIC_ADDRESSES = ["93.184.215.14", "8.8.8.8", "2606:4700:4700::1111", "64:ff9b::808:808"]


class StubResolver:
    """Returns addresses from a fixed table and records every lookup. Unknown names fail the test."""

    def __init__(self, table: dict[str, list[str]]) -> None:
        self.table = table
        self.lookups: list[str] = []

    def __call__(self, host: str, port: int) -> list[str]:
        self.lookups.append(host)
        if host not in self.table:
            raise AssertionError(f"unexpected DNS lookup of {host}")
        return self.table[host]


def guard_for(table: dict[str, list[str]], **policy: object) -> FetchGuard:
    return FetchGuard(FetchPolicy(**policy), resolver=StubResolver(table))


@pytest.mark.parametrize(("address", "reason"), BLOCKED_ADDRESSES, ids=[item[0] for item in BLOCKED_ADDRESSES])
def test_resolved_address_blocked(address: str, reason: str) -> None:
    guard = guard_for({"files.example": [address]})

    with pytest.raises(FetchBlocked) as raised:
        guard.resolve("files.example", 443)

    assert reason in str(raised.value)
    assert ALLOWED_NETWORKS_ENV in str(raised.value)


@pytest.mark.parametrize("address", PUBLIC_ADDRESSES)
def test_public_address_allowed(address: str) -> None:
    guard = guard_for({"files.example": [address]})

    assert guard.resolve("files.example", 443) == [str(ipaddress.ip_address(address))]


def test_one_private_answer_blocks_host() -> None:
    guard = guard_for({"mixed.example": ["93.184.215.14", "10.0.0.8"]})

    with pytest.raises(FetchBlocked, match="10.0.0.8"):
        guard.resolve("mixed.example", 443)


@pytest.mark.parametrize("url", ["https://127.0.0.1/a.png", "https://[::1]:8443/a.png", "https://169.254.169.254/latest"])
def test_address_literal_blocked_without_lookup(url: str) -> None:
    guard = guard_for({})

    with pytest.raises(FetchBlocked):
        guard.check_url(url)

    assert guard.resolver.lookups == []


@pytest.mark.parametrize("url", ["http://example.org/a.png", "ftp://example.org/a.png", "file:///etc/passwd"])
def test_default_scheme_https_only(url: str) -> None:
    with pytest.raises(FetchBlocked, match="only https:// URLs"):
        guard_for({}).check_url(url)


def test_credentials_rejected_unprinted() -> None:
    with pytest.raises(FetchBlocked) as raised:
        guard_for({}).check_url("https://user:s3cret@example.org/a.png")

    assert "credentials" in str(raised.value)
    assert "s3cret" not in str(raised.value)


def test_public_https_url_passes() -> None:
    assert guard_for({}).check_url("https://example.org/a.png") is None


def test_allowed_network_exempts_addresses() -> None:
    guard = guard_for(
        {"mirror.internal": ["10.20.1.2"], "other.internal": ["10.21.0.1"]},
        allowed_networks=(ipaddress.ip_network("10.20.0.0/16"),),
    )

    assert guard.resolve("mirror.internal", 443) == ["10.20.1.2"]
    with pytest.raises(FetchBlocked, match="10.21.0.1"):
        guard.resolve("other.internal", 443)


def test_broad_network_keeps_metadata_blocked() -> None:
    broad = guard_for({"meta.internal": ["169.254.169.254"]}, allowed_networks=(ipaddress.ip_network("169.254.0.0/16"),))
    exact = guard_for({"meta.internal": ["169.254.169.254"]}, allowed_networks=(ipaddress.ip_network("169.254.169.254/32"),))

    with pytest.raises(FetchBlocked, match="metadata"):
        broad.resolve("meta.internal", 80)
    assert exact.resolve("meta.internal", 80) == ["169.254.169.254"]


def test_policy_read_from_environment() -> None:
    policy = FetchPolicy.from_env({ALLOWED_NETWORKS_ENV: "127.0.0.1/32, 10.0.0.0/8", ALLOWED_SCHEMES_ENV: "https,http"})

    assert policy.allowed_networks == (ipaddress.ip_network("127.0.0.1/32"), ipaddress.ip_network("10.0.0.0/8"))
    assert policy.allowed_schemes == frozenset({"https", "http"})


def test_empty_environment_keeps_defaults() -> None:
    assert FetchPolicy.from_env({}) == FetchPolicy()


def test_invalid_network_setting_named() -> None:
    with pytest.raises(FetchPolicyError) as raised:
        FetchPolicy.from_env({ALLOWED_NETWORKS_ENV: "10.0.0.0/33"})

    assert ALLOWED_NETWORKS_ENV in str(raised.value)
    assert "10.0.0.0/33" in str(raised.value)


def test_invalid_scheme_setting_named() -> None:
    with pytest.raises(FetchPolicyError, match=f"'gopher' in {ALLOWED_SCHEMES_ENV}"):
        FetchPolicy.from_env({ALLOWED_SCHEMES_ENV: "gopher"})


def test_redacted_url_drops_secrets() -> None:
    redacted = redact_url("https://user:pw@files.example/a.png?X-Amz-Signature=abc123#frag")

    assert redacted == "https://files.example/a.png"


def test_source_check_blocks_private_literal(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(ALLOWED_NETWORKS_ENV, raising=False)

    with pytest.raises(InvalidInputError, match="private address"):
        check_url("https://10.0.0.1/a.png")


def test_source_check_honours_allowed_network(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(ALLOWED_NETWORKS_ENV, "10.0.0.0/8")

    assert check_url("https://10.0.0.1/a.png") is None


def test_https_source_blocks_loopback_name(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    # localhost resolves from the hosts file; the guarded client blocks it before connecting.
    monkeypatch.delenv(ALLOWED_NETWORKS_ENV, raising=False)
    options = SourceOptions(base_dir=tmp_path)

    with pytest.raises(FetchBlocked, match="loopback"):
        fetch_source(DataSource(uri="https://localhost:9/a.png"), destination=tmp_path, options=options)


def test_guard_imports_no_torch() -> None:
    code = "import sys, lora_trainer.fetch_guard; print(sorted(m for m in ('torch', 'numpy', 'PIL') if m in sys.modules))"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)

    assert result.stdout.strip() == "[]"

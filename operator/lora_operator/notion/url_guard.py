"""The check every external attachment URL passes before the operator fetches it.

Rows are written by Notion users, so an external URL could point the operator at a
cluster-internal service. By default only http(s) URLs whose host resolves to public
addresses are fetched; a NotionSource may also allow private addresses. check() gives
the row a readable reason, and the client() that downloads checks the addresses again
when it connects, through the trainer's fetch guard, so a DNS answer that changes in
between (DNS rebinding) gets nowhere.
"""

from __future__ import annotations

import ipaddress
import socket
from collections.abc import Callable
from dataclasses import dataclass, field

import httpx

from lora_operator.api.notion_source import ExternalUrlPolicy
from lora_trainer.fetch_guard import METADATA_ADDRESSES, FetchGuard, FetchPolicy, blocked_reason

# With private addresses allowed, every network is exempt from the fetch guard's address
# block. Cloud metadata addresses stay blocked, because they need an exemption of exactly
# their own address.
ANY_ADDRESS = (ipaddress.ip_network("0.0.0.0/0"), ipaddress.ip_network("::/0"))


class UrlBlocked(ValueError):
    """A URL that the guard blocks; the message gives the reason and the fix."""


def resolve_host(host: str, port: int) -> list[str]:
    """Return every address the host resolves to."""
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except socket.gaierror as error:
        raise UrlBlocked(f"host {host!r} does not resolve ({error.strerror}); check the link") from error
    return sorted({info[4][0] for info in infos})


@dataclass(frozen=True)
class UrlGuard:
    """Allowed schemes, and whether non-public addresses are allowed."""

    allowed_schemes: frozenset[str] = frozenset({"http", "https"})
    allow_private_addresses: bool = False
    resolve: Callable[[str, int], list[str]] = field(default=resolve_host, compare=False)

    @classmethod
    def from_policy(cls, policy: ExternalUrlPolicy) -> UrlGuard:
        return cls(allowed_schemes=frozenset(policy.allowed_schemes),
                   allow_private_addresses=policy.allow_private_addresses)

    def client(self, *, timeout: httpx.Timeout) -> httpx.Client:
        """Return an httpx client that connects only to addresses this guard allows, checked at connect time.

        It ignores proxy variables, because through a proxy the socket would reach the
        proxy instead of the checked address.
        """
        networks = ANY_ADDRESS if self.allow_private_addresses else ()
        policy = FetchPolicy(allowed_schemes=self.allowed_schemes, allowed_networks=networks)
        return FetchGuard(policy=policy, resolver=self.resolve).client(timeout=timeout)

    def check(self, url: str) -> None:
        """Raise UrlBlocked unless ``url`` may be fetched."""
        try:
            parsed = httpx.URL(url)
        except httpx.InvalidURL as error:
            raise UrlBlocked(f"invalid URL {url!r}: {error}") from error
        if parsed.scheme not in self.allowed_schemes:
            allowed = ", ".join(sorted(self.allowed_schemes))
            raise UrlBlocked(f"URL scheme {parsed.scheme or 'none'!r} is not allowed (allowed: {allowed}); upload the file instead")
        if parsed.userinfo:
            raise UrlBlocked(f"URL with a user:password part (host {parsed.host}) is not fetched; upload the file instead")
        if not parsed.host:
            raise UrlBlocked(f"URL {url!r} has no host")
        port = parsed.port or (443 if parsed.scheme == "https" else 80)
        for address in self.resolve(parsed.host, port):
            reason = _blocked_reason(address, allow_private=self.allow_private_addresses)
            if reason:
                raise UrlBlocked(
                    f"host {parsed.host} resolves to {address}, {reason}; upload the file to Notion instead"
                    + ("" if self.allow_private_addresses else ", or ask an admin to set externalUrls.allowPrivateAddresses")
                )


def _blocked_reason(address: str, *, allow_private: bool) -> str:
    """Return why an address is blocked ('' when allowed), with the trainer's fetch-guard rules.

    Cloud metadata addresses stay blocked even when private addresses are allowed.
    """
    ip = ipaddress.ip_address(address.split("%")[0])
    if ip in METADATA_ADDRESSES:
        return "a cloud metadata address"
    if allow_private:
        return ""
    return blocked_reason(ip)

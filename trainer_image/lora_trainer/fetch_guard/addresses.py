"""Public-address checks and host name resolution for the fetch guard."""

from __future__ import annotations

import ipaddress
import socket
from collections.abc import Callable, Sequence

from lora_trainer.fetch_guard.policy import FetchFailed

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
Resolver = Callable[[str, int], Sequence[str]]
"""Returns the IP addresses of (host, port); tests pass a stub so nothing reaches real DNS."""

# Instance metadata endpoints: AWS, GCP and Azure (IPv4), AWS (IPv6), Alibaba Cloud.
METADATA_ADDRESSES = frozenset(
    ipaddress.ip_address(text) for text in ("169.254.169.254", "fd00:ec2::254", "100.100.100.200")
)
# RFC 6052 NAT64 prefix: on a NAT64 network, 64:ff9b::a9fe:a9fe reaches 169.254.169.254.
NAT64_PREFIX = ipaddress.ip_network("64:ff9b::/96")


def system_resolver(host: str, port: int) -> list[str]:
    """Resolve host with the system resolver (getaddrinfo); raise FetchFailed when it fails."""
    try:
        results = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except OSError as error:
        raise FetchFailed(f"DNS lookup of {host!r} failed: {error}; check the host name") from error
    # An IPv6 link-local result can carry a zone such as '%eth0', which the address check does not use.
    return [str(result[4][0]).split("%", 1)[0] for result in results]


def parse_address(text: str) -> IPAddress | None:
    """Return text as an IP address (brackets of an IPv6 URL host allowed), or None for a host name."""
    try:
        return ipaddress.ip_address(text.strip("[]"))
    except ValueError:
        return None


def blocked_reason(address: IPAddress) -> str:
    """Return why address is not public ('' when it is public), judging an embedded IPv4 address first."""
    for candidate in (*_embedded_ipv4(address), address):
        reason = _own_blocked_reason(candidate)
        if reason:
            return reason
    return ""


def _own_blocked_reason(address: IPAddress) -> str:
    checks = (
        (address in METADATA_ADDRESSES, "a cloud metadata address"),
        (address.is_loopback, "a loopback address"),
        (address.is_link_local, "a link-local address"),
        (address.is_multicast, "a multicast address"),
        (address.is_unspecified, "an unspecified address"),
        (address.is_private, "a private address"),
        (not address.is_global, "a non-public address"),
    )
    return next((reason for matched, reason in checks if matched), "")


def _embedded_ipv4(address: IPAddress) -> list[ipaddress.IPv4Address]:
    """IPv4 addresses that an IPv6 address reaches through mapping, 6to4, Teredo or NAT64."""
    if not isinstance(address, ipaddress.IPv6Address):
        return []
    embedded = [address.ipv4_mapped, address.sixtofour, *(address.teredo or ())]
    if address in NAT64_PREFIX:
        embedded.append(ipaddress.IPv4Address(int(address) & 0xFFFFFFFF))
    return [item for item in embedded if item is not None]

"""FetchGuard: the URL and address checks, guarded httpx clients, and bounded downloads."""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import BinaryIO

import httpcore
import httpx

from lora_trainer.errors import InvalidInputError
from lora_trainer.fetch_guard.addresses import (
    METADATA_ADDRESSES,
    IPAddress,
    Resolver,
    blocked_reason,
    parse_address,
    system_resolver,
)
from lora_trainer.fetch_guard.policy import (
    ALLOWED_NETWORKS_ENV,
    FetchBlocked,
    FetchFailed,
    FetchPolicy,
    FetchTooLarge,
)
from lora_trainer.fetch_guard.transport import GuardedTransport, Verify

# Ask for an uncompressed body, because a small gzip body could decode to far more than the limit.
IDENTITY_ENCODING = {"Accept-Encoding": "identity"}
CHUNK_BYTES = 64 * 1024
# Statuses that a later try may not see again; other 4xx statuses are permanent.
TRANSIENT_STATUSES = frozenset({408, 425, 429})


def redact_url(url: str) -> str:
    """Return url without user info, query and fragment, which may hold tokens or signatures."""
    try:
        parsed = httpx.URL(url)
    except httpx.InvalidURL:
        return "<invalid URL>"
    return str(parsed.copy_with(userinfo=b"", query=None, fragment=None))


@dataclass(frozen=True)
class FetchResult:
    """A finished download: the URL after redirects, the body size and the content type."""

    final_url: str
    size_bytes: int
    content_type: str


@dataclass
class FetchGuard:
    """Checks URLs and addresses against a policy, and makes httpx clients that enforce it."""

    policy: FetchPolicy = field(default_factory=FetchPolicy)
    resolver: Resolver = system_resolver
    network_backend: httpcore.NetworkBackend = field(default_factory=httpcore.SyncBackend)
    """Opens the sockets, to addresses that passed the check only."""

    def check_url(self, url: str) -> None:
        """Raise FetchBlocked unless url has an allowed scheme, a host and no user info.

        A host given as an IP address is checked here. A host name is checked when the
        client connects, on the addresses it resolves to.
        """
        try:
            parsed = httpx.URL(url)
        except httpx.InvalidURL as error:
            raise FetchBlocked(f"invalid URL {redact_url(url)!r}: {error}") from error
        if parsed.scheme not in self.policy.allowed_schemes:
            allowed = ", ".join(f"{scheme}://" for scheme in sorted(self.policy.allowed_schemes))
            raise FetchBlocked(
                f"URL {redact_url(url)!r} uses {parsed.scheme or 'no'} scheme: only {allowed} URLs are fetched"
            )
        if parsed.userinfo:
            raise FetchBlocked(
                f"URL with credentials rejected (host {parsed.host}): remove the user:password@ part and "
                "make the file readable without them, or put it in S3"
            )
        if not parsed.host:
            raise FetchBlocked(f"URL {redact_url(url)!r} has no host: use scheme://host/path")
        literal = parse_address(parsed.host)
        if literal is not None:
            self._check_address(parsed.host, literal)

    def resolve(self, host: str, port: int) -> list[str]:
        """Return the addresses of host, raising FetchBlocked when any of them is blocked."""
        literal = parse_address(host)
        texts = [str(literal)] if literal is not None else list(self.resolver(host, port))
        if not texts:
            raise FetchFailed(f"host {host!r} resolved to no address; check the host name")
        addresses = []
        for text in texts:
            address = parse_address(text)
            if address is None:
                raise FetchFailed(f"resolver returned {text!r} for {host!r}, which is not an IP address")
            # One blocked address blocks the host, because a name with both public and private
            # addresses is a rebinding setup or a misconfiguration.
            self._check_address(host, address)
            addresses.append(str(address))
        return addresses

    def client(self, *, verify: Verify = True, timeout: httpx.Timeout | None = None) -> httpx.Client:
        """Return an httpx client whose every request and connection passes this guard.

        Redirects are followed up to policy.max_redirects, each hop checked again. Proxy
        variables of the environment are ignored, because through a proxy the socket would
        reach the proxy's address instead of the checked one.
        """
        return httpx.Client(
            transport=GuardedTransport(self, verify=verify),
            timeout=timeout or self.policy.timeout(),
            follow_redirects=True,
            max_redirects=self.policy.max_redirects,
            trust_env=False,
        )

    def download(self, url: str, sink: BinaryIO, *, client: httpx.Client | None = None) -> FetchResult:
        """GET url into sink within the policy's limits; raise FetchBlocked, FetchTooLarge or FetchFailed.

        client, when given, must come from self.client(); None makes one for this download.
        """
        self.check_url(url)
        own_client = client is None
        client = client or self.client()
        deadline = time.monotonic() + self.policy.deadline_seconds
        try:
            with client.stream("GET", url, headers=IDENTITY_ENCODING) as response:
                _check_status(response, url=url)
                size = self._copy_limited(response, sink, url=url, deadline=deadline)
                return FetchResult(
                    final_url=redact_url(str(response.url)),
                    size_bytes=size,
                    content_type=response.headers.get("content-type", ""),
                )
        except httpx.TooManyRedirects as error:
            raise FetchBlocked(
                f"download of {redact_url(url)} redirected more than {self.policy.max_redirects} times: "
                "use the final URL"
            ) from error
        except httpx.TimeoutException as error:
            raise FetchFailed(f"download of {redact_url(url)} timed out ({type(error).__name__})") from error
        except httpx.TransportError as error:
            raise FetchFailed(f"download of {redact_url(url)} failed: {type(error).__name__}: {error}") from error
        finally:
            if own_client:
                client.close()

    def _copy_limited(self, response: httpx.Response, sink: BinaryIO, *, url: str, deadline: float) -> int:
        limit = self.policy.max_bytes
        declared = response.headers.get("content-length", "")
        if declared.isdigit() and int(declared) > limit:
            raise FetchTooLarge(f"{redact_url(url)} is {declared} bytes, more than the limit of {limit} bytes")

        written = 0
        chunks = _chunks_until(response.iter_bytes(CHUNK_BYTES), deadline=deadline, url=url,
                               seconds=self.policy.deadline_seconds)
        for chunk in chunks:
            written += len(chunk)
            if written > limit:
                raise FetchTooLarge(f"download of {redact_url(url)} stopped: more than the limit of {limit} bytes")
            sink.write(chunk)
        return written

    def _check_address(self, host: str, address: IPAddress) -> None:
        reason = blocked_reason(address)
        if not reason or self._exempt(address):
            return
        raise FetchBlocked(
            f"host {host!r} resolves to {address}, {reason}; only public addresses are fetched. "
            f"Host the file on a public address, or add its network to {ALLOWED_NETWORKS_ENV}"
        )

    def _exempt(self, address: IPAddress) -> bool:
        for network in self.policy.allowed_networks:
            if address not in network:
                continue
            # A metadata address needs a network of exactly that address: a broad exemption
            # such as 169.254.0.0/16 must not hand out cloud credentials by accident.
            if address not in METADATA_ADDRESSES or network.num_addresses == 1:
                return True
        return False


def _check_status(response: httpx.Response, *, url: str) -> None:
    status = response.status_code
    if status == 200:
        return
    if status >= 500 or status in TRANSIENT_STATUSES:
        raise FetchFailed(f"download of {redact_url(url)} failed with HTTP {status}; the server may recover")
    raise InvalidInputError(
        f"download of {redact_url(url)} failed with HTTP {status}: check that the URL is right and public"
    )


def _chunks_until(chunks: Iterator[bytes], *, deadline: float, url: str, seconds: float) -> Iterator[bytes]:
    for chunk in chunks:
        if time.monotonic() > deadline:
            raise FetchFailed(f"download of {redact_url(url)} took longer than {seconds:.0f} s")
        yield chunk

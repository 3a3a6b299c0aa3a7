"""The fetch guard's policy, set in code or read from the environment, and the guard's errors."""

from __future__ import annotations

import ipaddress
import os
from collections.abc import Mapping
from dataclasses import dataclass

import httpx

from lora_trainer.errors import InvalidInputError, TrainerError

IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network

ALLOWED_NETWORKS_ENV = "LORA_FETCH_ALLOWED_NETWORKS"
ALLOWED_SCHEMES_ENV = "LORA_FETCH_ALLOWED_SCHEMES"
DEFAULT_SCHEMES = frozenset({"https"})
KNOWN_SCHEMES = frozenset({"https", "http"})


class FetchBlocked(InvalidInputError):
    """The guard rejected a URL or an address; no request was sent to it."""


class FetchTooLarge(InvalidInputError):
    """A response was larger than the policy's byte limit; the partial body was discarded."""


class FetchPolicyError(InvalidInputError):
    """A fetch setting in the environment is invalid."""


class FetchFailed(TrainerError):
    """A download failed in a way a later try may not see: a timeout, a DNS or connection error, HTTP 5xx."""


@dataclass(frozen=True)
class FetchPolicy:
    """Schemes and networks that the guard allows, and the limits of one download."""

    allowed_schemes: frozenset[str] = DEFAULT_SCHEMES
    allowed_networks: tuple[IPNetwork, ...] = ()
    """Networks exempt from the address block, for example 10.20.0.0/16 for an internal mirror."""
    max_bytes: int = 200 * 1024 * 1024
    connect_timeout_seconds: float = 10.0
    read_timeout_seconds: float = 60.0
    deadline_seconds: float = 30 * 60.0
    max_redirects: int = 5

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> FetchPolicy:
        """Read the allowed networks and schemes from LORA_FETCH_ALLOWED_NETWORKS and LORA_FETCH_ALLOWED_SCHEMES.

        Both are comma-separated; unset keeps the defaults (https only, no exempt network).
        Raises FetchPolicyError naming the variable and the bad item.
        """
        environ = os.environ if environ is None else environ
        networks = tuple(_parse_network(item) for item in _items(environ.get(ALLOWED_NETWORKS_ENV, "")))
        schemes = frozenset(_parse_scheme(item) for item in _items(environ.get(ALLOWED_SCHEMES_ENV, "")))
        return cls(allowed_schemes=schemes or DEFAULT_SCHEMES, allowed_networks=networks)

    def timeout(self) -> httpx.Timeout:
        return httpx.Timeout(self.read_timeout_seconds, connect=self.connect_timeout_seconds)


def _items(text: str) -> list[str]:
    return [item.strip() for item in text.split(",") if item.strip()]


def _parse_network(text: str) -> IPNetwork:
    try:
        return ipaddress.ip_network(text, strict=False)
    except ValueError as error:
        raise FetchPolicyError(
            f"invalid network {text!r} in {ALLOWED_NETWORKS_ENV}: use CIDR notation such as 10.20.0.0/16"
        ) from error


def _parse_scheme(text: str) -> str:
    scheme = text.lower()
    if scheme not in KNOWN_SCHEMES:
        raise FetchPolicyError(f"invalid scheme {text!r} in {ALLOWED_SCHEMES_ENV}: use https, http or both")
    return scheme

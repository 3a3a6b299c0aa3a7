"""The guard that URL downloads go through: in the trainer, and in the operator, which has no torch.

For every request, redirect hops included, the guard checks that the scheme is allowed
(https only by default) and that the URL has no user:password@ part. It then resolves the
host and checks every address: loopback, private, link-local, cloud metadata, shared
(100.64.0.0/10), multicast, reserved and unspecified addresses are blocked unless an allowed
network of the policy contains them. The check runs inside the connection step, and the
socket connects only to an address that passed, so a DNS result that changes between check
and connect (DNS rebinding) gets nowhere. Downloads are bounded by a byte limit, connect
and read timeouts, an overall deadline and a redirect limit.

This package imports no torch, so the operator image can use it.
"""

from lora_trainer.fetch_guard.addresses import METADATA_ADDRESSES, Resolver, blocked_reason, system_resolver
from lora_trainer.fetch_guard.guard import FetchGuard, FetchResult, redact_url
from lora_trainer.fetch_guard.policy import (
    ALLOWED_NETWORKS_ENV,
    ALLOWED_SCHEMES_ENV,
    FetchBlocked,
    FetchFailed,
    FetchPolicy,
    FetchPolicyError,
    FetchTooLarge,
)
from lora_trainer.fetch_guard.transport import GuardedTransport

__all__ = [
    "ALLOWED_NETWORKS_ENV",
    "ALLOWED_SCHEMES_ENV",
    "METADATA_ADDRESSES",
    "FetchBlocked",
    "FetchFailed",
    "FetchGuard",
    "FetchPolicy",
    "FetchPolicyError",
    "FetchResult",
    "FetchTooLarge",
    "GuardedTransport",
    "Resolver",
    "blocked_reason",
    "redact_url",
    "system_resolver",
]

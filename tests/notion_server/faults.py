"""Injected faults and the rate limit of the local Notion server.

Random faults hit API requests at a chosen rate: 429 rate_limited with Retry-After, 500
internal_server_error, 502 bad_gateway, 529 service_overload with Retry-After, or a slow
answer. Rules add targeted delays to matching requests, before or after the request
takes effect. The rate limit answers 429 like Notion's per-integration limit.
"""

from __future__ import annotations

import math
import random
import threading
import time
from dataclasses import dataclass

from tests.notion_server.errors import ApiError

FAULT_KINDS = ("429", "500", "502", "529", "slow")


@dataclass
class DelayRule:
    """Delay the next ``count`` requests of ``method`` under ``path_prefix`` by ``seconds``."""

    method: str
    path_prefix: str
    seconds: float
    count: int = 1
    after_effect: bool = True
    """True: the request takes effect, then the response is held back (a client gone meanwhile misses it)."""

    def matches(self, method: str, path: str) -> bool:
        return self.count > 0 and method == self.method and path.startswith(self.path_prefix)


@dataclass
class FailRule:
    """Respond to the next ``count`` requests of ``method`` under ``path_prefix`` with fault ``kind``."""

    method: str
    path_prefix: str
    kind: str
    count: int = 1

    def matches(self, method: str, path: str) -> bool:
        return self.count > 0 and method == self.method and path.startswith(self.path_prefix)


class Faults:
    """Random faults at ``rate`` among ``kinds``, plus one-off delay rules."""

    def __init__(self, *, seed: int = 7) -> None:
        self._lock = threading.Lock()
        self._random = random.Random(seed)
        self.rate = 0.0
        self.kinds: tuple[str, ...] = FAULT_KINDS
        self.retry_after_seconds = 1
        self.slow_seconds = 1.5
        self.rules: list[DelayRule] = []
        self.fail_rules: list[FailRule] = []
        self.injected: list[tuple[str, str, str]] = []  # (method, path, kind)

    def configure(self, *, rate: float, kinds: tuple[str, ...] = FAULT_KINDS, retry_after_seconds: int = 1,
                  slow_seconds: float = 1.5) -> None:
        unknown = set(kinds) - set(FAULT_KINDS)
        if unknown:
            raise ValueError(f"unknown fault kinds {sorted(unknown)}; use {FAULT_KINDS}")
        with self._lock:
            self.rate, self.kinds = rate, tuple(kinds)
            self.retry_after_seconds, self.slow_seconds = retry_after_seconds, slow_seconds

    def add_delay(self, rule: DelayRule) -> None:
        with self._lock:
            self.rules.append(rule)

    def add_failure(self, rule: FailRule) -> None:
        if rule.kind not in FAULT_KINDS:
            raise ValueError(f"unknown fault kind {rule.kind!r}; use {FAULT_KINDS}")
        with self._lock:
            self.fail_rules.append(rule)

    def draw(self, method: str, path: str) -> str:
        """Return the fault kind for this request, or "" for none: a matching rule first, then chance."""
        with self._lock:
            for rule in self.fail_rules:
                if rule.matches(method, path):
                    rule.count -= 1
                    self.injected.append((method, path, rule.kind))
                    return rule.kind
            if self.rate <= 0 or self._random.random() >= self.rate:
                return ""
            kind = self._random.choice(self.kinds)
            self.injected.append((method, path, kind))
            return kind

    def take_delay(self, method: str, path: str) -> DelayRule | None:
        with self._lock:
            for rule in self.rules:
                if rule.matches(method, path):
                    rule.count -= 1
                    return rule
        return None

    def error_for(self, kind: str) -> ApiError:
        retry_after = {"Retry-After": str(self.retry_after_seconds)}
        if kind == "429":
            return ApiError(429, "rate_limited", "You have been rate limited. Please try again in a few minutes.",
                            headers=retry_after)
        if kind == "500":
            return ApiError(500, "internal_server_error", "Unexpected error occurred.")
        if kind == "502":
            return ApiError(502, "bad_gateway", "Bad gateway.")
        if kind == "529":
            return ApiError(529, "service_overload", "Notion is overloaded. Please try again later.", headers=retry_after)
        raise ValueError(f"fault kind {kind!r} has no error answer")


class RateLimit:
    """A token bucket per integration token: ``rate`` requests per second with bursts up to ``burst``."""

    def __init__(self, *, rate: float, burst: int) -> None:
        self.rate = rate
        self.burst = burst
        self._lock = threading.Lock()
        self._buckets: dict[str, tuple[float, float]] = {}  # token -> (tokens, time)
        self.rejected = 0

    def admit(self, token: str) -> ApiError | None:
        """Return None when the request may go on, else the 429 answer with Retry-After."""
        with self._lock:
            now = time.monotonic()
            tokens, then = self._buckets.get(token, (float(self.burst), now))
            tokens = min(float(self.burst), tokens + (now - then) * self.rate)
            if tokens >= 1.0:
                self._buckets[token] = (tokens - 1.0, now)
                return None
            self._buckets[token] = (tokens, now)
            self.rejected += 1
            wait = math.ceil((1.0 - tokens) / self.rate)
        return ApiError(429, "rate_limited", "You have been rate limited. Please try again in a few minutes.",
                        headers={"Retry-After": str(wait)})

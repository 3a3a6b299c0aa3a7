"""Polling for a state that the cluster reaches asynchronously."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TypeVar

T = TypeVar("T")


def poll_until(
    check: Callable[[], T | None],
    *,
    timeout: float,
    description: str,
    interval: float = 0.25,
    last_state: Callable[[], object] | None = None,
) -> T:
    """Call check until it returns a truthy value, and return that value.

    The timeout is a bound against a hung test, not a performance check.
    On timeout, raise TimeoutError naming description and, when given, the
    output of last_state() so the failure shows where the object got stuck.
    """
    deadline = time.monotonic() + timeout
    while True:
        result = check()
        if result:
            return result
        if time.monotonic() >= deadline:
            state = f"; last state: {last_state()}" if last_state is not None else ""
            raise TimeoutError(f"{description}: not reached after {timeout:.0f} s{state}")
        time.sleep(interval)

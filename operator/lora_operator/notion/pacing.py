"""Request pacing for one Notion token: first-come slots at a fixed rate, and shared pauses.

Callers reserve send slots in the order they ask, one every 1/rate seconds, so the token
never goes over its rate however many threads share it. A Retry-After response pauses
every caller of the token, because Notion counts the token's requests, not the thread's.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable


class RequestPacer:
    """Hands out send slots at ``rate`` per second, first come first served."""

    def __init__(
        self,
        rate: float,
        *,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        if rate <= 0:
            raise ValueError(f"request rate must be positive, got {rate}")
        self.interval = 1.0 / rate
        self._clock = clock
        self._sleep = sleep
        self._lock = threading.Lock()
        self._next_slot = 0.0
        self._paused_until = 0.0

    def wait_turn(self) -> None:
        """Block until this caller's slot; a pause set meanwhile moves the slot past it."""
        while True:
            with self._lock:
                now = self._clock()
                slot = max(now, self._next_slot, self._paused_until)
                self._next_slot = slot + self.interval
            if slot > now:
                self._sleep(slot - now)
            with self._lock:
                if self._clock() >= self._paused_until:
                    return

    def pause(self, seconds: float) -> None:
        """Hold every caller for ``seconds`` from now, as a Retry-After header requests."""
        with self._lock:
            self._paused_until = max(self._paused_until, self._clock() + seconds)

"""A deduplicating work queue of trainings to reconcile, served by a pool of worker threads.

Watch events come in storms (the training, its Job and its pod all change at once). The
queue contains each training at most once, and a training that changes while a worker
reconciles it is queued again once, after that worker finishes. So every event is seen,
no training is reconciled by two workers at once, and a storm costs one or two passes.
"""

from __future__ import annotations

import itertools
import logging
import queue
import threading
import time
from typing import Callable

Key = tuple[str, str]  # (namespace, name)
log = logging.getLogger("lora_operator.workqueue")


class WorkQueue:
    """Queue of (namespace, name) keys, processed by ``workers`` threads calling ``handler``."""

    def __init__(self, handler: Callable[[str, str], None], *, workers: int) -> None:
        self._handler = handler
        # Lower numbers first: new trainings (priority 0) wait for no follow-up event of an older one.
        self._queue: queue.PriorityQueue[tuple[int, int, Key | None]] = queue.PriorityQueue()
        self._sequence = itertools.count()
        self._lock = threading.Lock()
        self._queued: set[Key] = set()
        self._active: set[Key] = set()
        self._dirty: set[Key] = set()
        self._threads = [
            threading.Thread(target=self._work, name=f"reconcile-{index}", daemon=True) for index in range(workers)
        ]

    def start(self) -> None:
        for thread in self._threads:
            thread.start()

    def stop(self, *, timeout: float = 0) -> None:
        """End each worker after its current training; wait up to ``timeout`` seconds for them to end."""
        for _ in self._threads:
            self._queue.put((-1, next(self._sequence), None))
        deadline = time.monotonic() + timeout
        for thread in self._threads:
            if thread.is_alive():
                thread.join(max(0.0, deadline - time.monotonic()))

    def add(self, namespace: str, name: str, *, urgent: bool = False) -> None:
        """Queue a training, unless it is queued already; mark it dirty if a worker has it now.

        ``urgent`` puts it ahead of the rest: for a training that has no Job yet.
        """
        key = (namespace, name)
        with self._lock:
            if key in self._active:
                self._dirty.add(key)
                return
            if key in self._queued:
                return
            self._queued.add(key)
        self._queue.put((0 if urgent else 1, next(self._sequence), key))

    def depth(self) -> int:
        """Trainings waiting for a worker."""
        with self._lock:
            return len(self._queued)

    def _work(self) -> None:
        while True:
            _, _, key = self._queue.get()
            if key is None:
                return
            with self._lock:
                self._queued.discard(key)
                self._active.add(key)
            try:
                self._handler(*key)
            except Exception:  # noqa: BLE001 - a worker must survive any handler error
                log.exception("[%s/%s] reconcile raised; the resync loop retries it", *key)
            finally:
                with self._lock:
                    self._active.discard(key)
                    requeue = key in self._dirty
                    self._dirty.discard(key)
                    if requeue:
                        self._queued.add(key)
                if requeue:
                    self._queue.put((1, next(self._sequence), key))

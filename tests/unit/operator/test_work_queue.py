"""The reconcile work queue: one entry per training, no two workers on one training, new trainings first."""

import threading
import time

import pytest

from lora_operator.workqueue import WorkQueue

pytestmark = pytest.mark.unit


def drain(work: WorkQueue, seen: list, count: int) -> None:
    deadline = time.monotonic() + 10
    while len(seen) < count and time.monotonic() < deadline:
        time.sleep(0.01)
    work.stop()


def test_duplicates_collapse():
    seen = []
    work = WorkQueue(lambda namespace, name: seen.append(name), workers=1)
    for _ in range(5):
        work.add("team", "style")
    work.add("team", "voice")
    work.start()
    drain(work, seen, 2)
    assert seen == ["style", "voice"]


def test_urgent_goes_first():
    seen = []
    work = WorkQueue(lambda namespace, name: seen.append(name), workers=1)
    work.add("team", "old-1")
    work.add("team", "old-2")
    work.add("team", "new", urgent=True)
    work.start()
    drain(work, seen, 3)
    assert seen == ["new", "old-1", "old-2"]


def test_change_during_work_requeues_once():
    seen = []
    started, release = threading.Event(), threading.Event()

    def handler(namespace, name):
        seen.append(name)
        if len(seen) == 1:
            started.set()
            release.wait(5)

    work = WorkQueue(handler, workers=2)
    work.add("team", "style")
    work.start()
    assert started.wait(5)
    for _ in range(3):
        work.add("team", "style")
    release.set()
    drain(work, seen, 2)
    time.sleep(0.1)
    assert seen == ["style", "style"]


def test_handler_error_keeps_worker():
    seen = []

    def handler(namespace, name):
        seen.append(name)
        if name == "broken":
            raise RuntimeError("boom")

    work = WorkQueue(handler, workers=1)
    work.add("team", "broken")
    work.add("team", "fine")
    work.start()
    drain(work, seen, 2)
    assert seen == ["broken", "fine"]


def test_stop_waits_for_current_reconcile():
    started = threading.Event()
    finished = []

    def handler(namespace, name):
        started.set()
        time.sleep(0.3)
        finished.append(name)

    work = WorkQueue(handler, workers=1)
    work.start()
    work.add("team", "style")
    work.add("team", "voice")
    assert started.wait(10)
    work.stop(timeout=10)
    # The running reconcile finished, and the queued one was left for the next leader.
    assert finished == ["style"]

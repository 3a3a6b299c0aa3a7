"""The pacer hands out send slots at a fixed rate, and a Retry-After pause delays every caller."""

from __future__ import annotations

import pytest

from lora_operator.notion.pacing import RequestPacer

pytestmark = pytest.mark.unit


class FakeClock:
    def __init__(self) -> None:
        self.now = 100.0
        self.sends: list[float] = []

    def time(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.now += seconds


def send_times(pacer: RequestPacer, clock: FakeClock, count: int) -> list[float]:
    times = []
    for _ in range(count):
        pacer.wait_turn()
        times.append(round(clock.now, 6))
    return times


def test_slots_spaced_by_rate():
    clock = FakeClock()
    pacer = RequestPacer(2.5, clock=clock.time, sleep=clock.sleep)
    assert send_times(pacer, clock, 4) == [100.0, 100.4, 100.8, 101.2]


def test_pause_delays_next_slot():
    clock = FakeClock()
    pacer = RequestPacer(2.5, clock=clock.time, sleep=clock.sleep)
    pacer.wait_turn()
    pacer.pause(3.0)
    assert send_times(pacer, clock, 2) == [103.0, 103.4]


def test_idle_time_not_banked():
    clock = FakeClock()
    pacer = RequestPacer(2.0, clock=clock.time, sleep=clock.sleep)
    pacer.wait_turn()
    clock.now += 10.0
    assert send_times(pacer, clock, 3) == [110.0, 110.5, 111.0]


def test_rate_must_be_positive():
    with pytest.raises(ValueError, match="must be positive"):
        RequestPacer(0)

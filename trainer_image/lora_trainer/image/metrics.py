"""Running figures for progress reports: the loss EMA, throughput and the time left."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from lora_trainer.lossplot import EMA_BETA


@dataclass
class LossEma:
    """Bias-corrected exponential moving average of the per-step loss, as in lossplot.loss_ema."""

    average: float = 0.0
    count: int = 0
    beta: float = EMA_BETA

    def update(self, loss: float) -> float:
        self.average = self.beta * self.average + (1 - self.beta) * loss
        self.count += 1
        return self.value()

    def value(self) -> float | None:
        return self.average / (1 - self.beta**self.count) if self.count else None

    def to_json(self) -> dict[str, Any]:
        return {"average": self.average, "count": self.count}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> LossEma:
        return cls(average=data["average"], count=data["count"])


@dataclass
class Throughput:
    """Samples and seconds of the optimiser steps of this attempt, previews and checkpoints excluded."""

    samples: int = 0
    seconds: float = 0.0
    steps: int = 0

    def add(self, *, samples: int, seconds: float) -> None:
        self.samples += samples
        self.seconds += seconds
        self.steps += 1

    def samples_per_second(self) -> float | None:
        return self.samples / self.seconds if self.seconds > 0 else None

    def eta_seconds(self, steps_left: int) -> float | None:
        return steps_left * self.seconds / self.steps if self.steps else None

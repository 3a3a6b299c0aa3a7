"""The data position of a run and the step arithmetic built on it."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from lora_trainer.image.sampler import BucketBatchSampler, rebatch

DEFAULT_EPOCHS = 10


@dataclass(frozen=True)
class MicroBatch:
    """One forward pass: the batch at ``batch_index`` of ``epoch``."""

    epoch: int
    batch_index: int
    sample_ids: list[int]


@dataclass
class DataPosition:
    """Position of the next optimiser step: the batch at ``batch_index`` of ``epoch``'s ``plan``."""

    epoch: int
    batch_index: int
    plan: list[list[int]]

    @classmethod
    def start(cls, sampler: BucketBatchSampler) -> DataPosition:
        return cls(epoch=0, batch_index=0, plan=sampler.epoch_plan(0))

    def next_micro_batches(self, accumulation: int) -> list[MicroBatch]:
        """Return the batches of the next optimiser step; the last step of an epoch may have fewer."""
        end = min(self.batch_index + accumulation, len(self.plan))
        return [MicroBatch(self.epoch, index, self.plan[index]) for index in range(self.batch_index, end)]

    def advance(self, count: int, *, sampler: BucketBatchSampler) -> None:
        """Move past ``count`` batches, starting the next epoch's plan at the end of this one."""
        self.batch_index += count
        if self.batch_index >= len(self.plan):
            self.epoch += 1
            self.batch_index = 0
            self.plan = sampler.epoch_plan(self.epoch)

    def epochs_begun(self) -> int:
        """Return the number of epochs trained on so far, counting a partly trained one."""
        return self.epoch + (1 if self.batch_index > 0 else 0)

    def rebatched(self, *, sampler: BucketBatchSampler, sample_buckets: list[tuple[int, int]]) -> DataPosition:
        """Return this position with the epoch's untrained batches cut to the sampler's batch size."""
        rest = rebatch(self.plan[self.batch_index :], sample_buckets=sample_buckets, batch_size=sampler.batch_size)
        return DataPosition(epoch=self.epoch, batch_index=self.batch_index, plan=self.plan[: self.batch_index] + rest)

    def to_json(self) -> dict[str, Any]:
        return {"epoch": self.epoch, "batchIndex": self.batch_index, "plan": self.plan}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> DataPosition:
        return cls(epoch=data["epoch"], batch_index=data["batchIndex"], plan=[list(batch) for batch in data["plan"]])


def total_steps(
    *,
    global_step: int,
    position: DataPosition,
    sampler: BucketBatchSampler,
    accumulation: int,
    max_steps: int | None,
    epochs: int | None,
) -> int:
    """Return the optimiser steps of the whole run, those already done included.

    With ``max_steps`` the total is ``max_steps``. Otherwise the run trains ``epochs`` (default 10)
    epochs of ceil(batches / accumulation) steps each, counted from the current position
    so that a resumed attempt with another batch size still ends at an epoch boundary.
    """
    if max_steps is not None:
        return max_steps
    target_epochs = epochs or DEFAULT_EPOCHS
    if position.epoch >= target_epochs:
        return global_step
    steps_per_epoch = math.ceil(sampler.batches_per_epoch() / accumulation)
    rest_of_epoch = math.ceil((len(position.plan) - position.batch_index) / accumulation)
    return global_step + rest_of_epoch + (target_epochs - position.epoch - 1) * steps_per_epoch

"""Bucket-aware batching: every batch contains samples of one bucket, in an order fixed by (seed, epoch)."""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Sequence

import torch

from lora_trainer.image.seeding import DATA_ORDER, derive_seed

Bucket = tuple[int, int]


class BucketBatchSampler:
    """Plans the batches of each epoch as lists of sample ids.

    Sample ``i`` has the bucket ``sample_buckets[i]``. An epoch shuffles the samples of
    each bucket, cuts them into batches of ``batch_size`` (the last batch of a bucket may
    be smaller), then shuffles the batches. The plan depends only on the seed, the epoch
    and the buckets, so (epoch, batch index) defines what the run trains on next.
    """

    def __init__(self, sample_buckets: Sequence[Bucket], *, batch_size: int, seed: int) -> None:
        if batch_size < 1:
            raise ValueError(f"batch_size must be at least 1, got {batch_size}")
        self.batch_size = batch_size
        self.seed = seed
        self.samples_by_bucket: dict[Bucket, list[int]] = defaultdict(list)
        for sample_id, bucket in enumerate(sample_buckets):
            self.samples_by_bucket[bucket].append(sample_id)

    def batches_per_epoch(self) -> int:
        return sum(math.ceil(len(ids) / self.batch_size) for ids in self.samples_by_bucket.values())

    def epoch_plan(self, epoch: int) -> list[list[int]]:
        """Return the batches of ``epoch`` in training order."""
        generator = torch.Generator().manual_seed(derive_seed(self.seed, DATA_ORDER, epoch))
        batches: list[list[int]] = []
        for bucket in sorted(self.samples_by_bucket):
            ids = self.samples_by_bucket[bucket]
            order = torch.randperm(len(ids), generator=generator).tolist()
            shuffled = [ids[position] for position in order]
            for start in range(0, len(shuffled), self.batch_size):
                batches.append(shuffled[start : start + self.batch_size])
        batch_order = torch.randperm(len(batches), generator=generator).tolist()
        return [batches[position] for position in batch_order]


def rebatch(batches: Sequence[Sequence[int]], *, sample_buckets: Sequence[Bucket], batch_size: int) -> list[list[int]]:
    """Cut the samples of ``batches`` into batches of ``batch_size``, keeping their order.

    Used when a resumed attempt changes the batch size in the middle of an epoch: the
    samples the epoch has not trained on yet are trained on next, each exactly once.
    Samples are grouped by bucket in order of appearance, and the new batches are
    ordered by the position of their first sample. Halving the batch size therefore
    splits every batch in two, in place.
    """
    stream = [sample_id for batch in batches for sample_id in batch]
    by_bucket: dict[Bucket, list[tuple[int, int]]] = defaultdict(list)
    for position, sample_id in enumerate(stream):
        by_bucket[sample_buckets[sample_id]].append((position, sample_id))

    keyed: list[tuple[int, list[int]]] = []
    for entries in by_bucket.values():
        for start in range(0, len(entries), batch_size):
            chunk = entries[start : start + batch_size]
            keyed.append((chunk[0][0], [sample_id for _, sample_id in chunk]))
    keyed.sort(key=lambda item: item[0])
    return [batch for _, batch in keyed]

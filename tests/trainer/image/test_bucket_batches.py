"""Batches hold one bucket each, follow (seed, epoch), and survive a batch-size change mid-epoch."""

from __future__ import annotations

import pytest

from lora_trainer.image.plan import DataPosition, total_steps
from lora_trainer.image.sampler import BucketBatchSampler, rebatch

pytestmark = pytest.mark.trainer

# 11 samples in three buckets, with sizes that leave partial last batches.
SAMPLE_BUCKETS = [(64, 64)] * 6 + [(64, 128)] * 3 + [(128, 64)] * 2


def test_batches_never_mix_buckets() -> None:
    sampler = BucketBatchSampler(SAMPLE_BUCKETS, batch_size=4, seed=3)
    for epoch in range(5):
        for batch in sampler.epoch_plan(epoch):
            assert len({SAMPLE_BUCKETS[sample_id] for sample_id in batch}) == 1, f"epoch {epoch}: {batch}"


def test_epoch_covers_each_sample_once() -> None:
    sampler = BucketBatchSampler(SAMPLE_BUCKETS, batch_size=4, seed=3)
    plan = sampler.epoch_plan(2)
    assert sorted(sample_id for batch in plan for sample_id in batch) == list(range(len(SAMPLE_BUCKETS)))
    assert len(plan) == sampler.batches_per_epoch()


def test_plan_depends_on_seed_and_epoch() -> None:
    sampler = BucketBatchSampler(SAMPLE_BUCKETS, batch_size=2, seed=3)
    same = BucketBatchSampler(SAMPLE_BUCKETS, batch_size=2, seed=3)
    other_seed = BucketBatchSampler(SAMPLE_BUCKETS, batch_size=2, seed=4)
    assert sampler.epoch_plan(1) == same.epoch_plan(1)
    assert sampler.epoch_plan(1) != sampler.epoch_plan(2)
    assert sampler.epoch_plan(1) != other_seed.epoch_plan(1)


def test_halved_batch_splits_in_place() -> None:
    batches = [[0, 1, 2, 3], [6, 7, 8], [4, 5]]
    assert rebatch(batches, sample_buckets=SAMPLE_BUCKETS, batch_size=2) == [[0, 1], [2, 3], [6, 7], [8], [4, 5]]


def test_rebatched_epoch_trains_rest_once() -> None:
    old = BucketBatchSampler(SAMPLE_BUCKETS, batch_size=4, seed=3)
    position = DataPosition.start(old)
    position.advance(2, sampler=old)
    trained = [sample_id for batch in position.plan[:2] for sample_id in batch]

    new = BucketBatchSampler(SAMPLE_BUCKETS, batch_size=1, seed=3)
    rebatched = position.rebatched(sampler=new, sample_buckets=SAMPLE_BUCKETS)
    rest = [sample_id for batch in rebatched.plan[rebatched.batch_index :] for sample_id in batch]
    assert rebatched.batch_index == 2
    assert sorted(trained + rest) == list(range(len(SAMPLE_BUCKETS)))
    assert all(len(batch) == 1 for batch in rebatched.plan[2:])


def test_position_rolls_into_next_epoch() -> None:
    sampler = BucketBatchSampler(SAMPLE_BUCKETS, batch_size=4, seed=3)
    position = DataPosition.start(sampler)
    position.advance(sampler.batches_per_epoch(), sampler=sampler)
    assert (position.epoch, position.batch_index) == (1, 0)
    assert position.plan == sampler.epoch_plan(1)


def test_epochs_set_total_steps() -> None:
    # 11 samples at batch 4: batches of 4+2, 3 and 2, so 4 batches and 2 steps per epoch with accumulation 3.
    sampler = BucketBatchSampler(SAMPLE_BUCKETS, batch_size=4, seed=3)
    start = DataPosition.start(sampler)
    assert total_steps(global_step=0, position=start, sampler=sampler, accumulation=3, max_steps=None, epochs=5) == 10
    assert total_steps(global_step=0, position=start, sampler=sampler, accumulation=3, max_steps=None, epochs=None) == 20
    assert total_steps(global_step=0, position=start, sampler=sampler, accumulation=3, max_steps=7, epochs=None) == 7

"""Checkpoints on S3: the marker makes them count, and a run resumes from them."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from lora_trainer.checkpoint import Checkpoint, CheckpointStore
from lora_trainer.storage import S3Store

from .builders import build_records, make_config, make_trainer

pytestmark = [pytest.mark.trainer, pytest.mark.s3]


def s3_store(s3, bucket: str) -> S3Store:  # noqa: ANN001 - the SeaweedFS fixture
    return S3Store(s3.client(), bucket=bucket, prefix="default/tiny/uid-1")


def test_unmarked_s3_checkpoint_ignored(s3, s3_bucket: str) -> None:  # noqa: ANN001
    store = s3_store(s3, s3_bucket)
    checkpoints = CheckpointStore(store, keep=5)
    for step in (1, 2):
        checkpoints.save(Checkpoint(step=step, adapter={"w": torch.full((2,), float(step))}, metadata={"step": step}))
    store.delete_prefix("checkpoints/step-000002/complete.json")

    loaded = checkpoints.load_latest()
    assert checkpoints.complete_steps() == [1]
    assert loaded.step == 1
    assert torch.equal(loaded.adapter["w"], torch.full((2,), 1.0))


def test_run_resumes_from_s3(s3, s3_bucket: str, tmp_path: Path) -> None:  # noqa: ANN001
    records = build_records(tmp_path / "records")
    config = make_config(tmp_path / "unused", training={"maxSteps": 4})
    first = make_trainer(config, records, run_dir=tmp_path / "unused", work_dir=tmp_path / "work", stop_at=2,
                         store=s3_store(s3, s3_bucket)).run()
    second = make_trainer(config, records, run_dir=tmp_path / "unused", work_dir=tmp_path / "work",
                          store=s3_store(s3, s3_bucket)).run()

    assert first.stopped_early
    assert second.resumed_from == 2
    assert second.global_step == 4
    assert CheckpointStore(s3_store(s3, s3_bucket), keep=5).complete_steps() == [2, 4]

"""SIGTERM makes a training process finish its step, write a complete checkpoint and exit cleanly."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from lora_trainer.checkpoint import CheckpointStore
from lora_trainer.storage import LocalStore
from tests.trainer.progress_wait import wait_for_training_step

from .builders import build_records, make_config
from .trainer_process import write_job

pytestmark = pytest.mark.trainer

TRAINER_PROCESS = Path(__file__).with_name("trainer_process.py")
STARTUP_TIMEOUT_SECONDS = 240


def test_sigterm_writes_checkpoint(tmp_path: Path) -> None:
    records = build_records(tmp_path / "records")
    run_dir = tmp_path / "run"
    config = make_config(run_dir, training={"maxSteps": 100_000, "checkpointEvery": 50_000})
    job, result_path = tmp_path / "job.json", tmp_path / "result.json"
    write_job(job, config=config, records=records, run_dir=run_dir, work_dir=tmp_path / "work", result_path=result_path)

    process = subprocess.Popen(
        [sys.executable, str(TRAINER_PROCESS), str(job)],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=dict(os.environ),
    )
    try:
        wait_for_training_step(run_dir / "progress.json", process, step=2, timeout=STARTUP_TIMEOUT_SECONDS)
        process.send_signal(signal.SIGTERM)
        _, stderr = process.communicate(timeout=120)
    finally:
        if process.poll() is None:
            process.kill()

    assert process.returncode == 0, stderr[-3000:]
    summary = json.loads(result_path.read_text(encoding="utf-8"))
    assert summary["stoppedEarly"]
    assert summary["globalStep"] >= 2
    assert CheckpointStore(LocalStore(run_dir), keep=10).complete_steps() == [summary["globalStep"]]
    assert "received SIGTERM" in stderr

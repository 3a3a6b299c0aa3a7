"""Waiting for a trainer subprocess to reach a training step, read from its progress.json."""

from __future__ import annotations

import json
import subprocess
import time
from pathlib import Path

import pytest


def wait_for_training_step(progress_path: Path, process: subprocess.Popen, *, step: int, timeout: float) -> None:
    """Return once progress.json reports ``step`` or later in the training phase; fail if the trainer exits first."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        assert process.poll() is None, f"trainer exited early with {process.returncode}"
        if progress_path.is_file():
            progress = json.loads(progress_path.read_text(encoding="utf-8"))
            if progress["phase"] == "training" and progress["step"] >= step:
                return
        time.sleep(0.2)
    pytest.fail(f"training did not reach step {step} within {timeout} s")

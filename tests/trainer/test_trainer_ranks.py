"""Under accelerate launch, processes other than rank 0 leave the run folder alone."""

import subprocess
import sys

import pytest

pytestmark = pytest.mark.unit


def test_nonzero_rank_exits_without_training(tmp_path):
    config = tmp_path / "missing.yaml"
    result = subprocess.run(
        [sys.executable, "-m", "lora_trainer.cli", "--config", str(config)],
        env={"RANK": "1", "PATH": "/usr/bin:/bin"}, capture_output=True, text=True, timeout=120,
    )
    assert result.returncode == 0, result.stderr
    assert "rank 1 idles" in result.stderr
    assert not config.exists()


def test_rank_zero_reads_config(tmp_path):
    config = tmp_path / "missing.yaml"
    result = subprocess.run(
        [sys.executable, "-m", "lora_trainer.cli", "--config", str(config)],
        env={"RANK": "0", "PATH": "/usr/bin:/bin"}, capture_output=True, text=True, timeout=120,
    )
    assert result.returncode == 42
    assert "cannot read trainer config" in result.stderr

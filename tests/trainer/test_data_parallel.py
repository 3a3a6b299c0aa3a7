"""`lora-train --processes 2` on the CPU (gloo): data-parallel steps, stops, resumes and exit codes.

Two processes with gradient accumulation A train the same micro-batches per step as one
process with accumulation 2A, with the same seeds, so their weights must agree.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml
from safetensors.torch import load_file

from lora_operator.api.trainer_config import OutputLocation, RunIdentity, TrainerConfig
from lora_operator.api.training_spec import LoRATrainingSpec

from tests.datasets import PHOTOS_DIR
from tests.trainer.progress_wait import wait_for_training_step
from tests.trainer.text.builders import make_config as make_text_config
from tests.trainer.text.builders import write_corpus

pytestmark = pytest.mark.trainer

PHOTO_NAMES = ("astronaut.png", "chelsea.png", "coffee.png", "rocket.jpg", "horse.png", "camera.png")
RUN_TIMEOUT_SECONDS = 300


def image_config(run_dir: Path, photos: Path, *, training: dict[str, Any]) -> TrainerConfig:
    spec = LoRATrainingSpec.model_validate(
        {
            "baseModel": "builtin://tiny-sd",
            "dataset": {"sources": [{"uri": photos.resolve().as_uri()}], "resolution": 64},
            "captioning": {"triggerWord": "zwx"},
            "lora": {"rank": 4, "alpha": 4, "dropout": 0.1},
            "training": {"batchSize": 1, "learningRate": 1e-3, "seed": 7, "checkpointEvery": 1000, **training},
            "previews": {"count": 0},
            "resources": {"cpu": "1"},
        }
    )
    return TrainerConfig(
        run=RunIdentity(name="parallel", uid="uid-1"), output=OutputLocation(uri=run_dir.resolve().as_uri()),
        spec=spec, device="cpu",
    )


def write_config(path: Path, config: TrainerConfig) -> Path:
    path.write_text(yaml.safe_dump(config.to_wire(), sort_keys=False), encoding="utf-8")
    return path


def trainer_command(config_path: Path, processes: int) -> list[str]:
    return [sys.executable, "-m", "lora_trainer.cli", "--config", str(config_path), "--processes", str(processes)]


def run_trainer(config_path: Path, *, processes: int) -> subprocess.CompletedProcess:
    return subprocess.run(
        trainer_command(config_path, processes), capture_output=True, text=True, timeout=RUN_TIMEOUT_SECONDS,
    )


@pytest.fixture(scope="module")
def photos(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("photos")
    for name in PHOTO_NAMES:
        shutil.copy(PHOTOS_DIR / name, folder / name)
    return folder


def run_pair(parallel: Path, single: Path, *, run_root: Path) -> tuple[dict, dict]:
    """Run the parallel config on 2 processes and the single one on 1; return both run.json summaries."""
    parallel_result = run_trainer(parallel, processes=2)
    single_result = run_trainer(single, processes=1)

    assert parallel_result.returncode == 0, parallel_result.stderr[-3000:]
    assert single_result.returncode == 0, single_result.stderr[-3000:]
    parallel_summary = json.loads((run_root / "parallel" / "run.json").read_text(encoding="utf-8"))
    single_summary = json.loads((run_root / "single" / "run.json").read_text(encoding="utf-8"))
    return parallel_summary, single_summary


def assert_same_tensors(left: dict, right: dict) -> None:
    assert left.keys() == right.keys()
    for key in left:
        difference = (left[key].float() - right[key].float()).abs().max().item()
        assert difference <= 1e-6, f"{key} differs by {difference}"


def test_two_processes_match_doubled_accumulation(tmp_path: Path, photos: Path) -> None:
    parallel = write_config(tmp_path / "parallel.yaml", image_config(tmp_path / "parallel", photos, training={"maxSteps": 5}))
    single = write_config(
        tmp_path / "single.yaml",
        image_config(tmp_path / "single", photos, training={"maxSteps": 5, "gradientAccumulation": 2}),
    )

    parallel_summary, single_summary = run_pair(parallel, single, run_root=tmp_path)
    assert parallel_summary["metrics"]["globalStep"] == single_summary["metrics"]["globalStep"] == 5
    assert parallel_summary["metrics"]["finalLoss"] == pytest.approx(single_summary["metrics"]["finalLoss"], abs=1e-6)
    assert_same_tensors(
        load_file(tmp_path / "parallel" / "weights" / "parallel.safetensors"),
        load_file(tmp_path / "single" / "weights" / "parallel.safetensors"),
    )


def test_odd_micro_batch_count_still_matches(tmp_path: Path, photos: Path) -> None:
    # Two processes with accumulation 3 ask for 6 micro-batches per step, more than the few
    # bucket batches of one epoch, and a step ends at the epoch's end. So every step splits
    # an odd or small number of micro-batches, and one process trains fewer than the other.
    training = {"maxSteps": 3, "batchSize": 4, "gradientAccumulation": 3}
    parallel = write_config(tmp_path / "parallel.yaml", image_config(tmp_path / "parallel", photos, training=training))
    single = write_config(
        tmp_path / "single.yaml",
        image_config(tmp_path / "single", photos, training={**training, "gradientAccumulation": 6}),
    )

    run_pair(parallel, single, run_root=tmp_path)
    assert_same_tensors(
        load_file(tmp_path / "parallel" / "weights" / "parallel.safetensors"),
        load_file(tmp_path / "single" / "weights" / "parallel.safetensors"),
    )


def test_text_two_processes_match_doubled_accumulation(tmp_path: Path) -> None:
    corpus = write_corpus(tmp_path / "corpus")
    parallel_config = make_text_config(tmp_path / "parallel", corpus, training={"maxSteps": 4})
    single_config = make_text_config(tmp_path / "single", corpus, training={"maxSteps": 4, "gradientAccumulation": 2})
    parallel = write_config(tmp_path / "parallel.yaml", parallel_config.model_copy(update={"device": "cpu"}))
    single = write_config(tmp_path / "single.yaml", single_config.model_copy(update={"device": "cpu"}))

    parallel_summary, single_summary = run_pair(parallel, single, run_root=tmp_path)
    assert parallel_summary["metrics"]["finalLoss"] == pytest.approx(single_summary["metrics"]["finalLoss"], abs=1e-6)
    assert parallel_summary["metrics"]["evalLoss"] == pytest.approx(single_summary["metrics"]["evalLoss"], abs=1e-6)
    assert_same_tensors(
        load_file(tmp_path / "parallel" / "weights" / "adapter_model.safetensors"),
        load_file(tmp_path / "single" / "weights" / "adapter_model.safetensors"),
    )


def test_sigterm_stops_all_processes_then_resumes(tmp_path: Path, photos: Path) -> None:
    run_dir = tmp_path / "run"
    config_path = write_config(tmp_path / "run.yaml", image_config(run_dir, photos, training={"maxSteps": 1_000_000}))
    process = subprocess.Popen(
        trainer_command(config_path, 2), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=dict(os.environ),
    )
    try:
        wait_for_training_step(run_dir / "progress.json", process, step=3, timeout=RUN_TIMEOUT_SECONDS)
        process.send_signal(signal.SIGTERM)
        _, stderr = process.communicate(timeout=RUN_TIMEOUT_SECONDS)
    finally:
        if process.poll() is None:
            process.kill()

    assert process.returncode == 143, stderr[-3000:]
    assert "workers ended with codes [143, 143]" in stderr
    # Rank 0 alone writes the checkpoint, so only its lines speak of checkpointing.
    checkpoint_lines = [line for line in stderr.splitlines() if "checkpoint" in line]
    assert any("[rank 0]" in line and "stop requested: checkpointing" in line for line in checkpoint_lines), stderr[-3000:]
    assert not [line for line in checkpoint_lines if "[rank 1]" in line], stderr[-3000:]
    stopped_at = json.loads((run_dir / "progress.json").read_text(encoding="utf-8"))["step"]
    assert (run_dir / "checkpoints" / f"step-{stopped_at:06d}" / "complete.json").is_file()
    attempts = json.loads((run_dir / "attempts.json").read_text(encoding="utf-8"))
    assert attempts[-1]["outcome"] == "stopped"

    # The next attempt on two processes resumes from that checkpoint and finishes a few steps later.
    write_config(config_path, image_config(run_dir, photos, training={"maxSteps": stopped_at + 3}))
    resumed = run_trainer(config_path, processes=2)

    assert resumed.returncode == 0, resumed.stderr[-3000:]
    summary = json.loads((run_dir / "run.json").read_text(encoding="utf-8"))
    assert summary["resumedFromStep"] == stopped_at
    assert summary["metrics"]["globalStep"] == stopped_at + 3


def test_invalid_input_exits_42_from_every_process(tmp_path: Path) -> None:
    broken = tmp_path / "broken"
    broken.mkdir()
    (broken / "a.png").write_bytes(b"not an image")
    (broken / "b.jpg").write_bytes(b"\xff\xd8 truncated")
    run_dir = tmp_path / "run"
    config_path = write_config(tmp_path / "run.yaml", image_config(run_dir, broken, training={"maxSteps": 2}))

    result = run_trainer(config_path, processes=2)

    assert result.returncode == 42, result.stderr[-3000:]
    # Rank 1 gets the error from rank 0 and exits 42 too, unless the launcher's stop signal reaches it first.
    assert "ERROR [rank 1]" in result.stderr
    assert "no usable image" in result.stderr
    assert (run_dir / "dataset" / "manifest.jsonl").is_file()
    assert not (run_dir / "run.json").exists()

"""`lora-operator local run` end to end: the real CLI, the real trainer subprocess, builtin models."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

from tests.datasets import BAD_IMAGES_DIR, PHOTOS_DIR

pytestmark = [pytest.mark.e2e, pytest.mark.trainer]

REPO = Path(__file__).resolve().parents[2]
PHOTO_NAMES = ["astronaut.png", "chelsea.png", "coffee.png", "horse.png", "rocket.jpg", "grace_hopper.jpg"]
# Every file of an image run folder, besides checkpoints and previews whose names carry the step.
RUN_FILES = [
    "config.yaml",
    "dataset/manifest.jsonl",
    "dataset/metadata.csv",
    "progress.json",
    "loss.png",
    "weights/tiny-run.safetensors",
    "weights/diffusers/pytorch_lora_weights.safetensors",
    "attempts.json",
    "run.json",
]


def write_manifest(folder: Path, *, max_steps: int, checkpoint_every: int) -> Path:
    data = folder / "data"
    data.mkdir()
    for name in PHOTO_NAMES:
        shutil.copy(PHOTOS_DIR / name, data / name)
    shutil.copy(BAD_IMAGES_DIR / "truncated.jpg", data / "truncated.jpg")
    (data / "horse.txt").write_text("a brown horse in a field", encoding="utf-8")
    manifest = {
        "apiVersion": "lora-operator.io/v1alpha1",
        "kind": "LoRATraining",
        "metadata": {"name": "tiny-run"},
        "spec": {
            "baseModel": "builtin://tiny-sd",
            "dataset": {"sources": [{"uri": "file://data"}], "resolution": 64},
            "captioning": {"model": "builtin://tiny-clip", "triggerWord": "tinytok", "topK": 3},
            "training": {"maxSteps": max_steps, "batchSize": 2, "checkpointEvery": checkpoint_every},
            # One thread: what the CPU results are reproducible with, and fast on a shared machine.
            "resources": {"cpu": "1"},
            "previews": {"every": max_steps, "count": 1, "inferenceSteps": 2},
        },
    }
    path = folder / "manifest.yaml"
    path.write_text(yaml.safe_dump(manifest), encoding="utf-8")
    return path


def local_run(manifest: Path, output: Path, **kwargs) -> subprocess.CompletedProcess:
    command = [sys.executable, "-m", "lora_operator.cli", "local", "run", str(manifest), "--output", str(output)]
    return subprocess.run(command, capture_output=True, text=True, timeout=600, **kwargs)


def run_folder(output: Path) -> Path:
    folders = list((output / "default" / "tiny-run").iterdir())
    assert len(folders) == 1, folders
    return folders[0]


def test_local_run_writes_run_folder(tmp_path):
    manifest = write_manifest(tmp_path, max_steps=4, checkpoint_every=2)
    result = local_run(manifest, tmp_path / "runs")
    assert result.returncode == 0, result.stdout + result.stderr

    folder = run_folder(tmp_path / "runs")
    for name in RUN_FILES:
        assert (folder / name).is_file(), f"missing {name}"
    assert sorted(path.name for path in (folder / "previews").iterdir()) == ["step-000004-00.png"]
    assert (folder / "checkpoints" / "step-000004" / "complete.json").is_file()

    progress = json.loads((folder / "progress.json").read_text())
    assert progress["phase"] == "done"
    assert progress["step"] == 4

    manifest_lines = [json.loads(line) for line in (folder / "dataset/manifest.jsonl").read_text().splitlines()]
    skipped = [entry for entry in manifest_lines if entry["status"] == "skipped"]
    assert [entry["name"] for entry in skipped] == ["truncated.jpg"]
    horse = next(entry for entry in manifest_lines if entry["name"] == "horse.png")
    assert horse["caption"] == "tinytok, a brown horse in a field"

    summary = json.loads((folder / "run.json").read_text())
    assert summary["metrics"]["globalStep"] == 4
    assert summary["dataset"]["accepted"] == len(PHOTO_NAMES)
    assert "Run folder" in result.stdout


def test_second_run_reports_complete(tmp_path):
    manifest = write_manifest(tmp_path, max_steps=2, checkpoint_every=2)
    first = local_run(manifest, tmp_path / "runs")
    assert first.returncode == 0, first.stdout + first.stderr
    weights = run_folder(tmp_path / "runs") / "weights/tiny-run.safetensors"
    modified = weights.stat().st_mtime_ns

    second = local_run(manifest, tmp_path / "runs")
    assert second.returncode == 0, second.stdout + second.stderr
    assert "already complete" in second.stdout
    assert weights.stat().st_mtime_ns == modified


def test_interrupted_run_resumes(tmp_path):
    # Enough steps that the stop arrives while training runs, however fast the machine is.
    manifest = write_manifest(tmp_path, max_steps=300, checkpoint_every=5)
    output = tmp_path / "runs"
    command = [sys.executable, "-m", "lora_operator.cli", "local", "run", str(manifest), "--output", str(output)]
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        progress_file = None
        deadline = time.monotonic() + 300
        while time.monotonic() < deadline:
            candidates = list(output.glob("default/tiny-run/*/progress.json"))
            if candidates:
                progress_file = candidates[0]
                state = json.loads(progress_file.read_text() or "{}")
                if state.get("phase") == "training" and state.get("step", 0) >= 2:
                    break
            time.sleep(0.2)
        process.send_signal(signal.SIGINT)
        # An impatient second Ctrl-C, while the trainer writes its checkpoint, changes nothing.
        time.sleep(0.1)
        process.send_signal(signal.SIGINT)
        stopped_output, _ = process.communicate(timeout=300)
    finally:
        if process.poll() is None:
            process.kill()
    assert process.returncode != 0, stopped_output
    assert "Run the same command again to resume" in stopped_output
    assert "Traceback" not in stopped_output

    folder = run_folder(output)
    assert not (folder / "run.json").exists()
    checkpoints = sorted((folder / "checkpoints").glob("step-*/complete.json"))
    assert checkpoints, "the stop left no complete checkpoint"

    resumed = local_run(manifest, output, env={**os.environ, "COLUMNS": "200"})
    assert resumed.returncode == 0, resumed.stdout + resumed.stderr
    assert "Resuming the interrupted run" in resumed.stdout
    summary = json.loads((folder / "run.json").read_text())
    assert summary["metrics"]["globalStep"] == 300
    assert [entry["outcome"] for entry in summary["attempts"]] == ["stopped", "succeeded"]


@pytest.mark.slow
def test_quickstart_example_runs(tmp_path):
    """The README's main job, exactly as shipped."""
    result = local_run(REPO / "examples" / "quickstart.yaml", tmp_path / "runs")
    assert result.returncode == 0, result.stdout + result.stderr

    folders = list((tmp_path / "runs" / "default" / "quickstart").iterdir())
    assert len(folders) == 1
    folder = folders[0]
    expected = [name.replace("tiny-run", "quickstart") for name in RUN_FILES]
    for name in expected:
        assert (folder / name).is_file(), f"missing {name}"
    assert len(list((folder / "previews").glob("step-000120-*.png"))) == 2
    assert sorted(path.name for path in (folder / "checkpoints").iterdir())
    summary = json.loads((folder / "run.json").read_text())
    assert summary["dataset"]["accepted"] == 19
    assert "Run folder" in result.stdout

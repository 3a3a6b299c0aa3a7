"""The README's text quickstart runs through the real CLI and prints its previews."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = [pytest.mark.trainer, pytest.mark.e2e]

REPO = Path(__file__).resolve().parents[3]
QUICKSTART = REPO / "examples" / "text-quickstart.yaml"
RUN_FILES = [
    "config.yaml",
    "dataset/manifest.jsonl",
    "progress.json",
    "loss.png",
    "weights/adapter_model.safetensors",
    "weights/adapter_config.json",
    "weights/README.md",
    "run.json",
]


@pytest.fixture(scope="module")
def quickstart(tmp_path_factory: pytest.TempPathFactory) -> tuple[subprocess.CompletedProcess, Path]:
    output = tmp_path_factory.mktemp("runs")
    command = [sys.executable, "-m", "lora_operator.cli", "local", "run", str(QUICKSTART), "--output", str(output)]
    result = subprocess.run(command, capture_output=True, text=True, timeout=900, cwd=REPO)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    folders = list((output / "default" / "text-quickstart").iterdir())
    assert len(folders) == 1, folders
    return result, folders[0]


def test_run_folder_complete(quickstart) -> None:  # noqa: ANN001
    _, folder = quickstart
    for name in RUN_FILES:
        assert (folder / name).is_file(), f"missing {name}"


def test_checkpoints_and_previews(quickstart) -> None:  # noqa: ANN001
    _, folder = quickstart

    assert sorted(path.name for path in (folder / "previews").iterdir()) == ["step-000100.jsonl", "step-000200.jsonl"]
    assert sorted(path.name for path in (folder / "checkpoints").iterdir()) == ["step-000150", "step-000200"]


def test_summary_and_loss(quickstart) -> None:  # noqa: ANN001
    _, folder = quickstart
    summary = json.loads((folder / "run.json").read_text(encoding="utf-8"))
    history = summary["metrics"]["evalHistory"]

    assert summary["metrics"]["globalStep"] == 200
    assert summary["dataset"]["trainRecords"] + summary["dataset"]["evalRecords"] == 52
    assert history[-1]["loss"] < history[0]["loss"]


def test_previews_printed(quickstart) -> None:  # noqa: ANN001
    result, _ = quickstart

    assert "Previews previews/step-000200.jsonl" in result.stdout
    assert "'Do you fix electric bikes?' ->" in result.stdout

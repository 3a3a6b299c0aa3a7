"""A run stopped at any step and resumed ends bit-identical to an uninterrupted run (CPU)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from lora_trainer.data.records import ImageRecord

from .builders import build_records, differing_tensors, final_adapter, make_config, make_trainer
from .trainer_process import write_job

pytestmark = pytest.mark.trainer

TRAINER_PROCESS = Path(__file__).with_name("trainer_process.py")
# An epoch has 3 batches: with accumulation 1 it ends after step 3, with accumulation 2 after step 2.
RUNS = {
    1: {"training": {"maxSteps": 8, "gradientAccumulation": 1}, "previews": {"count": 1, "every": 3, "inferenceSteps": 2}},
    2: {"training": {"maxSteps": 6, "gradientAccumulation": 2}, "previews": {"count": 0}},
}


@pytest.fixture(scope="module")
def records(tmp_path_factory: pytest.TempPathFactory) -> list[ImageRecord]:
    return build_records(tmp_path_factory.mktemp("records"))


@pytest.fixture(scope="module")
def uninterrupted(records: list[ImageRecord], tmp_path_factory: pytest.TempPathFactory) -> dict[int, dict]:
    """Train each RUNS entry without interruption; return its final adapter and losses by accumulation."""
    outcomes = {}
    for accumulation, overrides in RUNS.items():
        root = tmp_path_factory.mktemp(f"uninterrupted-{accumulation}")
        config = make_config(root / "run", **overrides)
        result = make_trainer(config, records, run_dir=root / "run", work_dir=root / "work").run()
        outcomes[accumulation] = {"adapter": final_adapter(root / "run"), "losses": result.losses, "steps": result.global_step}
    return outcomes


@pytest.mark.parametrize(
    ("accumulation", "stop_at"),
    [(1, 2), (1, 3), (2, 2), (2, 3)],
    ids=["mid-epoch", "epoch-end", "accumulation-epoch-end", "accumulation-mid-epoch"],
)
def test_resume_matches_uninterrupted(
    accumulation: int, stop_at: int, records: list[ImageRecord], uninterrupted: dict[int, dict], tmp_path: Path
) -> None:
    config = make_config(tmp_path / "run", **RUNS[accumulation])
    first = make_trainer(config, records, run_dir=tmp_path / "run", work_dir=tmp_path / "work", stop_at=stop_at).run()
    assert first.stopped_early
    assert first.global_step == stop_at

    second = make_trainer(config, records, run_dir=tmp_path / "run", work_dir=tmp_path / "work").run()
    reference = uninterrupted[accumulation]
    assert second.resumed_from == stop_at
    assert not second.stopped_early
    assert second.global_step == reference["steps"]
    assert differing_tensors(reference["adapter"], final_adapter(tmp_path / "run")) == []
    assert second.losses == reference["losses"]


def test_resume_in_fresh_process(records: list[ImageRecord], uninterrupted: dict[int, dict], tmp_path: Path) -> None:
    config = make_config(tmp_path / "run", **RUNS[1])
    first = make_trainer(config, records, run_dir=tmp_path / "run", work_dir=tmp_path / "work", stop_at=5).run()
    assert first.global_step == 5

    # A new work folder: the resumed process also rebuilds the latent cache, as a new pod would.
    job, result_path = tmp_path / "job.json", tmp_path / "result.json"
    write_job(job, config=config, records=records, run_dir=tmp_path / "run", work_dir=tmp_path / "work-2", result_path=result_path)
    completed = subprocess.run(
        [sys.executable, str(TRAINER_PROCESS), str(job)], capture_output=True, text=True, timeout=300, env=dict(os.environ)
    )
    assert completed.returncode == 0, completed.stderr[-3000:]
    summary = json.loads(result_path.read_text(encoding="utf-8"))
    assert summary["resumedFrom"] == 5
    assert summary["globalStep"] == 8
    assert differing_tensors(uninterrupted[1]["adapter"], final_adapter(tmp_path / "run")) == []
    assert [tuple(entry) for entry in summary["losses"]] == uninterrupted[1]["losses"]

"""A text run stopped at a step and resumed ends bit-identical to an uninterrupted run (CPU)."""

from __future__ import annotations

from pathlib import Path

import pytest

from .builders import differing_tensors, final_adapter, make_config, train, write_corpus

pytestmark = pytest.mark.trainer

# Evaluation every 3 steps, previews every 4 and dropout 0.1 all run between the stop and the end.
RUNS = {
    1: {"training": {"maxSteps": 8, "gradientAccumulation": 1},
        "previews": {"every": 4, "count": 1, "maxNewTokens": 4}},
    2: {"training": {"maxSteps": 5, "gradientAccumulation": 2}, "text": {"packing": True}},
}


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_corpus(tmp_path_factory.mktemp("corpus"))


@pytest.fixture(scope="module")
def uninterrupted(data_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[int, dict]:
    """Train each RUNS entry without interruption; return its final adapter, losses and evals by accumulation."""
    outcomes = {}
    for accumulation, overrides in RUNS.items():
        root = tmp_path_factory.mktemp(f"uninterrupted-{accumulation}")
        config = make_config(root / "run", data_dir, **overrides)
        result = train(config, run_dir=root / "run", work_dir=root / "work")
        outcomes[accumulation] = {
            "adapter": final_adapter(root / "run"), "losses": result.losses, "evals": result.evals,
            "steps": result.global_step, "previews": result.preview_keys, "run_dir": root / "run",
        }
    return outcomes


@pytest.mark.parametrize(("accumulation", "stop_at"), [(1, 2), (1, 4), (2, 3)], ids=["mid-epoch", "at-preview", "accumulation"])
def test_resume_matches_uninterrupted(
    accumulation: int, stop_at: int, data_dir: Path, uninterrupted: dict[int, dict], tmp_path: Path
) -> None:
    config = make_config(tmp_path / "run", data_dir, **RUNS[accumulation])
    first = train(config, run_dir=tmp_path / "run", work_dir=tmp_path / "work", stop_at=stop_at)
    assert first.stopped_early
    assert first.global_step == stop_at

    second = train(config, run_dir=tmp_path / "run", work_dir=tmp_path / "work")
    reference = uninterrupted[accumulation]
    assert second.resumed_from == stop_at
    assert second.global_step == reference["steps"]
    assert differing_tensors(reference["adapter"], final_adapter(tmp_path / "run")) == []
    assert second.losses == reference["losses"]
    assert second.evals == reference["evals"]
    assert second.preview_keys == reference["previews"]


def test_resumed_previews_match(data_dir: Path, uninterrupted: dict[int, dict], tmp_path: Path) -> None:
    config = make_config(tmp_path / "run", data_dir, **RUNS[1])
    train(config, run_dir=tmp_path / "run", work_dir=tmp_path / "work", stop_at=2)
    train(config, run_dir=tmp_path / "run", work_dir=tmp_path / "work")

    reference_dir = uninterrupted[1]["run_dir"]
    for key in uninterrupted[1]["previews"]:
        assert (tmp_path / "run" / key).read_text(encoding="utf-8") == (reference_dir / key).read_text(encoding="utf-8"), key


def test_changed_settings_block_resume(data_dir: Path, tmp_path: Path) -> None:
    config = make_config(tmp_path / "run", data_dir, **RUNS[2])
    train(config, run_dir=tmp_path / "run", work_dir=tmp_path / "work", stop_at=2)

    changed = make_config(tmp_path / "run", data_dir, text={"packing": True, "maxSeqLength": 80}, training=RUNS[2]["training"])
    with pytest.raises(Exception, match=r"belongs to a different run: the tokenised data changed"):
        train(changed, run_dir=tmp_path / "run", work_dir=tmp_path / "work")

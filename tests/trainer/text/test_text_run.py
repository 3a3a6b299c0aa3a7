"""A whole text run through run_training: manifest with token statistics, previews, weights and run.json."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from lora_trainer.errors import InvalidInputError
from lora_trainer.run import run_training

from .builders import LOG, make_config, write_corpus

pytestmark = pytest.mark.trainer


@pytest.fixture(scope="module")
def finished_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("run")
    data = write_corpus(root / "data")
    (data / "long.txt").write_text("the quick brown fox " * 40, encoding="utf-8")
    config = make_config(
        root / "run", data, training={"maxSteps": 6, "checkpointEvery": 3},
        text={"maxSeqLength": 64, "evalEvery": 3}, previews={"every": 3, "count": 2, "maxNewTokens": 6},
    )
    outcome = run_training(config, base_dir=root, log=LOG)
    assert outcome.status == "done"
    return root / "run"


def manifest_lines(run_dir: Path) -> list[dict]:
    return [json.loads(line) for line in (run_dir / "dataset/manifest.jsonl").read_text(encoding="utf-8").splitlines()]


def test_run_folder_files(finished_run: Path) -> None:
    for key in ("config.yaml", "dataset/manifest.jsonl", "progress.json", "loss.png", "run.json",
                "weights/adapter_model.safetensors", "weights/adapter_config.json", "weights/README.md",
                "previews/step-000003.jsonl", "previews/step-000006.jsonl", "checkpoints/step-000006/complete.json"):
        assert (finished_run / key).is_file(), key


def test_manifest_token_statistics(finished_run: Path) -> None:
    files = {line["name"]: line for line in manifest_lines(finished_run) if line["type"] == "file"}
    long = files["long.txt"]

    assert long["split"] == 1
    assert long["splitLines"] == [1]
    assert long["tokens"]["max"] > 64
    assert files["chat.jsonl"]["tokens"]["count"] == 8


def test_manifest_summary(finished_run: Path) -> None:
    summary = manifest_lines(finished_run)[-1]

    assert summary["type"] == "summary"
    assert summary["trainRecords"] + summary["evalRecords"] == 13
    assert summary["recordKinds"] == {"chat": 8, "prompt_completion": 2, "text": 3}
    assert summary["outcomes"]["split"] == 1
    assert summary["chatTemplate"] == "base model"
    assert summary["tokens"]["p50"] <= summary["tokens"]["p90"] <= summary["tokens"]["max"]


def test_previews_greedy_and_sampled(finished_run: Path) -> None:
    lines = [json.loads(line) for line in (finished_run / "previews/step-000006.jsonl").read_text(encoding="utf-8").splitlines()]

    assert [(line["index"], line["mode"]) for line in lines] == [(0, "greedy"), (0, "sampled"), (1, "greedy"), (1, "sampled")]
    assert [line["seed"] for line in lines if line["mode"] == "sampled"] == [1234, 1235]
    assert all(line["step"] == 6 for line in lines)


def test_run_summary(finished_run: Path) -> None:
    summary = json.loads((finished_run / "run.json").read_text(encoding="utf-8"))
    metrics = summary["metrics"]

    assert summary["task"] == "text"
    assert metrics["globalStep"] == 6
    assert [entry["step"] for entry in metrics["evalHistory"]] == [3, 6]
    assert metrics["perplexity"] == pytest.approx(2.718281828 ** metrics["evalLoss"])
    assert metrics["adapterTensors"] == 28
    assert summary["artifacts"]["weights"]["peft"]["key"] == "weights/adapter_model.safetensors"
    assert summary["artifacts"]["previews"] == ["previews/step-000003.jsonl", "previews/step-000006.jsonl"]


def test_progress_reports_eval(finished_run: Path) -> None:
    progress = json.loads((finished_run / "progress.json").read_text(encoding="utf-8"))

    assert progress["phase"] == "done"
    assert progress["evalLoss"] > 0
    assert progress["previews"] == ["previews/step-000006.jsonl"]


def test_invalid_records_fail_with_manifest(tmp_path: Path) -> None:
    data = tmp_path / "data"
    data.mkdir()
    (data / "bad.jsonl").write_text('{"text": "fine"}\n{"prompt": "no completion"}\n', encoding="utf-8")
    config = make_config(tmp_path / "run", data)

    with pytest.raises(InvalidInputError, match=r"bad.jsonl:2: completion is missing"):
        run_training(config, base_dir=tmp_path, log=LOG)
    line = manifest_lines(tmp_path / "run")[0]
    assert line["status"] == "invalid"
    assert line["errors"] == ["bad.jsonl:2: completion is missing: prompt and completion go together"]


def test_no_trainable_sample_fails(tmp_path: Path) -> None:
    data = tmp_path / "data"
    data.mkdir()
    (data / "a.txt").write_text("word " * 200, encoding="utf-8")
    config = make_config(tmp_path / "run", data, text={"maxSeqLength": 32, "overlong": "skip", "evalFraction": 0.0})

    with pytest.raises(InvalidInputError, match=r"no training sample is left .*'skipped': 1.*raise text.maxSeqLength"):
        run_training(config, base_dir=tmp_path, log=LOG)
    assert manifest_lines(tmp_path / "run")[0]["skipped"] == 1


def test_quantization_needs_gpu(tmp_path: Path) -> None:
    config = make_config(tmp_path / "run", write_corpus(tmp_path / "data"), text={"quantization": "4bit"})

    with pytest.raises(InvalidInputError, match=r"text.quantization 4bit \(QLoRA\) needs an NVIDIA GPU with CUDA, and this trainer runs on cpu"):
        run_training(config, base_dir=tmp_path, log=LOG)

"""Exact duplicates are dropped and reported; the train/eval split is deterministic and sized by evalFraction."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from lora_trainer.text.dataset import split_records
from lora_trainer.text.records import TextRecord

from .builders import load_dataset, make_config

pytestmark = pytest.mark.trainer


def records(count: int) -> list[TextRecord]:
    return [TextRecord(kind="text", file="a.txt", line=index + 1, text=f"record {index}") for index in range(count)]


def write_lines(path: Path, texts: list[str]) -> None:
    path.write_text("".join(json.dumps({"text": text}) + "\n" for text in texts), encoding="utf-8")


def test_duplicates_dropped_across_files(tmp_path: Path) -> None:
    data = tmp_path / "data"
    data.mkdir()
    write_lines(data / "a.jsonl", ["one", "two", "one"])
    write_lines(data / "b.jsonl", ["two", "three"])
    dataset = load_dataset(make_config(tmp_path / "run", data, text={"evalFraction": 0.0}), tmp_path / "work")
    reports = {report.name: report for report in dataset.files}

    assert sorted(record.text for record in dataset.train) == ["one", "three", "two"]
    assert reports["a.jsonl"].duplicates == [{"line": 3, "duplicateOf": "a.jsonl:1"}]
    assert reports["b.jsonl"].duplicates == [{"line": 1, "duplicateOf": "a.jsonl:2"}]


def test_deduplicate_off_keeps_all(tmp_path: Path) -> None:
    data = tmp_path / "data"
    data.mkdir()
    write_lines(data / "a.jsonl", ["one", "one"])
    dataset = load_dataset(make_config(tmp_path / "run", data, text={"evalFraction": 0.0, "deduplicate": False}), tmp_path / "work")

    assert [record.text for record in dataset.train] == ["one", "one"]


@pytest.mark.parametrize(("count", "fraction", "held_out"), [(20, 0.1, 2), (20, 0.0, 0), (3, 0.05, 1), (2, 0.5, 1), (1, 0.5, 0)])
def test_split_sizes(count: int, fraction: float, held_out: int) -> None:
    train, evaluation = split_records(records(count), fraction=fraction, seed=1)

    assert len(evaluation) == held_out
    assert len(train) == count - held_out


def test_split_ignores_file_order() -> None:
    forward = split_records(records(30), fraction=0.2, seed=5)[1]
    backward = split_records(list(reversed(records(30))), fraction=0.2, seed=5)[1]

    assert sorted(record.text for record in forward) == sorted(record.text for record in backward)


def test_split_depends_on_seed() -> None:
    first = {record.text for record in split_records(records(30), fraction=0.2, seed=5)[1]}
    second = {record.text for record in split_records(records(30), fraction=0.2, seed=6)[1]}

    assert first != second

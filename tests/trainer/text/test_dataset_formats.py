"""Every dataset file format reads into records of each shape, with the line each record starts on."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from lora_operator.api.training_spec import DatasetSpec, DataSource, TextSpec
from lora_trainer.errors import InvalidInputError
from lora_trainer.sources import SourceOptions
from lora_trainer.text.dataset import load_text_dataset
from lora_trainer.text.fetch import fetch_text_source

from .builders import LOG

pytestmark = pytest.mark.trainer

CHAT = {"messages": [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Hi?"},
                     {"role": "assistant", "content": "Hello!"}]}


def load(folder: Path, *, include: list[str] | None = None, **text: object) -> list:
    spec = DatasetSpec(sources=[DataSource(uri=folder.as_uri(), include=include or [])])
    dataset = load_text_dataset(
        spec, TextSpec(eval_fraction=0.0, **text), work_dir=folder / ".work", options=SourceOptions(base_dir=folder),
        seed=1, log=LOG,
    )
    dataset.raise_for_errors()
    return dataset.train


def write(folder: Path, name: str, content: str) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / name
    path.write_text(content, encoding="utf-8")
    return path


def test_jsonl_reads_three_shapes(tmp_path: Path) -> None:
    lines = [json.dumps({"text": "Plain text."}), "", json.dumps({"prompt": "Q?", "completion": "A."}), json.dumps(CHAT)]
    write(tmp_path, "data.jsonl", "\n".join(lines) + "\n")
    records = load(tmp_path)

    assert [(record.kind, record.line) for record in records] == [("text", 1), ("prompt_completion", 3), ("chat", 4)]
    assert records[0].text == "Plain text."
    assert (records[1].prompt, records[1].completion) == ("Q?", "A.")
    assert [message.role for message in records[2].messages] == ["system", "user", "assistant"]


def test_ndjson_extension_reads_as_jsonl(tmp_path: Path) -> None:
    write(tmp_path, "data.ndjson", json.dumps({"text": "one"}) + "\n")

    assert [record.text for record in load(tmp_path)] == ["one"]


def test_csv_prompt_completion_columns(tmp_path: Path) -> None:
    write(tmp_path, "pairs.csv", 'prompt,completion,source\n"Where, exactly?","Mill Road.",web\n"Two\nlines?",Yes.,mail\n')
    records = load(tmp_path)

    assert [(record.prompt, record.completion, record.line) for record in records] == [
        ("Where, exactly?", "Mill Road.", 2), ("Two\nlines?", "Yes.", 3)
    ]


def test_csv_text_column(tmp_path: Path) -> None:
    write(tmp_path, "notes.csv", "text\nFirst note.\n\nSecond note.\n")
    records = load(tmp_path)

    assert [(record.kind, record.text, record.line) for record in records] == [("text", "First note.", 2), ("text", "Second note.", 4)]


def test_csv_with_byte_order_mark(tmp_path: Path) -> None:
    (tmp_path / "excel.csv").write_bytes("text\nSaved by a spreadsheet.\n".encode("utf-8-sig"))

    assert [record.text for record in load(tmp_path)] == ["Saved by a spreadsheet."]


def test_txt_file_is_one_record(tmp_path: Path) -> None:
    write(tmp_path, "letter.txt", "Dear rider,\n\nthank you.\n")
    records = load(tmp_path)

    assert [(record.kind, record.text, record.line) for record in records] == [("text", "Dear rider,\n\nthank you.", 1)]


def test_markdown_sections_are_records(tmp_path: Path) -> None:
    write(tmp_path, "guide.md", "Intro line.\n\n# Tone\nWarm.\n```\n# a comment in code\n```\n\n## Prices\nIn euros.\n### Detail\nKept in Prices.\n")
    records = load(tmp_path)

    assert [record.line for record in records] == [1, 3, 9]
    assert records[1].text == "# Tone\nWarm.\n```\n# a comment in code\n```"
    assert records[2].text == "## Prices\nIn euros.\n### Detail\nKept in Prices."


def test_unsupported_and_hidden_files_ignored(tmp_path: Path) -> None:
    write(tmp_path, "keep.txt", "kept")
    write(tmp_path, "photo.png", "not text")
    write(tmp_path, ".hidden.txt", "hidden")
    write(tmp_path / "sub", "nested.md", "# Nested\nfound")

    assert sorted(record.file for record in load(tmp_path)) == ["keep.txt", "sub/nested.md"]


def test_include_patterns_select_files(tmp_path: Path) -> None:
    write(tmp_path, "a.jsonl", json.dumps({"text": "a"}) + "\n")
    write(tmp_path, "README.md", "# About\nnot training data")

    assert [record.file for record in load(tmp_path, include=["*.jsonl"])] == ["a.jsonl"]


def test_folder_without_text_rejected(tmp_path: Path) -> None:
    write(tmp_path, "photo.png", "x")
    source = DataSource(uri=tmp_path.as_uri())

    with pytest.raises(InvalidInputError, match=r"contains no text file .*supported extensions: \.csv \.jsonl"):
        fetch_text_source(source, destination=tmp_path / "d", options=SourceOptions(base_dir=tmp_path))


def test_single_file_source(tmp_path: Path) -> None:
    path = write(tmp_path, "only.txt", "just this")
    spec = DatasetSpec(sources=[DataSource(uri=path.as_uri())])
    dataset = load_text_dataset(spec, TextSpec(eval_fraction=0.0), work_dir=tmp_path / "w", options=SourceOptions(base_dir=tmp_path), seed=1, log=LOG)

    assert [record.text for record in dataset.train] == ["just this"]


def test_large_file_skipped_with_reason(tmp_path: Path) -> None:
    write(tmp_path, "big.txt", "x" * 5000)
    write(tmp_path, "small.txt", "fits")
    spec = DatasetSpec(sources=[DataSource(uri=tmp_path.as_uri())], max_file_bytes=1024)
    dataset = load_text_dataset(spec, TextSpec(eval_fraction=0.0), work_dir=tmp_path / "w", options=SourceOptions(base_dir=tmp_path), seed=1, log=LOG)
    reports = {report.name: report for report in dataset.files}

    assert reports["big.txt"].status == "skipped"
    assert "dataset.maxFileBytes is 1024" in reports["big.txt"].reason
    assert [record.text for record in dataset.train] == ["fits"]

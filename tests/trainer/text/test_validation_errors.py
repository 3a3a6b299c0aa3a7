"""Invalid records fail the dataset with their file and line, every one of them, and the fix."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from lora_operator.api.training_spec import DatasetSpec, DataSource, TextSpec
from lora_trainer.errors import InvalidInputError
from lora_trainer.sources import SourceOptions
from lora_trainer.text.dataset import TextDataset, load_text_dataset

from .builders import LOG

pytestmark = pytest.mark.trainer

GOOD = json.dumps({"text": "fine"})
# (file name, content, expected "file:line: message" fragment)
CASES = {
    "invalid-json": ("data.jsonl", f'{GOOD}\n{{"text": "no end"\n', r"data.jsonl:2: invalid JSON \(.*\): write one JSON object per line"),
    "not-object": ("data.jsonl", f"{GOOD}\n{GOOD}\n[1, 2]\n", r"data.jsonl:3: expected a JSON object, got list"),
    "no-known-key": ("data.jsonl", '{"body": "x"}\n', r"data.jsonl:1: record has none of text, prompt/completion, messages \(keys: body\)"),
    "mixed-shapes": ("data.jsonl", '{"text": "a", "prompt": "b", "completion": "c"}\n', r"data.jsonl:1: record mixes text and prompt/completion"),
    "missing-completion": ("data.jsonl", '{"prompt": "q"}\n', r"data.jsonl:1: completion is missing"),
    "empty-text": ("data.jsonl", f'{GOOD}\n{{"text": "   "}}\n', r"data.jsonl:2: text is empty: fill it in or remove the record"),
    "text-not-string": ("data.jsonl", '{"text": 42}\n', r"data.jsonl:1: text must be a string, got int"),
    "bad-role": ("chat.jsonl", '{"messages": [{"role": "user", "content": "q"}, {"role": "bot", "content": "a"}]}\n',
                 r"chat.jsonl:1: messages\[1\] has role 'bot': use one of system, user, assistant"),
    "no-assistant": ("chat.jsonl", '{"messages": [{"role": "user", "content": "q"}]}\n', r"chat.jsonl:1: messages has no assistant turn"),
    "empty-messages": ("chat.jsonl", '{"messages": []}\n', r"chat.jsonl:1: messages must be a non-empty list"),
    "message-not-object": ("chat.jsonl", '{"messages": ["hi"]}\n', r"chat.jsonl:1: messages\[0\] must be an object with role and content"),
    "empty-content": ("chat.jsonl", '{"messages": [{"role": "user", "content": ""}, {"role": "assistant", "content": "a"}]}\n',
                      r"chat.jsonl:1: messages\[0\] content is empty"),
    "csv-header": ("table.csv", "question,answer\nq,a\n", r"table.csv:1: the header has no text column and no prompt and completion columns \(found: answer, question\)"),
    "csv-field-count": ("table.csv", "prompt,completion\nq,a\nq,a,extra\n", r"table.csv:3: row has 3 fields, the header has 2: quote fields that contain commas"),
    "csv-empty-prompt": ("table.csv", 'prompt,completion\n"two\nlines",a\n,a\n', r"table.csv:4: prompt is empty"),
    "empty-txt": ("empty.txt", "\n\n", r"empty.txt:1: the file is empty"),
    "empty-md": ("empty.md", "   \n", r"empty.md:1: the file is empty"),
}


def load(folder: Path) -> TextDataset:
    spec = DatasetSpec(sources=[DataSource(uri=folder.as_uri())])
    return load_text_dataset(spec, TextSpec(), work_dir=folder / ".work", options=SourceOptions(base_dir=folder), seed=1, log=LOG)


@pytest.mark.parametrize("case", sorted(CASES))
def test_error_names_file_and_line(case: str, tmp_path: Path) -> None:
    name, content, expected = CASES[case]
    (tmp_path / name).write_text(content, encoding="utf-8")
    (tmp_path / "other.txt").write_text("a valid file", encoding="utf-8")

    with pytest.raises(InvalidInputError, match=expected):
        load(tmp_path).raise_for_errors()


def test_invalid_utf8_names_line(tmp_path: Path) -> None:
    (tmp_path / "latin.txt").write_bytes(b"first line\nsecond line caf\xe9\n")

    with pytest.raises(InvalidInputError, match=r"latin.txt:2: invalid UTF-8 at byte 26: save the file as UTF-8"):
        load(tmp_path).raise_for_errors()


def test_every_error_reported_at_once(tmp_path: Path) -> None:
    (tmp_path / "a.jsonl").write_text('{"bad"\n{"text": ""}\n', encoding="utf-8")
    (tmp_path / "b.csv").write_text("nothing\n", encoding="utf-8")
    dataset = load(tmp_path)

    assert [str(error).split(":")[:2] for error in dataset.errors] == [["a.jsonl", "1"], ["a.jsonl", "2"], ["b.csv", "1"]]
    with pytest.raises(InvalidInputError, match=r"the dataset has 3 invalid records; fix them and run again"):
        dataset.raise_for_errors()


def test_long_error_list_is_cut(tmp_path: Path) -> None:
    (tmp_path / "many.jsonl").write_text("[]\n" * 25, encoding="utf-8")

    with pytest.raises(InvalidInputError, match=r"many.jsonl:20: .*\n  \.\.\. and 5 more \(dataset/manifest.jsonl lists every one\)"):
        load(tmp_path).raise_for_errors()


def test_invalid_file_report_lists_errors(tmp_path: Path) -> None:
    (tmp_path / "a.jsonl").write_text(f"{json.dumps({'text': 'ok'})}\n{{\n", encoding="utf-8")
    report = load(tmp_path).files[0]

    assert report.status == "invalid"
    assert report.records == 1
    assert report.errors[0].startswith("a.jsonl:2: invalid JSON")

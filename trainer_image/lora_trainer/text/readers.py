"""Readers of the dataset file formats: JSONL, CSV, plain text and Markdown.

Each reader returns the file's records and the errors it found, every error with its
line, so one pass reports every problem of a file.

- JSONL (``.jsonl``, ``.ndjson``): one JSON object a line, with ``text``, or ``prompt``
  and ``completion``, or ``messages`` (a list of ``{"role", "content"}``). Blank lines
  are skipped.
- CSV (``.csv``): a header row with a ``text`` column, or ``prompt`` and ``completion``
  columns; other columns are ignored.
- Plain text (``.txt``): the whole file is one ``text`` record.
- Markdown (``.md``, ``.markdown``): one ``text`` record per section; a heading of
  level 1 or 2 starts a section and stays in it.
"""

from __future__ import annotations

import csv
import io
import json
import re
from collections.abc import Callable, Iterator
from pathlib import PurePosixPath
from typing import Any

from lora_trainer.text.records import CHAT_ROLES, ChatMessage, RecordError, TextRecord

ReadResult = tuple[list[TextRecord], list[RecordError]]
SECTION_HEADING = re.compile(r"^#{1,2}\s")
FENCE = re.compile(r"^(```|~~~)")


def read_jsonl(name: str, content: str) -> ReadResult:
    records, errors = [], []
    for number, line in enumerate(content.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            value = json.loads(line)
        except json.JSONDecodeError as error:
            errors.append(RecordError(name, number, f"invalid JSON ({error.msg} at column {error.colno}): write one JSON object per line"))
            continue
        record = _record_from_object(value, name=name, line=number, errors=errors)
        if record is not None:
            records.append(record)
    return records, errors


def read_csv(name: str, content: str) -> ReadResult:
    pulled: list[tuple[int, str]] = []
    rows = csv.reader(_numbered_lines(content, pulled))
    header = next(rows, None)
    columns = set(header or [])
    if "text" not in columns and not {"prompt", "completion"} <= columns:
        found = ", ".join(sorted(columns)) or "none"
        message = f"the header has no text column and no prompt and completion columns (found: {found}): name the columns in the first row"
        return [], [RecordError(name, 1, message)]

    records, errors = [], []
    pulled.clear()
    for row in rows:
        if not row:
            pulled.clear()
            continue
        # A quoted field may span lines: the row starts at the first line read for it.
        line = pulled[0][0]
        pulled.clear()
        if len(row) != len(header):
            errors.append(RecordError(
                name, line, f"row has {len(row)} fields, the header has {len(header)}: quote fields that contain commas"
            ))
            continue
        record = _record_from_object(dict(zip(header, row)), name=name, line=line, errors=errors, columns=True)
        if record is not None:
            records.append(record)
    return records, errors


def _numbered_lines(content: str, pulled: list[tuple[int, str]]) -> Iterator[str]:
    for number, line in enumerate(io.StringIO(content, newline=""), start=1):
        pulled.append((number, line))
        yield line


def read_text(name: str, content: str) -> ReadResult:
    if not content.strip():
        return [], [RecordError(name, 1, "the file is empty: add text or remove the file")]
    return [TextRecord(kind="text", file=name, line=1, text=content.strip("\n"))], []


def read_markdown(name: str, content: str) -> ReadResult:
    if not content.strip():
        return [], [RecordError(name, 1, "the file is empty: add text or remove the file")]
    sections: list[tuple[int, list[str]]] = [(1, [])]
    in_fence = False
    for number, line in enumerate(content.splitlines(), start=1):
        if FENCE.match(line):
            in_fence = not in_fence
        # A '#' line inside a fenced code block is code, not a heading.
        if not in_fence and SECTION_HEADING.match(line) and any(text.strip() for text in sections[-1][1]):
            sections.append((number, []))
        sections[-1][1].append(line)
    records = []
    for start, lines in sections:
        text = "\n".join(lines).strip("\n")
        if text.strip():
            first_line = start + next(index for index, line in enumerate(lines) if line.strip())
            records.append(TextRecord(kind="text", file=name, line=first_line, text=text))
    return records, []


READERS: dict[str, Callable[[str, str], ReadResult]] = {
    ".jsonl": read_jsonl,
    ".ndjson": read_jsonl,
    ".csv": read_csv,
    ".txt": read_text,
    ".md": read_markdown,
    ".markdown": read_markdown,
}


def reader_for(name: str) -> Callable[[str, str], ReadResult] | None:
    """Return the reader of a file name by its extension (case-insensitive), or None when no reader supports it."""
    return READERS.get(PurePosixPath(name).suffix.lower())


def _record_from_object(
    value: Any, *, name: str, line: int, errors: list[RecordError], columns: bool = False
) -> TextRecord | None:
    """Build a record from a JSON object or CSV row; append an error and return None when it is invalid."""
    where = "columns" if columns else "keys"
    if not isinstance(value, dict):
        errors.append(RecordError(name, line, f"expected a JSON object, got {type(value).__name__}: write {{\"text\": ...}}"))
        return None
    shapes = [shape for shape, keys in (("text", ("text",)), ("prompt/completion", ("prompt", "completion")), ("messages", ("messages",)))
              if any(key in value for key in keys)]
    if len(shapes) != 1:
        found = ", ".join(sorted(value)) or "none"
        reason = "mixes " + " and ".join(shapes) if shapes else f"has none of text, prompt/completion, messages ({where}: {found})"
        errors.append(RecordError(name, line, f"record {reason}: give each record exactly one of them"))
        return None
    if shapes[0] == "messages":
        return _chat_record(value["messages"], name=name, line=line, errors=errors)
    if shapes[0] == "text":
        text = _string_field(value, "text", name=name, line=line, errors=errors)
        return TextRecord(kind="text", file=name, line=line, text=text) if text is not None else None
    prompt = _string_field(value, "prompt", name=name, line=line, errors=errors)
    completion = _string_field(value, "completion", name=name, line=line, errors=errors)
    if prompt is None or completion is None:
        return None
    return TextRecord(kind="prompt_completion", file=name, line=line, prompt=prompt, completion=completion)


def _string_field(value: dict, key: str, *, name: str, line: int, errors: list[RecordError]) -> str | None:
    if key not in value:
        errors.append(RecordError(name, line, f"{key} is missing: prompt and completion go together"))
        return None
    text = value[key]
    if not isinstance(text, str):
        errors.append(RecordError(name, line, f"{key} must be a string, got {type(text).__name__}"))
        return None
    if not text.strip():
        errors.append(RecordError(name, line, f"{key} is empty: fill it in or remove the record"))
        return None
    return text


def _chat_record(messages: Any, *, name: str, line: int, errors: list[RecordError]) -> TextRecord | None:
    if not isinstance(messages, list) or not messages:
        errors.append(RecordError(name, line, "messages must be a non-empty list of {\"role\", \"content\"} objects"))
        return None
    parsed = []
    for index, message in enumerate(messages):
        problem = _message_problem(message)
        if problem:
            errors.append(RecordError(name, line, f"messages[{index}] {problem}"))
            return None
        parsed.append(ChatMessage(role=message["role"], content=message["content"]))
    if not any(message.role == "assistant" for message in parsed):
        errors.append(RecordError(name, line, "messages has no assistant turn, so there is nothing to learn: add the assistant's answer"))
        return None
    return TextRecord(kind="chat", file=name, line=line, messages=parsed)


def _message_problem(message: Any) -> str:
    if not isinstance(message, dict):
        return f"must be an object with role and content, got {type(message).__name__}"
    role, content = message.get("role"), message.get("content")
    if role not in CHAT_ROLES:
        return f"has role {role!r}: use one of {', '.join(CHAT_ROLES)}"
    if not isinstance(content, str):
        return f"content must be a string, got {type(content).__name__}"
    if not content.strip():
        return "content is empty: fill it in or remove the message"
    return ""

"""The text dataset of a run: files read and validated, exact duplicates dropped, a train/eval split."""

from __future__ import annotations

import hashlib
import logging
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath

from lora_operator.api.training_spec import DatasetSpec, TextSpec
from lora_trainer.errors import InvalidInputError
from lora_trainer.sources import FetchedFile, SourceOptions
from lora_trainer.text.fetch import fetch_text_source
from lora_trainer.text.readers import reader_for
from lora_trainer.text.records import RecordError, TextRecord

# Errors listed in the message of an invalid dataset; the manifest lists all of them.
MAX_LISTED_ERRORS = 20


@dataclass
class FileReport:
    """Outcome of reading one dataset file, written as one line of dataset/manifest.jsonl."""

    name: str
    source_uri: str
    size: int
    sha256: str = ""
    format: str = ""
    status: str = "accepted"
    """accepted, skipped (with reason) or invalid (with errors)."""
    reason: str = ""
    records: int = 0
    duplicates: list[dict[str, object]] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)


@dataclass
class TextDataset:
    train: list[TextRecord]
    eval: list[TextRecord]
    files: list[FileReport]
    errors: list[RecordError]

    def raise_for_errors(self) -> None:
        """Raise InvalidInputError listing the invalid records by file and line, when there are any."""
        if not self.errors:
            return
        listed = "\n".join(f"  {error}" for error in self.errors[:MAX_LISTED_ERRORS])
        more = len(self.errors) - MAX_LISTED_ERRORS
        tail = f"\n  ... and {more} more (dataset/manifest.jsonl lists every one)" if more > 0 else ""
        raise InvalidInputError(f"the dataset has {len(self.errors)} invalid records; fix them and run again:\n{listed}{tail}")

    def fingerprint(self) -> str:
        """Return a sha256 of the train and eval records' content, in order."""
        digest = hashlib.sha256()
        for part, records in (("train", self.train), ("eval", self.eval)):
            digest.update(part.encode())
            for record in records:
                digest.update(record.content_key().encode())
        return digest.hexdigest()


def load_text_dataset(
    dataset: DatasetSpec, text: TextSpec, *, work_dir: Path, options: SourceOptions, seed: int, log: logging.Logger
) -> TextDataset:
    """Fetch, read and validate every source; drop duplicates and split off the eval records."""
    records: list[TextRecord] = []
    reports: list[FileReport] = []
    errors: list[RecordError] = []
    for index, source in enumerate(dataset.sources):
        files = fetch_text_source(source, destination=work_dir / f"source-{index:02d}", options=options)
        for fetched in files:
            report, file_records, file_errors = read_file(fetched, max_bytes=dataset.max_file_bytes)
            reports.append(report)
            records.extend(file_records)
            errors.extend(file_errors)
    if text.deduplicate:
        records = drop_duplicates(records, reports)
    if not errors and not records:
        raise InvalidInputError("the dataset has no records: every file was skipped or empty; see dataset/manifest.jsonl")
    train, held_out = split_records(records, fraction=text.eval_fraction, seed=seed)
    log.info("text dataset: %d files, %d train and %d eval records, %d invalid", len(reports), len(train), len(held_out), len(errors))
    return TextDataset(train=train, eval=held_out, files=reports, errors=errors)


def read_file(fetched: FetchedFile, *, max_bytes: int) -> tuple[FileReport, list[TextRecord], list[RecordError]]:
    """Read one fetched file into records; a file that cannot be read is skipped with the reason."""
    report = FileReport(name=fetched.name, source_uri=fetched.source_uri, size=fetched.size_bytes,
                        format=PurePosixPath(fetched.name).suffix.lower().lstrip("."))
    if fetched.skip_reason or fetched.path is None:
        report.status, report.reason = "skipped", fetched.skip_reason or "not fetched"
        return report, [], []
    if fetched.size_bytes > max_bytes:
        report.status = "skipped"
        report.reason = f"file too large ({fetched.size_bytes} bytes; dataset.maxFileBytes is {max_bytes})"
        return report, [], []
    data = fetched.path.read_bytes()
    report.sha256 = hashlib.sha256(data).hexdigest()
    try:
        content = data.decode("utf-8-sig")
    except UnicodeDecodeError as error:
        line = data[: error.start].count(b"\n") + 1
        problem = RecordError(fetched.name, line, f"invalid UTF-8 at byte {error.start}: save the file as UTF-8")
        report.status, report.errors = "invalid", [str(problem)]
        return report, [], [problem]
    records, errors = reader_for(fetched.name)(fetched.name, content)
    report.records = len(records)
    if errors:
        report.status, report.errors = "invalid", [str(error) for error in errors]
    return report, records, errors


def drop_duplicates(records: list[TextRecord], reports: list[FileReport]) -> list[TextRecord]:
    """Keep the first of each set of identical records; note each dropped one in its file's report."""
    first_seen: dict[str, TextRecord] = {}
    by_name = {report.name: report for report in reports}
    kept = []
    for record in records:
        key = record.content_key()
        original = first_seen.get(key)
        if original is None:
            first_seen[key] = record
            kept.append(record)
            continue
        by_name[record.file].duplicates.append({"line": record.line, "duplicateOf": original.location()})
    return kept


def split_records(records: list[TextRecord], *, fraction: float, seed: int) -> tuple[list[TextRecord], list[TextRecord]]:
    """Hold out round(fraction x count) records (at least 1 when fraction > 0, at most count - 1) for evaluation.

    The held-out records are those with the smallest sha256 of (seed, content), so the split
    does not depend on file order and the same seed and data give the same split.
    """
    if fraction <= 0 or len(records) < 2:
        return list(records), []
    count = min(max(1, round(fraction * len(records))), len(records) - 1)
    ranked = sorted(range(len(records)), key=lambda index: _split_rank(records[index], seed))
    held_out = set(ranked[:count])
    train = [record for index, record in enumerate(records) if index not in held_out]
    return train, [records[index] for index in sorted(held_out)]


def _split_rank(record: TextRecord, seed: int) -> str:
    return hashlib.sha256(f"{seed}:{record.content_key()}".encode()).hexdigest()

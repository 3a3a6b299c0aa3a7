"""dataset/manifest.jsonl of a text run: one line per file, then one summary line.

File lines (``"type": "file"``) carry the file's name, source, sha256, size, status
(accepted, skipped with a reason, or invalid with its errors by line), record count,
dropped duplicates, token-length statistics and the lines of over-long records. The
summary line (``"type": "summary"``) carries the split, the length policy and the
statistics of the whole dataset.
"""

from __future__ import annotations

import json
from collections import defaultdict
from typing import Any

from lora_operator.api.training_spec import TextSpec
from lora_trainer.storage import ArtifactStore
from lora_trainer.text.dataset import TextDataset
from lora_trainer.text.samples import TokenizedDataset, token_statistics

MANIFEST_KEY = "dataset/manifest.jsonl"
# Record lines listed per file and outcome; the counts are always complete.
MAX_LISTED_LINES = 100


def write_text_manifest(
    store: ArtifactStore, dataset: TextDataset, tokenized: TokenizedDataset | None, *, text: TextSpec, chat_template_origin: str
) -> dict[str, Any]:
    """Write the manifest; return its summary line. ``tokenized`` is None when validation failed before tokenising."""
    lines = [_file_line(report, tokenized) for report in dataset.files]
    summary = _summary(dataset, tokenized, text=text, chat_template_origin=chat_template_origin)
    lines.append(summary)
    data = "".join(json.dumps(line, ensure_ascii=False) + "\n" for line in lines).encode("utf-8")
    store.put_bytes(MANIFEST_KEY, data, content_type="application/x-ndjson")
    return summary


def _file_line(report, tokenized: TokenizedDataset | None) -> dict[str, Any]:  # noqa: ANN001 - FileReport
    line: dict[str, Any] = {
        "type": "file",
        "name": report.name,
        "source": report.source_uri,
        "sha256": report.sha256,
        "size": report.size,
        "format": report.format,
        "status": report.status,
        "records": report.records,
    }
    if report.reason:
        line["reason"] = report.reason
    if report.errors:
        line["errors"] = report.errors
    if report.duplicates:
        line["duplicates"] = len(report.duplicates)
        line["duplicateLines"] = report.duplicates[:MAX_LISTED_LINES]
    if tokenized is not None:
        records = [record for record in tokenized.records if record.record.file == report.name]
        line["tokens"] = token_statistics([record.tokens for record in records])
        by_outcome: dict[str, list[int]] = defaultdict(list)
        for record in records:
            if record.outcome != "fits":
                by_outcome[record.outcome].append(record.record.line)
        for outcome, numbers in sorted(by_outcome.items()):
            line[outcome] = len(numbers)
            line[f"{outcome}Lines"] = numbers[:MAX_LISTED_LINES]
    return line


def _summary(dataset: TextDataset, tokenized: TokenizedDataset | None, *, text: TextSpec, chat_template_origin: str) -> dict[str, Any]:
    summary: dict[str, Any] = {
        "type": "summary",
        "files": len(dataset.files),
        "invalidRecords": len(dataset.errors),
        "duplicates": sum(len(report.duplicates) for report in dataset.files),
        "trainRecords": len(dataset.train),
        "evalRecords": len(dataset.eval),
        "recordKinds": _kinds(dataset),
        "maxSeqLength": text.max_seq_length,
        "overlong": text.overlong,
        "packing": text.packing,
        "completionOnlyLoss": text.completion_only_loss,
        "chatTemplate": chat_template_origin,
    }
    if tokenized is not None:
        summary["outcomes"] = tokenized.outcomes()
        summary["tokens"] = token_statistics([record.tokens for record in tokenized.records])
        summary["trainSamples"] = len(tokenized.train)
        summary["evalSamples"] = len(tokenized.eval)
        summary["trainedTokens"] = sum(sample.trained_tokens() for sample in tokenized.train)
    return summary


def _kinds(dataset: TextDataset) -> dict[str, int]:
    counts: dict[str, int] = defaultdict(int)
    for record in dataset.train + dataset.eval:
        counts[record.kind] += 1
    return dict(counts)

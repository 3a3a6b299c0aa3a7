"""The dataset manifest (one JSON line per input file), metadata.csv and the dataset hash."""

from __future__ import annotations

import csv
import hashlib
import io
import json
from collections import Counter
from dataclasses import dataclass
from typing import Any

from lora_trainer.data.records import ImageRecord
from lora_trainer.storage import ArtifactStore

MANIFEST_KEY = "dataset/manifest.jsonl"
METADATA_KEY = "dataset/metadata.csv"


@dataclass(frozen=True)
class DatasetSummary:
    """Counts of accepted and skipped files, with the skipped ones grouped by cause."""

    accepted: int
    skipped: int
    skipped_by_cause: dict[str, int]

    def describe(self) -> str:
        """Return one line such as '17 accepted, 3 skipped (2 not an image, 1 empty file)'."""
        line = f"{self.accepted} accepted, {self.skipped} skipped"
        if self.skipped_by_cause:
            causes = ", ".join(f"{count} {cause}" for cause, count in self.skipped_by_cause.items())
            line += f" ({causes})"
        return line


def manifest_entry(record: ImageRecord) -> dict[str, Any]:
    """Return the manifest line of one record, with camelCase keys like the rest of the API."""
    return {
        "name": record.name,
        "sha256": record.sha256,
        "size": record.size_bytes,
        "status": record.status,
        "reason": record.reason,
        "duplicateOf": record.duplicate_of,
        "caption": record.caption,
        "captionSource": record.caption_source,
        "tags": [[tag, round(probability, 6)] for tag, probability in record.tags],
        "bucket": list(record.bucket) if record.bucket else None,
        "originalSize": list(record.original_size) if record.original_size else None,
        "warnings": list(record.warnings),
    }


def render_manifest(records: list[ImageRecord]) -> str:
    """Return the manifest text: one JSON object per line, non-ASCII kept as is."""
    return "".join(json.dumps(manifest_entry(record), ensure_ascii=False) + "\n" for record in records)


def render_metadata_csv(records: list[ImageRecord]) -> str:
    """Return metadata.csv: the header 'filename,prompt' and one row per accepted file."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(["filename", "prompt"])
    for record in records:
        if record.accepted:
            writer.writerow([record.name, record.caption])
    return buffer.getvalue()


def write_manifest(records: list[ImageRecord], store: ArtifactStore) -> None:
    """Write dataset/manifest.jsonl and dataset/metadata.csv (UTF-8) to the run's store."""
    manifest = render_manifest(records).encode("utf-8")
    metadata = render_metadata_csv(records).encode("utf-8")
    store.put_bytes(MANIFEST_KEY, manifest, content_type="application/jsonl; charset=utf-8")
    store.put_bytes(METADATA_KEY, metadata, content_type="text/csv; charset=utf-8")


def dataset_hash(records: list[ImageRecord]) -> str:
    """Return the sha256 over the sorted sha256s of the accepted files.

    It depends only on the bytes of the accepted files, not on their names, order or
    source, so two runs on the same images share it.
    """
    digest = hashlib.sha256()
    for sha in sorted(record.sha256 for record in records if record.accepted):
        digest.update(sha.encode("ascii"))
        digest.update(b"\n")
    return digest.hexdigest()


def skip_cause(record: ImageRecord) -> str:
    """Return the cause of a skip reason 'NAME: CAUSE (DETAIL)', or '' for an accepted record."""
    if record.accepted:
        return ""
    cause = record.reason.removeprefix(f"{record.name}: ")
    return cause.split(" (", 1)[0].strip()


def summarize(records: list[ImageRecord]) -> DatasetSummary:
    """Count accepted and skipped files; causes are ordered from the most frequent."""
    causes = Counter(skip_cause(record) for record in records if not record.accepted)
    return DatasetSummary(
        accepted=sum(1 for record in records if record.accepted),
        skipped=sum(causes.values()),
        skipped_by_cause=dict(causes.most_common()),
    )

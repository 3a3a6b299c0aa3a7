"""dataset/manifest.jsonl, dataset/metadata.csv, the dataset hash and the summary."""

from __future__ import annotations

import csv
import dataclasses
import hashlib
import io
import json
import shutil
from pathlib import Path

import pytest
from lora_operator.api.training_spec import DatasetSpec

from lora_trainer.data.manifest import dataset_hash, summarize, write_manifest
from lora_trainer.data.prepare import prepare_image_dataset
from lora_trainer.data.records import ImageRecord
from lora_trainer.storage import LocalStore
from tests.datasets import BAD_IMAGES_DIR

pytestmark = pytest.mark.unit

NON_ASCII_NAME = "雨夜城市 01.png"
CAPTION = 'rain at night, "neon" city'
FILES = [NON_ASCII_NAME, "duplicate-a.png", "duplicate-b.png", "zero-bytes.png", "tiny-8x8.png"]


@pytest.fixture
def prepared(tmp_path: Path) -> tuple[list[ImageRecord], Path]:
    """Records of a small folder with a captioned non-ASCII name, a duplicate and two bad files."""
    folder = tmp_path / "data"
    folder.mkdir()
    for name in FILES:
        shutil.copy(BAD_IMAGES_DIR / name, folder / name)
    (folder / "雨夜城市 01.txt").write_text(CAPTION, encoding="utf-8")
    spec = DatasetSpec(sources=[{"uri": folder.as_uri()}], resolution=64)
    records = prepare_image_dataset(spec, work_dir=tmp_path / "work", base_dir=tmp_path)
    return records, folder


@pytest.fixture
def run_store(tmp_path: Path) -> LocalStore:
    return LocalStore(tmp_path / "run")


def read_manifest(store: LocalStore) -> list[dict]:
    text = (store.root / "dataset" / "manifest.jsonl").read_text(encoding="utf-8")
    return [json.loads(line) for line in text.splitlines()]


def test_manifest_has_every_file(prepared, run_store: LocalStore) -> None:
    records, _ = prepared

    write_manifest(records, run_store)
    entries = read_manifest(run_store)

    assert [entry["name"] for entry in entries] == sorted(FILES)
    assert [entry["status"] for entry in entries] == ["accepted", "skipped", "skipped", "skipped", "accepted"]


def test_manifest_keeps_non_ascii(prepared, run_store: LocalStore) -> None:
    records, _ = prepared

    write_manifest(records, run_store)
    raw = (run_store.root / "dataset" / "manifest.jsonl").read_text(encoding="utf-8")

    assert NON_ASCII_NAME in raw
    assert "\\u" not in raw


def test_manifest_accepted_entry(prepared, run_store: LocalStore) -> None:
    records, folder = prepared

    write_manifest(records, run_store)
    entry = next(entry for entry in read_manifest(run_store) if entry["name"] == NON_ASCII_NAME)
    raw = (folder / NON_ASCII_NAME).read_bytes()

    assert entry["sha256"] == hashlib.sha256(raw).hexdigest()
    assert entry["size"] == len(raw)
    assert entry["caption"] == CAPTION
    assert entry["captionSource"] == "sidecar"
    assert entry["originalSize"] == [320, 240]
    assert entry["bucket"] == [72, 56]
    assert entry["reason"] == ""
    assert entry["duplicateOf"] == ""
    assert entry["tags"] == []


def test_manifest_skipped_entries(prepared, run_store: LocalStore) -> None:
    records, _ = prepared

    write_manifest(records, run_store)
    entries = {entry["name"]: entry for entry in read_manifest(run_store)}

    assert entries["duplicate-b.png"]["duplicateOf"] == "duplicate-a.png"
    assert entries["zero-bytes.png"]["reason"] == "zero-bytes.png: empty file"
    assert entries["tiny-8x8.png"]["reason"].startswith("tiny-8x8.png: smaller than the minimum side")
    assert entries["tiny-8x8.png"]["bucket"] is None


def test_metadata_csv_lists_accepted(prepared, run_store: LocalStore) -> None:
    records, _ = prepared

    write_manifest(records, run_store)
    text = (run_store.root / "dataset" / "metadata.csv").read_bytes().decode("utf-8")
    rows = list(csv.reader(io.StringIO(text)))

    assert rows == [["filename", "prompt"], ["duplicate-a.png", ""], [NON_ASCII_NAME, CAPTION]]
    assert '"rain at night, ""neon"" city"' in text


def test_dataset_hash_ignores_order(prepared) -> None:
    records, _ = prepared

    assert dataset_hash(records) == dataset_hash(list(reversed(records)))


def test_dataset_hash_ignores_skipped(prepared) -> None:
    records, _ = prepared
    accepted = [record for record in records if record.accepted]

    assert dataset_hash(records) == dataset_hash(accepted)


def test_dataset_hash_follows_bytes(prepared) -> None:
    records, _ = prepared
    changed = [dataclasses.replace(record, warnings=list(record.warnings)) for record in records]
    first_accepted = next(record for record in changed if record.accepted)
    first_accepted.sha256 = "f" * 64

    assert dataset_hash(changed) != dataset_hash(records)


def test_summary_counts_causes(prepared) -> None:
    records, _ = prepared

    summary = summarize(records)

    assert summary.accepted == 2
    assert summary.skipped == 3
    assert summary.skipped_by_cause == {"duplicate": 1, "empty file": 1, "smaller than the minimum side": 1}
    assert summary.describe().startswith("2 accepted, 3 skipped (")

"""Text files from s3:// sources against the SeaweedFS S3 server: selection, size limit and records."""

from __future__ import annotations

import io
import json
from pathlib import Path

import pytest

from lora_operator.api.training_spec import DatasetSpec, DataSource, TextSpec
from lora_trainer.errors import InvalidInputError
from lora_trainer.sources import SourceOptions
from lora_trainer.text.dataset import load_text_dataset
from lora_trainer.text.fetch import fetch_text_source

from .builders import LOG

pytestmark = pytest.mark.s3


@pytest.fixture
def bucket(s3, s3_bucket: str, monkeypatch: pytest.MonkeyPatch) -> str:
    """A bucket with texts/ (JSONL, Markdown, a PNG, a large text file) and photos/ (only a PNG)."""
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", s3.access_key)
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", s3.secret_key)
    client = s3.client()
    objects = {
        "texts/chat.jsonl": (json.dumps({"prompt": "Open?", "completion": "Until six."}) + "\n").encode(),
        "texts/notes/guide.md": b"# Tone\nWarm.\n",
        "texts/photo.png": b"\x89PNG\r\n\x1a\n",
        "texts/big.txt": b"x" * 4096,
        "photos/photo.png": b"\x89PNG\r\n\x1a\n",
    }
    for key, data in objects.items():
        client.put_object(s3_bucket, key, io.BytesIO(data), len(data))
    return s3_bucket


def options(s3, tmp_path: Path, *, max_file_bytes: int = 1 << 20) -> SourceOptions:
    return SourceOptions(base_dir=tmp_path, s3_endpoint=s3.endpoint, s3_secure=s3.secure, max_file_bytes=max_file_bytes)


def test_prefix_downloads_text_files(s3, bucket: str, tmp_path: Path) -> None:
    files = fetch_text_source(DataSource(uri=f"s3://{bucket}/texts"), destination=tmp_path / "d", options=options(s3, tmp_path))

    assert sorted(file.name for file in files) == ["big.txt", "chat.jsonl", "notes/guide.md"]
    assert (tmp_path / "d" / "notes" / "guide.md").read_text(encoding="utf-8") == "# Tone\nWarm.\n"


def test_large_object_skipped(s3, bucket: str, tmp_path: Path) -> None:
    source = DataSource(uri=f"s3://{bucket}/texts", include=["*.txt"])
    files = fetch_text_source(source, destination=tmp_path / "d", options=options(s3, tmp_path, max_file_bytes=1024))

    assert [file.name for file in files] == ["big.txt"]
    assert "dataset.maxFileBytes is 1024" in files[0].skip_reason


def test_prefix_without_text_rejected(s3, bucket: str, tmp_path: Path) -> None:
    with pytest.raises(InvalidInputError, match=rf"source s3://{bucket}/photos contains no text file"):
        fetch_text_source(DataSource(uri=f"s3://{bucket}/photos"), destination=tmp_path / "d", options=options(s3, tmp_path))


def test_records_from_bucket(s3, bucket: str, tmp_path: Path) -> None:
    spec = DatasetSpec(sources=[DataSource(uri=f"s3://{bucket}/texts", include=["*.jsonl", "*.md"])])
    dataset = load_text_dataset(spec, TextSpec(eval_fraction=0.0), work_dir=tmp_path, options=options(s3, tmp_path), seed=1, log=LOG)

    assert sorted((record.kind, record.file) for record in dataset.train) == [
        ("prompt_completion", "chat.jsonl"), ("text", "notes/guide.md")
    ]

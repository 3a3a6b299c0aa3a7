"""Trainings of local mode: one state file per claimed row, run one after another.

The state folder contains ``PAGE.json`` per row (the LoRATraining manifest, when it was
claimed, and the phase whose write-back is done) and the sync watermark. A row's state
file plays the part of the page-id label in the cluster: sync finds it before creating a
run, so a restart after a crash never runs a row twice.
"""

from __future__ import annotations

import json
import os
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from lora_operator.api.training_spec import LoRATrainingSpec
from lora_operator.notion import keys
from lora_operator.notion.mapping import DATASET_FOLDER
from lora_trainer.storage import ArtifactStore, open_store


@dataclass(frozen=True)
class LocalRow:
    """A claimed row and its training manifest."""

    page_hex: str
    manifest: dict[str, Any]
    claimed_at: float
    reported: str


class LocalSink:
    """Claimed rows in a state folder; their images under OUTPUT/NAMESPACE/NAME/notion-dataset/."""

    def __init__(self, state_dir: Path, *, output: str, s3_endpoint: str = "", s3_secure: bool = True) -> None:
        self.state_dir = state_dir
        self.output = output.rstrip("/")
        self.s3_endpoint = s3_endpoint
        self.s3_secure = s3_secure
        state_dir.mkdir(parents=True, exist_ok=True)

    def find(self, namespace: str, page_hex: str) -> str | None:
        state = self._read(page_hex)
        return state["manifest"]["metadata"]["name"] if state else None

    def dataset_uri(self, spec: LoRATrainingSpec, namespace: str, name: str) -> str:
        return f"{self.output}/{namespace}/{name}/{DATASET_FOLDER}"

    def open_dataset(self, uri: str) -> ArtifactStore:
        return open_store(uri, endpoint=self.s3_endpoint, secure=self.s3_secure)

    def create(self, manifest: dict[str, Any]) -> None:
        page_hex = manifest["metadata"]["labels"][keys.LABEL_PAGE]
        if self._read(page_hex) is None:
            self._write(page_hex, {"manifest": manifest, "claimedAt": time.time(), "reported": ""})

    def pending(self) -> list[LocalRow]:
        """Rows whose run has not reported its end, oldest claim first."""
        rows = []
        for path in self.state_dir.glob("*.json"):
            state = json.loads(path.read_text(encoding="utf-8"))
            if state["reported"] not in ("Succeeded", "Failed"):
                rows.append(LocalRow(page_hex=path.stem, manifest=state["manifest"],
                                     claimed_at=state["claimedAt"], reported=state["reported"]))
        return sorted(rows, key=lambda row: row.claimed_at)

    def mark_reported(self, page_hex: str, phase: str) -> None:
        state = self._read(page_hex)
        if state is not None:
            self._write(page_hex, {**state, "reported": phase})

    def read_watermark(self) -> str:
        path = self.state_dir / "watermark"
        return path.read_text(encoding="utf-8").strip() if path.is_file() else ""

    def write_watermark(self, watermark: str) -> None:
        _write_atomic(self.state_dir / "watermark", watermark)

    def _read(self, page_hex: str) -> dict[str, Any] | None:
        path = self.state_dir / f"{page_hex}.json"
        return json.loads(path.read_text(encoding="utf-8")) if path.is_file() else None

    def _write(self, page_hex: str, state: dict[str, Any]) -> None:
        _write_atomic(self.state_dir / f"{page_hex}.json", json.dumps(state, ensure_ascii=False, indent=1))


def _write_atomic(path: Path, text: str) -> None:
    with tempfile.NamedTemporaryFile("w", dir=path.parent, prefix=f".{path.name}.", delete=False, encoding="utf-8") as handle:
        handle.write(text)
    os.replace(handle.name, path)

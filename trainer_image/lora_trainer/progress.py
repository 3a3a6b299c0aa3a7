"""progress.json: the only channel from the trainer to the operator.

The trainer rewrites the whole object, at most every ``interval_seconds`` unless a phase
changes, so a reader always sees one consistent snapshot.
"""

from __future__ import annotations

import json
import time
from datetime import datetime, timezone
from typing import Any, Literal

from lora_trainer.storage import ArtifactStore

PROGRESS_SCHEMA_VERSION = 1
PROGRESS_KEY = "progress.json"
Phase = Literal["preparing", "captioning", "training", "exporting", "done", "failed"]


class ProgressReporter:
    """Keeps the latest progress and writes it to the store, throttled."""

    def __init__(self, store: ArtifactStore, *, attempt: int, interval_seconds: float = 5.0, enabled: bool = True) -> None:
        self.store = store
        self.enabled = enabled
        """False in the training processes other than the main one, which write nothing."""
        self.interval_seconds = interval_seconds
        self.state: dict[str, Any] = {
            "schemaVersion": PROGRESS_SCHEMA_VERSION,
            "attempt": attempt,
            "phase": "preparing",
            "step": 0,
            "totalSteps": 0,
            "epoch": 0,
            "loss": None,
            "lossEma": None,
            "learningRate": None,
            "samplesPerSecond": None,
            "etaSeconds": None,
            "previews": [],
            "message": "",
            "updatedAt": "",
        }
        self._last_write = 0.0

    def update(self, *, force: bool = False, **fields: Any) -> None:
        """Merge ``fields`` (camelCase keys) and write when due, when forced, or when the phase changes."""
        phase_changed = "phase" in fields and fields["phase"] != self.state["phase"]
        self.state.update(fields)
        due = time.monotonic() - self._last_write >= self.interval_seconds
        if force or phase_changed or due:
            self.flush()

    def flush(self) -> None:
        """Write the current state now."""
        if not self.enabled:
            return
        self.state["updatedAt"] = datetime.now(timezone.utc).isoformat(timespec="seconds")
        data = json.dumps(self.state, ensure_ascii=False, allow_nan=False).encode("utf-8")
        self.store.put_bytes(PROGRESS_KEY, data, content_type="application/json")
        self._last_write = time.monotonic()

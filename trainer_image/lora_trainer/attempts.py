"""attempts.json: the history of attempts of one run, kept in the run folder across retries."""

from __future__ import annotations

import json
from datetime import datetime, timezone
from typing import Any

from lora_trainer.storage import ArtifactStore

ATTEMPTS_KEY = "attempts.json"


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


class AttemptLog:
    """Appends one entry per attempt: when it started and ended, and how."""

    def __init__(self, store: ArtifactStore) -> None:
        self.store = store
        raw = store.get_bytes(ATTEMPTS_KEY)
        self._entries: list[dict[str, Any]] = json.loads(raw) if raw else []

    def entries(self) -> list[dict[str, Any]]:
        return list(self._entries)

    def start(self, attempt: int) -> None:
        self._entries.append({"attempt": attempt, "startedAt": _now(), "outcome": "running"})
        self._save()

    def finish(self, attempt: int, *, outcome: str, message: str = "") -> None:
        for entry in reversed(self._entries):
            if entry["attempt"] == attempt:
                entry.update(endedAt=_now(), outcome=outcome, message=message[:2000])
                break
        self._save()

    def _save(self) -> None:
        self.store.put_bytes(ATTEMPTS_KEY, json.dumps(self._entries, indent=2).encode(), content_type="application/json")

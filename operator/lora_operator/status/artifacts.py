"""Read what the trainer left in the run folder: artifact URIs from run.json, and its last message."""

from __future__ import annotations

import json
from typing import Any

from lora_trainer.storage import ArtifactStore

MAX_PREVIEWS_IN_STATUS = 8


def read_artifacts(store: ArtifactStore) -> dict[str, Any]:
    """Return status.artifacts: s3:// URIs of the weights, previews, loss plot, config and summary."""
    raw = store.get_bytes("run.json")
    summary = json.loads(raw) if raw else {}
    listed = summary.get("artifacts") or {}
    weights = {name: store.uri(entry["key"]) for name, entry in (listed.get("weights") or {}).items()}
    previews = [store.uri(key) for key in (listed.get("previews") or [])][-MAX_PREVIEWS_IN_STATUS:]
    return {
        "root": store.uri(),
        "weights": weights,
        "previews": previews,
        "lossPlot": store.uri(listed.get("lossPlot", "loss.png")),
        "config": store.uri("config.yaml"),
        "summary": store.uri("run.json") if raw else "",
    }


def read_progress(store: ArtifactStore) -> dict[str, Any] | None:
    """Return progress.json, or None when the trainer has not written it yet or it is unreadable."""
    raw = store.get_bytes("progress.json")
    if raw is None:
        return None
    try:
        return json.loads(raw)
    except json.JSONDecodeError:
        return None


def read_trainer_message(store: ArtifactStore) -> str:
    """Return the trainer's own failure message from progress.json, or an empty string."""
    try:
        progress = read_progress(store)
    except OSError:
        return ""
    if not progress or progress.get("phase") != "failed":
        return ""
    return str(progress.get("message", ""))[:1000]

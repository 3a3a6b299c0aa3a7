"""Copy the trainer's progress.json into status.progress of running trainings, only when it changed."""

from __future__ import annotations

from typing import Any

from lora_trainer.storage import ArtifactStore
from lora_operator.status.artifacts import read_progress


def progress_status(progress: dict[str, Any]) -> dict[str, Any]:
    """Map a progress.json object onto status.progress."""
    step = int(progress.get("step") or 0)
    total = int(progress.get("totalSteps") or 0)
    loss = progress.get("lossEma")
    if loss is None:
        loss = progress.get("loss")
    eta = progress.get("etaSeconds")
    return {
        "step": step,
        "totalSteps": total,
        "epoch": int(progress.get("epoch") or 0),
        "percent": round(100.0 * step / total, 1) if total else 0.0,
        "loss": None if loss is None else round(float(loss), 5),
        "etaSeconds": None if eta is None else int(eta),
        "updatedAt": progress.get("updatedAt", ""),
    }


def changed_progress(store: ArtifactStore, current: dict[str, Any] | None) -> dict[str, Any] | None:
    """Return the new status.progress when progress.json moved on, else None (nothing to write)."""
    progress = read_progress(store)
    if progress is None:
        return None
    new = progress_status(progress)
    comparable = {key: value for key, value in new.items() if key != "updatedAt"}
    old = {key: value for key, value in (current or {}).items() if key != "updatedAt"}
    return None if comparable == old else new

"""The row view of a LoRATraining, read from the resource's labels, annotations and status."""

from __future__ import annotations

from typing import Any

from lora_operator.notion import keys
from lora_operator.notion.writeback import RunView


def view_from_training(body: dict[str, Any]) -> RunView | None:
    """Return the RunView of a training created from a Notion row, or None for other trainings."""
    metadata = body.get("metadata") or {}
    annotations = metadata.get("annotations") or {}
    page = (metadata.get("labels") or {}).get(keys.LABEL_PAGE)
    if not page:
        return None

    status = body.get("status") or {}
    phase = status.get("phase") or "Pending"
    if phase in ("Pending", "Queued") and status.get("startTime"):
        # Started before: a retry waits for its next attempt, or the pod ended before its Job
        # completed. The row keeps showing the training instead of flipping back to queued.
        phase = "Running"
    progress = status.get("progress") or {}
    started = bool(progress.get("totalSteps")) or phase in ("Running", "Succeeded", "Failed")

    weights = (status.get("artifacts") or {}).get("weights") or {}
    percent = float(progress.get("percent") or 0.0) if started else None
    if phase == "Succeeded":
        percent = 100.0  # A run without progress.json (no steps reported) has still finished.
    return RunView(
        page_id=page,
        title=annotations.get(keys.ANNOTATION_TITLE, metadata.get("name", "")),
        creator_id=annotations.get(keys.ANNOTATION_CREATOR, ""),
        namespace=metadata.get("namespace", ""),
        name=metadata.get("name", ""),
        phase=phase,
        message=status.get("message", ""),
        percent=percent,
        loss=progress.get("loss"),
        epoch=progress.get("epoch") if started else None,
        # Image runs export kohya and diffusers files; text runs a peft adapter.
        weights_uri=weights.get("kohya") or weights.get("diffusers") or weights.get("peft") or "",
        preview_uris=tuple((status.get("artifacts") or {}).get("previews") or ()),
        failure_reason=_failure_reason(status) if phase == "Failed" else "",
    )


def _failure_reason(status: dict[str, Any]) -> str:
    for condition in status.get("conditions") or []:
        if condition.get("type") == "Failed" and condition.get("status") == "True":
            return condition.get("reason") or ""
    return ""

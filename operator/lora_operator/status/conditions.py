"""Conditions of a training, derived from its phase, with Kubernetes' transition-time semantics."""

from __future__ import annotations

from typing import Any

from lora_operator.kube import now_rfc3339

# The condition that is True in each phase; the others are False. Valid is handled apart.
PHASE_CONDITION = {
    "Queued": "Queued",
    "Running": "Running",
    "Succeeded": "Complete",
    "Failed": "Failed",
    "Suspended": "Suspended",
}
CONDITION_TYPES = ("Valid", "Queued", "Running", "Complete", "Failed", "Suspended")


def set_condition(
    conditions: list[dict[str, Any]],
    *,
    condition_type: str,
    status: str,
    reason: str,
    message: str,
    generation: int,
) -> list[dict[str, Any]]:
    """Return ``conditions`` with one condition set; lastTransitionTime moves only when status changes."""
    previous = next((item for item in conditions if item["type"] == condition_type), None)
    transition = now_rfc3339() if previous is None or previous["status"] != status else previous["lastTransitionTime"]
    updated = {
        "type": condition_type,
        "status": status,
        "reason": reason,
        "message": message,
        "lastTransitionTime": transition,
        "observedGeneration": generation,
    }
    return [item for item in conditions if item["type"] != condition_type] + [updated]


def conditions_for_phase(
    conditions: list[dict[str, Any]], *, phase: str, reason: str, message: str, generation: int, valid: bool = True
) -> list[dict[str, Any]]:
    """Set every condition from the phase: the phase's own condition True, the rest False."""
    result = set_condition(
        conditions, condition_type="Valid", status="True" if valid else "False",
        reason="SpecValid" if valid else reason, message="" if valid else message, generation=generation,
    )
    active = PHASE_CONDITION.get(phase)
    for condition_type in CONDITION_TYPES[1:]:
        is_active = condition_type == active
        result = set_condition(
            result, condition_type=condition_type, status="True" if is_active else "False",
            reason=reason if is_active else f"Phase{phase}", message=message if is_active else "",
            generation=generation,
        )
    return sorted(result, key=lambda item: CONDITION_TYPES.index(item["type"]) if item["type"] in CONDITION_TYPES else 99)

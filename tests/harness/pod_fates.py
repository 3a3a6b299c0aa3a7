"""Pod annotations that tell the kwok stages in kwok_stages.yaml how a pod on a fake node ends.

A pod without FATE runs until it is deleted.
"""

from __future__ import annotations

from enum import Enum

FATE = "test.lora-operator.io/fate"
FATE_AFTER = "test.lora-operator.io/fate-after"
EXIT_CODE = "test.lora-operator.io/exit-code"


class Fate(str, Enum):
    SUCCEED = "succeed"
    """All containers exit 0 and the pod Succeeds."""

    FAIL = "fail"
    """All containers exit with EXIT_CODE (default 1), reason Error, and the pod Fails."""

    OOM_KILL = "oom-kill"
    """All containers end with exit code 137, reason OOMKilled, and the pod Fails."""

    DISRUPT = "disrupt"
    """The pod gets the DisruptionTarget condition, then Fails about 0.5 s later."""


def fate_annotations(fate: Fate, *, after: str = "1s", exit_code: int | None = None) -> dict[str, str]:
    """Return pod annotations that end a Running pod with fate after the Go duration `after`."""
    if exit_code is not None and fate is not Fate.FAIL:
        raise ValueError(f"exit_code={exit_code} applies only to Fate.FAIL, not to {fate}")
    annotations = {FATE: fate.value, FATE_AFTER: after}
    if exit_code is not None:
        annotations[EXIT_CODE] = str(exit_code)
    return annotations

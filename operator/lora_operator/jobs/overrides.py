"""The smaller batch of the attempt after an out-of-memory kill."""

from __future__ import annotations

from lora_operator.api.training import AttemptOverrides
from lora_operator.api.training_spec import LoRATrainingSpec


def halve_batch(spec: LoRATrainingSpec, current: AttemptOverrides) -> AttemptOverrides | None:
    """Halve the batch and double the accumulation, keeping the effective batch; None when the batch is 1."""
    effective = current.apply(spec).training
    if effective.batch_size <= 1:
        return None
    return AttemptOverrides(
        batch_size=effective.batch_size // 2,
        gradient_accumulation=effective.gradient_accumulation * 2,
    )

"""Resume rules: a checkpoint resumes only under the same run identity, but batch settings may change."""

from __future__ import annotations

import logging
from typing import Any

from lora_operator.api.trainer_config import TrainerConfig


def run_identity(config: TrainerConfig, *, dataset_fingerprint: str) -> dict[str, Any]:
    """Return the settings that define the adapter and its data; a checkpoint resumes only when they match."""
    spec = config.spec
    identity: dict[str, Any] = {
        "baseModel": spec.base_model,
        "baseModelRevision": spec.base_model_revision,
        "lora.rank": spec.lora.rank,
        "lora.alpha": spec.lora.alpha,
        "lora.targetModules": sorted(spec.lora.target_modules),
        "lora.trainTextEncoder": spec.lora.train_text_encoder,
        "dataset.repeats": spec.dataset.repeats,
        "dataset": dataset_fingerprint,
    }
    if spec.lora.train_text_encoder:
        identity["lora.textEncoderTargetModules"] = sorted(spec.lora.text_encoder_target_modules)
    return identity


# Settings stored as fingerprints: their raw values mean nothing to a user.
IDENTITY_SUMMARIES = {"dataset": "the dataset changed (prepared images, captions or buckets)"}


def batch_settings(config: TrainerConfig, *, processes: int = 1) -> dict[str, int]:
    """Return the settings that make up a step's batch: batch size, accumulation and training processes."""
    training = config.spec.training
    return {"batchSize": training.batch_size, "gradientAccumulation": training.gradient_accumulation, "processes": processes}


def warn_changed_batch_settings(saved: dict[str, int], current: dict[str, int], *, step: int, log: logging.Logger) -> bool:
    """Log a warning when batch size or accumulation changed since the checkpoint; return whether they did.

    The operator halves batchSize and doubles gradientAccumulation after an out-of-memory
    kill, and a resumed attempt may run on another number of GPUs, so these changes are
    expected. The current config wins. Checkpoints written before the process count was
    recorded count as one process.
    """
    saved = {"processes": 1, **saved}
    if saved == current:
        return False
    log.warning(
        "checkpoint step %d was written with batchSize %d, gradientAccumulation %d and %d training process(es); "
        "this attempt uses batchSize %d, gradientAccumulation %d and %d training process(es) (the current settings "
        "win), so from here on the run differs from an uninterrupted one",
        step, saved["batchSize"], saved["gradientAccumulation"], saved["processes"],
        current["batchSize"], current["gradientAccumulation"], current["processes"],
    )
    return True

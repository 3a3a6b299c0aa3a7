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


def batch_settings(config: TrainerConfig) -> dict[str, int]:
    training = config.spec.training
    return {"batchSize": training.batch_size, "gradientAccumulation": training.gradient_accumulation}


def warn_changed_batch_settings(saved: dict[str, int], current: dict[str, int], *, step: int, log: logging.Logger) -> bool:
    """Log a warning when batch size or accumulation changed since the checkpoint; return whether they did.

    The operator halves batchSize and doubles gradientAccumulation after an out-of-memory
    kill, so these changes are expected. The current config wins.
    """
    if saved == current:
        return False
    log.warning(
        "checkpoint step %d was written with batchSize %d and gradientAccumulation %d; this attempt uses "
        "batchSize %d and gradientAccumulation %d (the current config wins), so from here on the run "
        "differs from an uninterrupted one",
        step, saved["batchSize"], saved["gradientAccumulation"], current["batchSize"], current["gradientAccumulation"],
    )
    return True

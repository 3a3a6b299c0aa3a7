"""Deterministic names and labels of a training's children, so a restarted operator finds them."""

from __future__ import annotations

import hashlib

LABEL_TRAINING = "lora-operator.io/training"
LABEL_ATTEMPT = "lora-operator.io/attempt"
LABEL_MANAGED_BY = "app.kubernetes.io/managed-by"
# The full training name, which a label value cannot always hold.
ANNOTATION_TRAINING_NAME = "lora-operator.io/training-name"
MANAGER = "lora-operator"
KUEUE_QUEUE_LABEL = "kueue.x-k8s.io/queue-name"
# Job names become the `job-name` pod label, whose values are limited to 63 characters.
MAX_BASE_LENGTH = 48


def short_name(training_name: str) -> str:
    """Return the training name, or a prefix of it plus a hash when it is too long for a label."""
    if len(training_name) <= MAX_BASE_LENGTH:
        return training_name
    digest = hashlib.sha256(training_name.encode()).hexdigest()[:8]
    return f"{training_name[:MAX_BASE_LENGTH - 9].rstrip('-.')}-{digest}"


def job_name(training_name: str, attempt: int) -> str:
    """Name of the Job (and of its config ConfigMap) of one attempt."""
    return f"{short_name(training_name)}-attempt-{attempt}"


def child_labels(training_name: str, attempt: int) -> dict[str, str]:
    """Labels on every child of a training: Jobs, pods and ConfigMaps."""
    return {
        LABEL_TRAINING: short_name(training_name),
        LABEL_ATTEMPT: str(attempt),
        LABEL_MANAGED_BY: MANAGER,
    }

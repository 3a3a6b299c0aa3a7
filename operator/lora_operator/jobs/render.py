"""Render one attempt of a training: its TrainerConfig, the ConfigMap that contains it, and the Job.

The Job is never edited after creation. Its pod passes the `restricted` Pod Security
Standard: non-root, read-only root filesystem, no privilege escalation, all capabilities
dropped, the RuntimeDefault seccomp profile and no service-account token.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import yaml

from lora_operator.api.trainer_config import OutputLocation, RunIdentity, TrainerConfig
from lora_operator.api.training import AttemptOverrides
from lora_operator.api.training_spec import LoRATrainingSpec
from lora_operator.jobs.naming import ANNOTATION_TRAINING_NAME, KUEUE_QUEUE_LABEL, child_labels, job_name
from lora_operator.settings import OperatorSettings
from lora_trainer import EXIT_INVALID_INPUT, EXIT_STOPPED

CONTAINER_NAME = "trainer"
CONFIG_MOUNT = "/etc/lora-operator"
CONFIG_FILE = "config.yaml"
TRAINER_UID = 10001


@dataclass(frozen=True)
class TrainingRef:
    """The identity of the LoRATraining that owns the children."""

    namespace: str
    name: str
    uid: str
    api_version: str = "lora-operator.io/v1alpha1"
    kind: str = "LoRATraining"

    def owner_reference(self) -> dict[str, Any]:
        return {
            "apiVersion": self.api_version,
            "kind": self.kind,
            "name": self.name,
            "uid": self.uid,
            "controller": True,
            "blockOwnerDeletion": True,
        }


def run_uri(ref: TrainingRef, spec: LoRATrainingSpec, settings: OperatorSettings) -> str:
    """Return s3://BUCKET[/PREFIX]/NAMESPACE/NAME/UID, the run folder of the training."""
    bucket = spec.output.bucket or settings.s3_bucket
    parts = [spec.output.prefix.strip("/"), ref.namespace, ref.name, ref.uid]
    return f"s3://{bucket}/" + "/".join(part for part in parts if part)


def trainer_config(
    ref: TrainingRef, spec: LoRATrainingSpec, *, attempt: int, overrides: AttemptOverrides, settings: OperatorSettings
) -> TrainerConfig:
    """Resolve the config the trainer of this attempt runs."""
    return TrainerConfig(
        run=RunIdentity(namespace=ref.namespace, name=ref.name, uid=ref.uid, attempt=attempt),
        output=OutputLocation(
            uri=run_uri(ref, spec, settings),
            s3_endpoint=settings.s3_endpoint,
            s3_secure=settings.s3_secure,
            s3_region=settings.s3_region,
        ),
        spec=overrides.apply(spec),
        work_dir="/tmp/work",
        device="auto" if spec.resources.gpus else "cpu",
    )


def render_config_map(ref: TrainingRef, config: TrainerConfig) -> dict[str, Any]:
    """Render the immutable ConfigMap snapshot of one attempt's trainer config."""
    attempt = config.run.attempt
    return {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {
            "name": job_name(ref.name, attempt),
            "namespace": ref.namespace,
            "labels": child_labels(ref.name, attempt),
            "ownerReferences": [ref.owner_reference()],
        },
        "immutable": True,
        "data": {CONFIG_FILE: yaml.safe_dump(config.to_wire(), sort_keys=False, allow_unicode=True)},
    }


def _trainer_command(gpus: int) -> list[str]:
    command = ["lora-train", "--config", f"{CONFIG_MOUNT}/{CONFIG_FILE}"]
    if gpus > 1:
        # One data-parallel training process per GPU, and the pod exits with their combined code.
        command += ["--processes", str(gpus)]
    return command


def _resources(spec: LoRATrainingSpec, settings: OperatorSettings) -> dict[str, Any]:
    amounts: dict[str, Any] = {"cpu": spec.resources.cpu, "memory": spec.resources.memory}
    if spec.resources.gpus:
        resource_name = spec.resources.gpu_resource_name or settings.default_gpu_resource_name
        amounts[resource_name] = str(spec.resources.gpus)
    return {"requests": dict(amounts), "limits": dict(amounts)}


def _environment(settings: OperatorSettings) -> list[dict[str, Any]]:
    secret = settings.s3_credentials_secret
    return [
        {"name": "AWS_ACCESS_KEY_ID", "valueFrom": {"secretKeyRef": {"name": secret, "key": "AWS_ACCESS_KEY_ID"}}},
        {"name": "AWS_SECRET_ACCESS_KEY", "valueFrom": {"secretKeyRef": {"name": secret, "key": "AWS_SECRET_ACCESS_KEY"}}},
        {"name": "HOME", "value": "/tmp"},
        {"name": "HF_HOME", "value": "/tmp/hf-home"},
        {"name": "LORA_CACHE_DIR", "value": "/tmp/lora-cache"},
        {"name": "PYTHONUNBUFFERED", "value": "1"},
    ]


def _container(spec: LoRATrainingSpec, settings: OperatorSettings) -> dict[str, Any]:
    return {
        "name": CONTAINER_NAME,
        "image": settings.trainer_image,
        "imagePullPolicy": settings.image_pull_policy,
        "command": _trainer_command(spec.resources.gpus),
        "env": _environment(settings),
        "resources": _resources(spec, settings),
        "volumeMounts": [
            {"name": "config", "mountPath": CONFIG_MOUNT, "readOnly": True},
            {"name": "scratch", "mountPath": "/tmp"},
            {"name": "shm", "mountPath": "/dev/shm"},
        ],
        "securityContext": {
            "runAsNonRoot": True,
            "runAsUser": TRAINER_UID,
            "allowPrivilegeEscalation": False,
            "readOnlyRootFilesystem": True,
            "capabilities": {"drop": ["ALL"]},
            "seccompProfile": {"type": "RuntimeDefault"},
        },
        "terminationMessagePolicy": "FallbackToLogsOnError",
    }


def _pod_spec(ref: TrainingRef, spec: LoRATrainingSpec, *, attempt: int, settings: OperatorSettings) -> dict[str, Any]:
    pod: dict[str, Any] = {
        "restartPolicy": "Never",
        "automountServiceAccountToken": False,
        "terminationGracePeriodSeconds": settings.stop_grace_seconds,
        "securityContext": {
            "runAsNonRoot": True,
            "runAsUser": TRAINER_UID,
            "runAsGroup": TRAINER_UID,
            "fsGroup": TRAINER_UID,
            "seccompProfile": {"type": "RuntimeDefault"},
        },
        "containers": [_container(spec, settings)],
        "volumes": [
            {"name": "config", "configMap": {"name": job_name(ref.name, attempt)}},
            {"name": "scratch", "emptyDir": {"sizeLimit": settings.scratch_size_limit}},
            # PyTorch data loader workers share tensors through /dev/shm, which defaults to 64 MiB.
            {"name": "shm", "emptyDir": {"medium": "Memory", "sizeLimit": "8Gi"}},
        ],
    }
    node_selector = {**settings.default_node_selector, **spec.resources.node_selector}
    if node_selector:
        pod["nodeSelector"] = node_selector
    # Empty strings mean "unset" in the spec, and Kubernetes' defaults match the model's.
    tolerations = list(settings.default_tolerations) + [
        toleration.model_dump(by_alias=True, exclude_defaults=True) for toleration in spec.resources.tolerations
    ]
    if tolerations:
        pod["tolerations"] = tolerations
    if spec.resources.priority_class_name:
        pod["priorityClassName"] = spec.resources.priority_class_name
    return pod


def render_job(ref: TrainingRef, spec: LoRATrainingSpec, *, attempt: int, settings: OperatorSettings) -> dict[str, Any]:
    """Render the batch/v1 Job of one attempt."""
    labels = child_labels(ref.name, attempt)
    job_labels = dict(labels)
    queue_name = spec.queue_name or settings.default_queue_name
    if queue_name:
        job_labels[KUEUE_QUEUE_LABEL] = queue_name
    return {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": {
            "name": job_name(ref.name, attempt),
            "namespace": ref.namespace,
            "labels": job_labels,
            "annotations": {ANNOTATION_TRAINING_NAME: ref.name},
            "ownerReferences": [ref.owner_reference()],
        },
        "spec": {
            "backoffLimit": settings.job_backoff_limit,
            "activeDeadlineSeconds": spec.active_deadline_seconds,
            "ttlSecondsAfterFinished": settings.job_ttl_seconds,
            "podFailurePolicy": {
                "rules": [
                    # Invalid input fails the same way on every try.
                    {
                        "action": "FailJob",
                        "onExitCodes": {"containerName": CONTAINER_NAME, "operator": "In", "values": [EXIT_INVALID_INPUT]},
                    },
                    # Preemption and node drains are not the trainer's fault: replace the pod.
                    {"action": "Ignore", "onPodConditions": [{"type": "DisruptionTarget", "status": "True"}]},
                    # The trainer checkpointed after a SIGTERM, sent for a queue's preemption or a pod
                    # deletion: a replacement pod resumes from that checkpoint.
                    {
                        "action": "Ignore",
                        "onExitCodes": {"containerName": CONTAINER_NAME, "operator": "In", "values": [EXIT_STOPPED]},
                    },
                ]
            },
            "template": {
                "metadata": {"labels": labels, "annotations": {ANNOTATION_TRAINING_NAME: ref.name}},
                "spec": _pod_spec(ref, spec, attempt=attempt, settings=settings),
            },
        },
    }

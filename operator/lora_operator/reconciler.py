"""Reconcile one LoRATraining: make sure its current attempt's Job exists, then write the status.

The reconcile is level-based and idempotent: it reads the training, its Job and pods,
decides, and writes only what differs. Children have deterministic names, so an
operator killed at any point and restarted finds them instead of creating duplicates.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any, Callable

from pydantic import ValidationError

from lora_operator.api.training import AttemptOverrides
from lora_operator.api.training_spec import LoRATrainingSpec
from lora_operator.jobs.naming import job_name
from lora_operator.jobs.overrides import halve_batch
from lora_operator.jobs.render import TrainingRef, render_config_map, render_job, run_uri, trainer_config
from lora_operator.kube import AlreadyExists, Kube, now_rfc3339
from lora_operator.metrics import Metrics
from lora_operator.settings import OperatorSettings
from lora_operator.status.artifacts import read_artifacts, read_trainer_message
from lora_operator.status.attempt import AttemptState, observe_attempt
from lora_operator.status.conditions import conditions_for_phase
from lora_trainer.storage import ArtifactStore

FINALIZER = "lora-operator.io/delete-artifacts"
TERMINAL_PHASES = ("Succeeded", "Failed")


@dataclass
class Reconciler:
    """Everything a reconcile needs; one instance serves every training."""

    kube: Kube
    settings: OperatorSettings
    open_store: Callable[[str], ArtifactStore]
    """Opens the run folder at an s3:// URI."""
    metrics: Metrics

    def reconcile(self, namespace: str, name: str, *, log: logging.Logger | logging.LoggerAdapter) -> None:
        """Reconcile the training ``namespace/name``; the work queue runs one pass per training at a time."""
        body = self.kube.get_training(namespace, name)
        _Pass(self, body, log).run()


class _Pass:
    """One reconcile of one training, with its body read at the start."""

    def __init__(self, owner: Reconciler, body: dict[str, Any], log: logging.Logger | logging.LoggerAdapter) -> None:
        self.owner = owner
        self.kube = owner.kube
        self.settings = owner.settings
        self.body = body
        self.log = log
        metadata = body["metadata"]
        self.ref = TrainingRef(namespace=metadata["namespace"], name=metadata["name"], uid=metadata["uid"])
        self.generation = metadata.get("generation", 1)
        self.status: dict[str, Any] = dict(body.get("status") or {})
        self.old_phase = self.status.get("phase", "")
        self.created_job = False

    def run(self) -> None:
        if self.body["metadata"].get("deletionTimestamp"):
            self._finalize()
            return
        try:
            spec = LoRATrainingSpec.model_validate(self.body.get("spec") or {})
        except ValidationError as error:
            self._write(phase="Failed", reason="InvalidSpec", message=_describe(error), valid=False)
            return
        self._ensure_finalizer(spec)

        attempt = self.status.get("attempt") or 1
        overrides = AttemptOverrides.model_validate(self.status.get("overrides") or {})
        if self.old_phase == "Succeeded":
            return
        if self.old_phase == "Failed" and not self._retry_allowed(spec):
            return

        # Suspension stops the attempt; resuming starts the next one, which continues from its checkpoint.
        if spec.suspend:
            self._suspend(attempt)
            return
        if self.old_phase == "Suspended":
            if self._previous_attempt_still_stopping(attempt):
                return
            attempt += 1
        elif self.old_phase == "Failed":
            attempt += 1

        job = self._ensure_attempt(spec, attempt=attempt, overrides=overrides)
        if job is None:
            return
        # A Job created in this pass has no pods yet: skip the list.
        pods = [] if self.created_job else self.kube.list_job_pods(self.ref.namespace, job["metadata"]["name"])
        state = observe_attempt(job, pods)
        self.status["attempt"] = attempt
        self.status["jobName"] = job["metadata"]["name"]
        self.status["overrides"] = overrides.to_wire()
        if state.phase == "Failed":
            self._handle_failure(spec, state, attempt=attempt, overrides=overrides)
        elif state.phase == "Succeeded":
            self._handle_success(spec)
        else:
            if state.phase == "Running" and not self.status.get("startTime"):
                self.status["startTime"] = state.started_at or now_rfc3339()
            self._write(phase=state.phase, reason=state.reason, message=state.message)

    # Steps of a pass, in the order run() calls them.

    def _ensure_finalizer(self, spec: LoRATrainingSpec) -> None:
        finalizers = list(self.body["metadata"].get("finalizers") or [])
        if spec.output.delete_on_removal and FINALIZER not in finalizers:
            self.kube.patch_training_metadata(self.ref.namespace, self.ref.name, {"finalizers": finalizers + [FINALIZER]})
        elif not spec.output.delete_on_removal and FINALIZER in finalizers:
            finalizers.remove(FINALIZER)
            self.kube.patch_training_metadata(self.ref.namespace, self.ref.name, {"finalizers": finalizers})

    def _retry_allowed(self, spec: LoRATrainingSpec) -> bool:
        # A raised retry.maxAttempts revives a run whose last failure was retryable.
        return bool(self.status.get("retryable")) and self.status.get("failures", 0) < spec.retry.max_attempts

    def _suspend(self, attempt: int) -> None:
        job = job_name(self.ref.name, attempt)
        if self.old_phase != "Suspended":
            # Deleting the Job sends SIGTERM to its pod; the trainer checkpoints within the grace period.
            self.kube.delete_job(self.ref.namespace, job)
            self.log.info("suspended: deleted Job %s; the trainer checkpoints before it stops", job)
        self._write(phase="Suspended", reason="SuspendRequested",
                    message="spec.suspend is true; set it to false to resume from the newest checkpoint")

    def _previous_attempt_still_stopping(self, attempt: int) -> bool:
        # Two trainers must never write the same run folder: wait until the stopped pod is gone.
        pods = self.kube.list_job_pods(self.ref.namespace, job_name(self.ref.name, attempt))
        if pods:
            self._write(phase="Suspended", reason="StoppingPreviousAttempt",
                        message=f"resuming once the pod of attempt {attempt} has stopped")
        return bool(pods)

    def _ensure_attempt(
        self, spec: LoRATrainingSpec, *, attempt: int, overrides: AttemptOverrides
    ) -> dict[str, Any] | None:
        """Return the attempt's Job, creating it and its config snapshot when missing."""
        name = job_name(self.ref.name, attempt)
        # When the status names no Job of this attempt, the Job is created without a get first. If an
        # earlier pass created it but stopped before its status write, the create raises AlreadyExists.
        job = self.kube.get_job(self.ref.namespace, name) if self.status.get("jobName") == name else None
        if job is None:
            config = trainer_config(self.ref, spec, attempt=attempt, overrides=overrides, settings=self.settings)
            try:
                self.kube.create_config_map(render_config_map(self.ref, config))
            except AlreadyExists:
                pass  # Created by an earlier pass that stopped before the Job.
            try:
                job = self.kube.create_job(render_job(self.ref, config.spec, attempt=attempt, settings=self.settings))
                self.status["jobCreatedAt"] = now_rfc3339()
                self.created_job = True
                self.owner.metrics.observe_job_created(self.body)
                self.log.info("created Job %s for attempt %d", name, attempt)
            except AlreadyExists:
                job = self.kube.get_job(self.ref.namespace, name)
        owners = [reference.get("uid") for reference in (job or {}).get("metadata", {}).get("ownerReferences") or []]
        if job is not None and self.ref.uid not in owners:
            self._write(
                phase="Failed", reason="JobConflict",
                message=f"Job {self.ref.namespace}/{name} exists but belongs to another object; delete that Job or "
                "rename this LoRATraining",
            )
            return None
        return job

    def _handle_failure(
        self, spec: LoRATrainingSpec, state: AttemptState, *, attempt: int, overrides: AttemptOverrides
    ) -> None:
        failures = self.status.get("failures", 0) + 1
        self.status["failures"] = failures
        trainer_message = read_trainer_message(self.owner.open_store(run_uri(self.ref, spec, self.settings)))
        message = f"attempt {attempt} failed: {state.message}"
        if trainer_message and trainer_message not in message:
            message += f" ({trainer_message})"

        next_overrides: AttemptOverrides | None = overrides
        if state.out_of_memory and spec.retry.halve_batch_on_oom:
            next_overrides = halve_batch(spec, overrides)
        retry_left = failures < spec.retry.max_attempts
        if not state.retryable or not retry_left or next_overrides is None:
            self.status["retryable"] = state.retryable and next_overrides is not None
            if state.retryable and not retry_left:
                message += f"; no attempts left (retry.maxAttempts is {spec.retry.max_attempts})"
            if next_overrides is None:
                message += "; the batch size is already 1: lower dataset.resolution or lora.rank, or set " \
                           "training.gradientCheckpointing"
            self.status["completionTime"] = now_rfc3339()
            self._write(phase="Failed", reason=state.reason, message=message)
            return

        # Retry at once: the next attempt's Job resumes from the newest checkpoint in S3.
        next_attempt = attempt + 1
        self.status["retryable"] = True
        self.status["overrides"] = next_overrides.to_wire()
        job = self._ensure_attempt(spec, attempt=next_attempt, overrides=next_overrides)
        if job is None:
            return
        self.status["attempt"] = next_attempt
        self.status["jobName"] = job["metadata"]["name"]
        if state.out_of_memory:
            effective = next_overrides.apply(spec).training
            message += (f"; retrying with batchSize {effective.batch_size} and "
                        f"gradientAccumulation {effective.gradient_accumulation}")
        else:
            message += f"; retrying as attempt {next_attempt}"
        self.kube.create_event(involved=self.body, event_type="Warning", reason=state.reason, message=message)
        self._write(phase="Pending", reason="Retrying", message=message)

    def _handle_success(self, spec: LoRATrainingSpec) -> None:
        store = self.owner.open_store(run_uri(self.ref, spec, self.settings))
        self.status["artifacts"] = read_artifacts(store)
        self.status["completionTime"] = now_rfc3339()
        progress = dict(self.status.get("progress") or {})
        if progress.get("totalSteps"):
            progress.update(step=progress["totalSteps"], percent=100.0, etaSeconds=0)
            self.status["progress"] = progress
        self._write(phase="Succeeded", reason="Completed", message="training finished; weights are in status.artifacts")

    def _finalize(self) -> None:
        finalizers = list(self.body["metadata"].get("finalizers") or [])
        if FINALIZER not in finalizers:
            return
        spec = LoRATrainingSpec.model_validate(self.body.get("spec") or {})
        uri = run_uri(self.ref, spec, self.settings)
        self.owner.open_store(uri).delete_prefix("")
        self.log.info("deleted the artifacts under %s because output.deleteOnRemoval is true", uri)
        finalizers.remove(FINALIZER)
        self.kube.patch_training_metadata(self.ref.namespace, self.ref.name, {"finalizers": finalizers})

    def _write(self, *, phase: str, reason: str, message: str, valid: bool = True) -> None:
        """Patch the status when it changed, and record an Event when the phase changed."""
        old = dict(self.body.get("status") or {})
        self.status["phase"] = phase
        self.status["message"] = message
        self.status["observedGeneration"] = self.generation
        self.status["conditions"] = conditions_for_phase(
            self.status.get("conditions") or [], phase=phase, reason=reason, message=message,
            generation=self.generation, valid=valid,
        )
        if self.status == old:
            return
        self.kube.patch_training_status(self.ref.namespace, self.ref.name, self.status)
        if phase != self.old_phase:
            self.owner.metrics.observe_phase(self.body, old_phase=self.old_phase, phase=phase, status=self.status)
            event_type = "Warning" if phase == "Failed" else "Normal"
            if reason != "Retrying":  # _handle_failure recorded that one with its cause.
                self.kube.create_event(involved=self.body, event_type=event_type, reason=reason, message=message)
            self.log.info("phase %s -> %s (%s): %s", self.old_phase or "-", phase, reason, message)


def _describe(error: ValidationError) -> str:
    """Name every invalid field with its camelCase path under spec."""
    parts = []
    for item in error.errors():
        location = ".".join(str(part) for part in item["loc"])
        parts.append(f"spec.{location}: {item['msg']}")
    return "; ".join(parts)

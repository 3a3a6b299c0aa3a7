"""Classify an attempt from its Job and pods: the phase, a CamelCase reason, and whether to retry."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from lora_trainer import EXIT_INVALID_INPUT, EXIT_OUT_OF_MEMORY, OUT_OF_MEMORY_MARK


@dataclass(frozen=True)
class AttemptState:
    """The state of one attempt, as its Job and pods show it."""

    phase: str
    """Pending, Queued, Running, Succeeded or Failed."""
    reason: str
    message: str
    retryable: bool = False
    out_of_memory: bool = False
    started_at: str = ""


def _condition(job: dict[str, Any], condition_type: str) -> dict[str, Any] | None:
    for condition in (job.get("status") or {}).get("conditions") or []:
        if condition.get("type") == condition_type and condition.get("status") == "True":
            return condition
    return None


def _terminated_trainer(pods: list[dict[str, Any]]) -> dict[str, Any] | None:
    """Return the trainer container's terminated state of the newest failed pod, if any."""
    newest: tuple[str, dict[str, Any]] | None = None
    for pod in pods:
        for status in (pod.get("status") or {}).get("containerStatuses") or []:
            terminated = (status.get("state") or {}).get("terminated") or (status.get("lastState") or {}).get("terminated")
            if terminated and terminated.get("exitCode", 0) != 0:
                finished = terminated.get("finishedAt") or ""
                if newest is None or finished >= newest[0]:
                    newest = (finished, terminated)
    return newest[1] if newest else None


def _failed_state(job: dict[str, Any], pods: list[dict[str, Any]]) -> AttemptState:
    failed = _condition(job, "Failed") or {}
    terminated = _terminated_trainer(pods)
    if failed.get("reason") == "DeadlineExceeded":
        deadline = job["spec"].get("activeDeadlineSeconds")
        return AttemptState(
            phase="Failed",
            reason="DeadlineExceeded",
            message=f"the attempt ran longer than activeDeadlineSeconds ({deadline}); raise spec.activeDeadlineSeconds "
            "or lower training.maxSteps",
        )
    if terminated is None:
        return AttemptState(
            phase="Failed", reason=failed.get("reason") or "JobFailed",
            message=failed.get("message") or "the Job failed without a trainer exit code", retryable=True,
        )
    exit_code = terminated.get("exitCode")
    detail = (terminated.get("message") or "").strip().splitlines()[-1:] or [""]
    if terminated.get("reason") == "OOMKilled" or (exit_code == EXIT_OUT_OF_MEMORY and OUT_OF_MEMORY_MARK in detail[0]):
        # The kernel's OOM killer gives the reason OOMKilled. The trainer itself exits 137 when
        # CUDA runs out of GPU memory, and its last log line names the cause.
        cause = "OOMKilled" if terminated.get("reason") == "OOMKilled" else f"exit code 137: {detail[0]}"
        return AttemptState(
            phase="Failed", reason="OOMKilled", retryable=True, out_of_memory=True,
            message=f"the trainer ran out of memory ({cause})",
        )
    if exit_code == EXIT_OUT_OF_MEMORY:
        # SIGKILL without an OOM: most often the kubelet's, when the trainer outlived its grace period.
        return AttemptState(
            phase="Failed", reason="Killed", retryable=True,
            message="the trainer was killed (exit code 137) before it could checkpoint and stop, for example at the "
            "end of the pod's termination grace period; the next attempt resumes from the newest checkpoint",
        )
    if exit_code == EXIT_INVALID_INPUT:
        return AttemptState(
            phase="Failed", reason="InvalidInput",
            message=f"the trainer rejected its input: {detail[0]}".rstrip(": "),
        )
    return AttemptState(
        phase="Failed", reason=f"ExitCode{exit_code}", retryable=True,
        message=f"the trainer exited with code {exit_code}: {detail[0]}".rstrip(": "),
    )


def _unschedulable(pod: dict[str, Any]) -> str | None:
    for condition in (pod.get("status") or {}).get("conditions") or []:
        if condition.get("type") == "PodScheduled" and condition.get("status") == "False":
            if condition.get("reason") == "Unschedulable":
                return condition.get("message") or "no node fits the trainer pod"
    return None


def observe_attempt(job: dict[str, Any] | None, pods: list[dict[str, Any]]) -> AttemptState:
    """Return the state of an attempt from its Job (None before creation) and its pods."""
    if job is None:
        return AttemptState(phase="Pending", reason="JobNotCreated", message="the attempt's Job does not exist yet")
    if _condition(job, "Complete"):
        return AttemptState(phase="Succeeded", reason="Completed", message="training finished")
    if _condition(job, "Failed"):
        return _failed_state(job, pods)
    if (job.get("spec") or {}).get("suspend"):
        return AttemptState(phase="Queued", reason="JobSuspended", message="the Job waits for admission by its queue")

    running = [pod for pod in pods if (pod.get("status") or {}).get("phase") == "Running"]
    if running:
        started = (running[0].get("status") or {}).get("startTime", "")
        return AttemptState(phase="Running", reason="PodRunning", message="the trainer is running", started_at=started)
    for pod in pods:
        blocked = _unschedulable(pod)
        if blocked:
            return AttemptState(phase="Queued", reason="Unschedulable", message=f"waiting for a node: {blocked}")
    # The Job controller marks the Job a moment after its pod ends; until then the attempt is still running.
    ended = [pod for pod in pods if (pod.get("status") or {}).get("phase") in ("Succeeded", "Failed")]
    if pods and len(ended) == len(pods):
        return AttemptState(phase="Running", reason="PodEnded", message="the trainer pod has ended; waiting for the Job")
    return AttemptState(phase="Pending", reason="PodStarting", message="the trainer pod is starting")

"""An attempt's Job and pods map onto a phase, a reason and a retry decision."""

import pytest

from lora_operator.api.training import AttemptOverrides
from lora_operator.api.training_spec import LoRATrainingSpec
from lora_operator.jobs.overrides import halve_batch
from lora_operator.status.attempt import observe_attempt
from lora_operator.status.conditions import conditions_for_phase
from lora_operator.status.progress_mirror import progress_status

pytestmark = pytest.mark.unit


def job(conditions=(), suspend=False):
    return {
        "spec": {"suspend": suspend, "activeDeadlineSeconds": 60},
        "status": {"conditions": [{"type": kind, "status": "True", "reason": reason} for kind, reason in conditions]},
    }


def pod(phase="Pending", exit_code=None, reason=None, unschedulable=False, message="line one\nno images were accepted"):
    status = {"phase": phase, "conditions": [], "containerStatuses": []}
    if unschedulable:
        status["conditions"].append({"type": "PodScheduled", "status": "False", "reason": "Unschedulable",
                                     "message": "0/2 nodes have free nvidia.com/gpu"})
    if exit_code is not None:
        terminated = {"exitCode": exit_code, "reason": reason or "Error", "finishedAt": "2026-01-01T00:00:00Z",
                      "message": message}
        status["containerStatuses"].append({"name": "trainer", "state": {"terminated": terminated}})
    return {"status": status}


def test_missing_job_is_pending():
    assert observe_attempt(None, []).phase == "Pending"


def test_suspended_job_is_queued():
    state = observe_attempt(job(suspend=True), [])
    assert state.phase == "Queued"
    assert state.reason == "JobSuspended"


def test_unschedulable_pod_is_queued():
    state = observe_attempt(job(), [pod(unschedulable=True)])
    assert state.phase == "Queued"
    assert "nvidia.com/gpu" in state.message


def test_running_pod_is_running():
    assert observe_attempt(job(), [pod(phase="Running")]).phase == "Running"


def test_ended_pod_before_job_verdict_running():
    state = observe_attempt(job(), [pod("Succeeded", 0)])
    assert state.phase == "Running"
    assert state.reason == "PodEnded"


def test_complete_job_succeeded():
    assert observe_attempt(job([("Complete", "")]), []).phase == "Succeeded"


def test_oom_is_retryable():
    state = observe_attempt(job([("Failed", "BackoffLimitExceeded")]), [pod("Failed", 137, "OOMKilled")])
    assert state.reason == "OOMKilled"
    assert state.out_of_memory
    assert state.retryable
    assert state.message == "the trainer ran out of memory (OOMKilled)"


def test_gpu_out_of_memory_exit_halves_batch():
    # The trainer exits 137 itself when CUDA runs out of memory; the container reason stays Error.
    last_line = "out of memory on the GPU: CUDA out of memory. A retry with half of training.batchSize may fit"
    state = observe_attempt(job([("Failed", "BackoffLimitExceeded")]), [pod("Failed", 137, "Error", message=last_line)])
    assert state.reason == "OOMKilled"
    assert state.out_of_memory
    assert f"exit code 137: {last_line}" in state.message


def test_kill_without_oom_keeps_batch():
    # A SIGKILL at the end of the grace period exits 137 too, with an ordinary last log line.
    state = observe_attempt(job([("Failed", "BackoffLimitExceeded")]), [pod("Failed", 137, "Error")])
    assert state.reason == "Killed"
    assert not state.out_of_memory
    assert state.retryable
    assert "grace period" in state.message


def test_invalid_input_is_final():
    state = observe_attempt(job([("Failed", "PodFailurePolicy")]), [pod("Failed", 42)])
    assert state.reason == "InvalidInput"
    assert not state.retryable
    assert "no images were accepted" in state.message


def test_deadline_is_final():
    state = observe_attempt(job([("Failed", "DeadlineExceeded")]), [])
    assert state.reason == "DeadlineExceeded"
    assert not state.retryable
    assert "activeDeadlineSeconds (60)" in state.message


def test_other_exit_code_retryable():
    state = observe_attempt(job([("Failed", "BackoffLimitExceeded")]), [pod("Failed", 1)])
    assert state.reason == "ExitCode1"
    assert state.retryable


def test_halving_keeps_effective_batch():
    spec = LoRATrainingSpec.model_validate(
        {"baseModel": "builtin://tiny-sd", "dataset": {"sources": [{"uri": "s3://d/p"}]},
         "training": {"batchSize": 8, "gradientAccumulation": 2}})
    first = halve_batch(spec, AttemptOverrides())
    assert (first.batch_size, first.gradient_accumulation) == (4, 4)
    second = halve_batch(spec, first)
    assert (second.batch_size, second.gradient_accumulation) == (2, 8)


def test_halving_stops_at_one():
    spec = LoRATrainingSpec.model_validate(
        {"baseModel": "builtin://tiny-sd", "dataset": {"sources": [{"uri": "s3://d/p"}]}, "training": {"batchSize": 1}})
    assert halve_batch(spec, AttemptOverrides()) is None


def test_conditions_follow_phase():
    conditions = conditions_for_phase([], phase="Running", reason="PodRunning", message="", generation=3)
    by_type = {item["type"]: item for item in conditions}
    assert by_type["Running"]["status"] == "True"
    assert by_type["Failed"]["status"] == "False"
    assert by_type["Valid"]["status"] == "True"
    assert {item["observedGeneration"] for item in conditions} == {3}


def test_transition_time_kept_without_change():
    first = conditions_for_phase([], phase="Running", reason="PodRunning", message="", generation=1)
    for item in first:
        item["lastTransitionTime"] = "2020-01-01T00:00:00Z"
    second = conditions_for_phase(first, phase="Running", reason="PodRunning", message="", generation=2)
    assert {item["lastTransitionTime"] for item in second} == {"2020-01-01T00:00:00Z"}


def test_progress_status_mapping():
    status = progress_status({"step": 50, "totalSteps": 200, "epoch": 2, "loss": 0.3, "lossEma": 0.25,
                              "etaSeconds": 12.6, "updatedAt": "t"})
    assert status["percent"] == 25.0
    assert status["loss"] == 0.25
    assert status["etaSeconds"] == 12

"""A queue that suspends and resumes the attempt Job, and trainer pods that stop cleanly, keep the attempt.

Kueue is not part of the test stack. These tests do what its controller does to an admitted
Job: preemption sets the Job's spec.suspend, and admission clears it. The Job controller,
the scheduler and kwok react for real.
"""

from __future__ import annotations

import pytest

from tests.cluster.operator.conftest import training_manifest
from tests.harness.pod_fates import Fate, fate_annotations
from tests.harness.waiting import poll_until

pytestmark = pytest.mark.cluster


def set_job_suspended(trainings, job_name: str, suspended: bool) -> None:
    trainings.batch.patch_namespaced_job(job_name, trainings.namespace, {"spec": {"suspend": suspended}})


def test_preempted_job_is_queued_then_resumes(operator, trainings):
    trainings.create(training_manifest("shared-gpu", queueName="team-queue"))
    first_pod = trainings.wait_pod_running("shared-gpu-attempt-1")
    trainings.wait_phase("shared-gpu", "Running")

    set_job_suspended(trainings, "shared-gpu-attempt-1", True)
    queued = trainings.wait_phase("shared-gpu", "Queued")
    conditions = {item["type"]: item for item in queued["status"]["conditions"]}
    assert conditions["Queued"]["reason"] == "JobSuspended"
    assert queued["status"]["attempt"] == 1
    poll_until(lambda: not trainings.pods_of("shared-gpu-attempt-1"), timeout=60,
               description="the Job controller removes the preempted pod")

    set_job_suspended(trainings, "shared-gpu-attempt-1", False)
    second_pod = trainings.wait_pod_running("shared-gpu-attempt-1")
    running = trainings.wait_phase("shared-gpu", "Running")
    assert second_pod.metadata.name != first_pod.metadata.name
    assert running["status"]["attempt"] == 1
    assert running["status"].get("failures", 0) == 0
    assert [job.metadata.name for job in trainings.jobs("shared-gpu")] == ["shared-gpu-attempt-1"]
    trainings.wait_event_reasons("shared-gpu", {"JobSuspended", "PodRunning"})


def test_clean_stop_gets_replacement_pod(operator, trainings):
    # A trainer that exits 143 has checkpointed after a SIGTERM, for example from `kubectl delete pod`.
    trainings.create(training_manifest("stopped-pod"))
    pod = trainings.wait_pod_running("stopped-pod-attempt-1")
    trainings.set_pod_fate(pod, fate_annotations(Fate.FAIL, after="0s", exit_code=143))

    poll_until(lambda: len(trainings.pods_of("stopped-pod-attempt-1")) >= 2, timeout=60,
               description="a replacement pod in the same attempt")
    trainings.wait_pod_running("stopped-pod-attempt-1")
    running = trainings.wait_phase("stopped-pod", "Running")
    assert running["status"]["attempt"] == 1
    assert running["status"].get("failures", 0) == 0
    job = trainings.batch.read_namespaced_job("stopped-pod-attempt-1", trainings.namespace)
    assert not [item for item in job.status.conditions or [] if item.type == "Failed" and item.status == "True"]

"""A disrupted pod carries the DisruptionTarget condition, so a podFailurePolicy can ignore its failure."""

from __future__ import annotations

import pytest
from kubernetes import client

from tests.cluster.gpu_jobs import JOB_TIMEOUT_SECONDS, gpu_job_manifest, job_condition, job_pods, pod_condition
from tests.harness.pod_fates import Fate, fate_annotations
from tests.harness.stack import ControlPlane
from tests.harness.waiting import poll_until

pytestmark = pytest.mark.cluster

IGNORE_DISRUPTIONS = {"rules": [{"action": "Ignore", "onPodConditions": [{"type": "DisruptionTarget"}]}]}


def test_disrupted_pod_gets_disruption_target_and_is_replaced(cluster: ControlPlane, namespace: str) -> None:
    manifest = gpu_job_manifest(
        "gpu-disrupted",
        pod_annotations=fate_annotations(Fate.DISRUPT, after="1s"),
        backoff_limit=0,
        pod_failure_policy=IGNORE_DISRUPTIONS,
    )

    with cluster.api_client() as api_client:
        batch = client.BatchV1Api(api_client)
        core = client.CoreV1Api(api_client)
        batch.create_namespaced_job(namespace, manifest)

        def failed_disrupted_pod() -> client.V1Pod | None:
            for pod in job_pods(core, namespace, "gpu-disrupted"):
                if pod.status.phase == "Failed" and pod_condition(pod, "DisruptionTarget"):
                    return pod
            return None

        disrupted = poll_until(
            failed_disrupted_pod,
            timeout=JOB_TIMEOUT_SECONDS,
            description="a Failed pod with DisruptionTarget in Job gpu-disrupted",
            last_state=lambda: [(p.status.phase, p.status.conditions) for p in job_pods(core, namespace, "gpu-disrupted")],
        )
        # With backoffLimit 0 a counted failure would fail the Job; the
        # ignored one makes the Job controller create a replacement pod.
        def pods_after_replacement() -> list[client.V1Pod] | None:
            pods = job_pods(core, namespace, "gpu-disrupted")
            return pods if len(pods) >= 2 else None

        pods = poll_until(
            pods_after_replacement,
            timeout=JOB_TIMEOUT_SECONDS,
            description="a replacement pod in Job gpu-disrupted",
            last_state=lambda: [p.metadata.name for p in job_pods(core, namespace, "gpu-disrupted")],
        )
        job = batch.read_namespaced_job("gpu-disrupted", namespace)

    condition = pod_condition(disrupted, "DisruptionTarget")
    assert condition.reason == "TerminationByKubelet"
    assert disrupted.status.container_statuses[0].state.terminated is not None
    assert any(pod.metadata.name != disrupted.metadata.name for pod in pods)
    assert job_condition(job, "Failed") is None
    assert not job.status.failed

"""kube-scheduler places GPU pods by the nvidia.com/gpu capacity of the fake nodes."""

from __future__ import annotations

import pytest
from kubernetes import client

from tests.cluster.gpu_jobs import JOB_TIMEOUT_SECONDS, gpu_job_manifest, job_pods
from tests.harness.kwok import FAKE_NODE_RESOURCES, GPU_RESOURCE
from tests.harness.stack import ControlPlane
from tests.harness.waiting import poll_until

pytestmark = pytest.mark.cluster


def _scheduling_condition(pod: client.V1Pod) -> client.V1PodCondition | None:
    for condition in pod.status.conditions or []:
        if condition.type == "PodScheduled":
            return condition
    return None


def test_pod_over_node_gpus_is_unschedulable(cluster: ControlPlane, namespace: str) -> None:
    gpus_per_node = int(FAKE_NODE_RESOURCES[GPU_RESOURCE])
    manifest = gpu_job_manifest("too-many-gpus", pod_annotations={}, gpus=gpus_per_node + 1)

    with cluster.api_client() as api_client:
        batch = client.BatchV1Api(api_client)
        core = client.CoreV1Api(api_client)
        batch.create_namespaced_job(namespace, manifest)

        def rejected_pod() -> client.V1Pod | None:
            for pod in job_pods(core, namespace, "too-many-gpus"):
                condition = _scheduling_condition(pod)
                if condition is not None and condition.status == "False":
                    return pod
            return None

        pod = poll_until(
            rejected_pod,
            timeout=JOB_TIMEOUT_SECONDS,
            description="pod of Job too-many-gpus marked unschedulable",
            last_state=lambda: [p.status.conditions for p in job_pods(core, namespace, "too-many-gpus")],
        )

    condition = _scheduling_condition(pod)
    assert condition.reason == "Unschedulable"
    assert f"Insufficient {GPU_RESOURCE}" in condition.message
    assert pod.spec.node_name is None
    assert pod.status.phase == "Pending"

"""batch/v1 Jobs on kwok's fake GPU nodes, driven by the real scheduler and Job controller."""

from __future__ import annotations

import time

import pytest
from kubernetes import client

from tests.cluster.gpu_jobs import (
    JOB_TIMEOUT_SECONDS,
    gpu_job_manifest,
    job_condition,
    job_pods,
    wait_for_job_condition,
)
from tests.harness.kwok import FAKE_NODE_NAMES, GPU_RESOURCE
from tests.harness.pod_fates import Fate, fate_annotations
from tests.harness.stack import ControlPlane
from tests.harness.waiting import poll_until

pytestmark = pytest.mark.cluster


def test_gpu_job_completes_on_fake_node(cluster: ControlPlane, namespace: str) -> None:
    manifest = gpu_job_manifest("gpu-succeeds", pod_annotations=fate_annotations(Fate.SUCCEED, after="1s"))

    with cluster.api_client() as api_client:
        batch = client.BatchV1Api(api_client)
        core = client.CoreV1Api(api_client)
        batch.create_namespaced_job(namespace, manifest)

        job = wait_for_job_condition(batch, namespace, "gpu-succeeds", "Complete")
        pods = job_pods(core, namespace, "gpu-succeeds")

    assert job.status.succeeded == 1
    assert not job.status.failed
    assert len(pods) == 1
    pod = pods[0]
    assert pod.spec.node_name in FAKE_NODE_NAMES
    assert pod.spec.containers[0].resources.requests[GPU_RESOURCE] == "1"
    assert pod.status.phase == "Succeeded"
    terminated = pod.status.container_statuses[0].state.terminated
    assert terminated is not None
    assert terminated.exit_code == 0


def test_oom_killed_pod_fails_job(cluster: ControlPlane, namespace: str) -> None:
    manifest = gpu_job_manifest("gpu-oom", pod_annotations=fate_annotations(Fate.OOM_KILL, after="1s"))

    with cluster.api_client() as api_client:
        batch = client.BatchV1Api(api_client)
        core = client.CoreV1Api(api_client)
        batch.create_namespaced_job(namespace, manifest)

        job = wait_for_job_condition(batch, namespace, "gpu-oom", "Failed")
        pods = job_pods(core, namespace, "gpu-oom")

    assert job_condition(job, "Failed").reason == "BackoffLimitExceeded"
    assert job.status.failed == 1
    assert len(pods) == 1
    assert pods[0].status.phase == "Failed"
    terminated = pods[0].status.container_statuses[0].state.terminated
    assert terminated is not None
    assert terminated.reason == "OOMKilled"
    assert terminated.exit_code == 137


def test_exit_code_matches_pod_failure_policy(cluster: ControlPlane, namespace: str) -> None:
    policy = {"rules": [{"action": "FailJob", "onExitCodes": {"operator": "In", "values": [3]}}]}
    manifest = gpu_job_manifest(
        "gpu-exit-3",
        pod_annotations=fate_annotations(Fate.FAIL, after="1s", exit_code=3),
        backoff_limit=5,
        pod_failure_policy=policy,
    )

    with cluster.api_client() as api_client:
        batch = client.BatchV1Api(api_client)
        core = client.CoreV1Api(api_client)
        batch.create_namespaced_job(namespace, manifest)

        job = wait_for_job_condition(batch, namespace, "gpu-exit-3", "Failed")
        pods = job_pods(core, namespace, "gpu-exit-3")

    # FailJob ends the Job on the first such exit, long before backoffLimit=5.
    assert job_condition(job, "Failed").reason == "PodFailurePolicy"
    assert len(pods) == 1
    terminated = pods[0].status.container_statuses[0].state.terminated
    assert terminated is not None
    assert terminated.exit_code == 3
    assert terminated.reason == "Error"


def test_pod_without_fate_keeps_running(cluster: ControlPlane, namespace: str) -> None:
    manifest = gpu_job_manifest("gpu-runs", pod_annotations={})

    with cluster.api_client() as api_client:
        batch = client.BatchV1Api(api_client)
        core = client.CoreV1Api(api_client)
        batch.create_namespaced_job(namespace, manifest)

        running = poll_until(
            lambda: [pod for pod in job_pods(core, namespace, "gpu-runs") if pod.status.phase == "Running"],
            timeout=JOB_TIMEOUT_SECONDS,
            description="pod of Job gpu-runs Running",
            last_state=lambda: [pod.status.phase for pod in job_pods(core, namespace, "gpu-runs")],
        )
        # Longer than the default fate delay of 1 s: a pod without a fate
        # must not end.
        time.sleep(3)
        pod = core.read_namespaced_pod(running[0].metadata.name, namespace)
        job = batch.read_namespaced_job("gpu-runs", namespace)

    assert pod.status.phase == "Running"
    assert pod.status.container_statuses[0].state.running is not None
    assert job.status.active == 1
    assert job_condition(job, "Complete") is None
    assert job_condition(job, "Failed") is None

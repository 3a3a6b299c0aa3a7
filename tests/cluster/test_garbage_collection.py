"""The garbage collector of kube-controller-manager deletes a Job whose owner is gone."""

from __future__ import annotations

import pytest
from kubernetes import client
from kubernetes.client.rest import ApiException

from tests.cluster.gpu_jobs import JOB_TIMEOUT_SECONDS, gpu_job_manifest, job_pods
from tests.harness.stack import ControlPlane
from tests.harness.waiting import poll_until

pytestmark = pytest.mark.cluster


def _job_exists(batch: client.BatchV1Api, namespace: str, name: str) -> bool:
    try:
        batch.read_namespaced_job(name, namespace)
    except ApiException as error:
        if error.status == 404:
            return False
        raise
    return True


def test_deleting_owner_deletes_job_and_pods(cluster: ControlPlane, namespace: str) -> None:
    with cluster.api_client() as api_client:
        batch = client.BatchV1Api(api_client)
        core = client.CoreV1Api(api_client)

        owner = core.create_namespaced_config_map(
            namespace, client.V1ConfigMap(metadata=client.V1ObjectMeta(name="job-owner"), data={"role": "owner"})
        )
        owner_reference = {
            "apiVersion": "v1",
            "kind": "ConfigMap",
            "name": owner.metadata.name,
            "uid": owner.metadata.uid,
        }
        # Without a fate the pod keeps running, so the collector must also
        # delete a running pod.
        manifest = gpu_job_manifest("owned-job", pod_annotations={}, owner_references=[owner_reference])
        batch.create_namespaced_job(namespace, manifest)
        poll_until(
            lambda: job_pods(core, namespace, "owned-job"),
            timeout=JOB_TIMEOUT_SECONDS,
            description="pod of Job owned-job created",
        )

        core.delete_namespaced_config_map("job-owner", namespace, propagation_policy="Background")

        poll_until(
            lambda: not _job_exists(batch, namespace, "owned-job"),
            timeout=JOB_TIMEOUT_SECONDS,
            description="Job owned-job deleted after its owner",
        )
        poll_until(
            lambda: not job_pods(core, namespace, "owned-job"),
            timeout=JOB_TIMEOUT_SECONDS,
            description="pods of Job owned-job deleted",
            last_state=lambda: [(p.metadata.name, p.metadata.finalizers) for p in job_pods(core, namespace, "owned-job")],
        )

    assert not _job_exists(batch, namespace, "owned-job")

"""Job manifests and status readers shared by the cluster tests."""

from __future__ import annotations

from kubernetes import client

from tests.harness.kwok import GPU_RESOURCE
from tests.harness.waiting import poll_until

# kwok never pulls images, so the name only has to be valid.
TEST_IMAGE = "lora-operator.invalid/test-workload:1"

# A bound against a hung test on a loaded machine, not a performance check.
JOB_TIMEOUT_SECONDS = 90.0


def gpu_job_manifest(
    name: str,
    *,
    pod_annotations: dict[str, str],
    gpus: int = 1,
    backoff_limit: int = 0,
    pod_failure_policy: dict | None = None,
    owner_references: list[dict] | None = None,
) -> dict:
    """Return a batch/v1 Job whose single pod requests gpus GPUs and never restarts in place."""
    spec: dict = {
        "backoffLimit": backoff_limit,
        "template": {
            "metadata": {"annotations": pod_annotations},
            "spec": {
                "restartPolicy": "Never",
                "containers": [
                    {
                        "name": "trainer",
                        "image": TEST_IMAGE,
                        "resources": {
                            "requests": {"cpu": "1", "memory": "1Gi", GPU_RESOURCE: str(gpus)},
                            "limits": {GPU_RESOURCE: str(gpus)},
                        },
                    }
                ],
            },
        },
    }
    if pod_failure_policy is not None:
        spec["podFailurePolicy"] = pod_failure_policy
    metadata: dict = {"name": name}
    if owner_references is not None:
        metadata["ownerReferences"] = owner_references
    return {"apiVersion": "batch/v1", "kind": "Job", "metadata": metadata, "spec": spec}


def job_condition(job: client.V1Job, condition_type: str) -> client.V1JobCondition | None:
    """Return the job's condition of condition_type when its status is True, else None."""
    for condition in job.status.conditions or []:
        if condition.type == condition_type and condition.status == "True":
            return condition
    return None


def job_pods(core: client.CoreV1Api, namespace: str, job_name: str) -> list[client.V1Pod]:
    """Return the pods that the Job controller created for job_name, oldest first."""
    pods = core.list_namespaced_pod(namespace, label_selector=f"batch.kubernetes.io/job-name={job_name}").items
    return sorted(pods, key=lambda pod: pod.metadata.creation_timestamp)


def pod_condition(pod: client.V1Pod, condition_type: str) -> client.V1PodCondition | None:
    """Return the pod's condition of condition_type when its status is True, else None."""
    for condition in pod.status.conditions or []:
        if condition.type == condition_type and condition.status == "True":
            return condition
    return None


def wait_for_job_condition(batch: client.BatchV1Api, namespace: str, name: str, condition_type: str) -> client.V1Job:
    """Wait until the Job has condition_type=True and return it; raise TimeoutError with its status."""

    def job_if_condition() -> client.V1Job | None:
        job = batch.read_namespaced_job(name, namespace)
        return job if job_condition(job, condition_type) else None

    return poll_until(
        job_if_condition,
        timeout=JOB_TIMEOUT_SECONDS,
        description=f"Job {namespace}/{name} condition {condition_type}",
        last_state=lambda: batch.read_namespaced_job(name, namespace).status,
    )

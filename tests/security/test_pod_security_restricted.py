"""The trainer Job's pods and the operator pod are admitted under the `restricted` Pod Security Standard.

The namespace carries pod-security.kubernetes.io/enforce=restricted, so the API server's
PodSecurity admission rejects every pod that breaks the standard.
"""

from __future__ import annotations

import pytest
from kubernetes import client
from kubernetes.client.exceptions import ApiException

from lora_operator.api.training import AttemptOverrides
from lora_operator.api.training_spec import LoRATrainingSpec
from lora_operator.jobs.render import TrainingRef, render_config_map, render_job, trainer_config
from lora_operator.settings import OperatorSettings
from tests.cluster.operator.conftest import Trainings, training_manifest
from tests.harness.stack import ControlPlane
from tests.harness.waiting import poll_until
from tests.helm.conftest import create_s3_secret
from tests.helm.helm_cli import CHART_DIR, Helm, find_object

pytestmark = pytest.mark.cluster

ENFORCE_LABELS = {
    "pod-security.kubernetes.io/enforce": "restricted",
    "pod-security.kubernetes.io/enforce-version": "latest",
}


@pytest.fixture
def restricted_namespace(cluster: ControlPlane, namespace: str) -> str:
    with cluster.api_client() as api_client:
        client.CoreV1Api(api_client).patch_namespace(namespace, {"metadata": {"labels": ENFORCE_LABELS}})
    return namespace


def dry_run_pod(api_client: client.ApiClient, namespace: str, pod_spec: dict, name: str) -> None:
    """Create a pod with pod_spec in dry-run mode; PodSecurity admission raises 403 with the violations."""
    body = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name}, "spec": pod_spec}
    client.CoreV1Api(api_client).create_namespaced_pod(namespace, body, dry_run="All")


def pod_events(api_client: client.ApiClient, namespace: str) -> list[str]:
    events = client.CoreV1Api(api_client).list_namespaced_event(namespace).items
    return [f"{event.involved_object.kind}/{event.involved_object.name} {event.reason}: {event.message}" for event in events]


def test_enforcement_rejects_privileged_pod(cluster: ControlPlane, restricted_namespace: str) -> None:
    privileged = {"containers": [{"name": "root", "image": "busybox", "securityContext": {"privileged": True}}]}

    with cluster.api_client() as api_client, pytest.raises(ApiException) as raised:
        dry_run_pod(api_client, restricted_namespace, privileged, "privileged")

    assert raised.value.status == 403
    assert "violates PodSecurity" in raised.value.body


@pytest.mark.parametrize("gpus", [0, 1, 2])
def test_trainer_job_pods_admitted(
    cluster: ControlPlane, crds_installed: None, restricted_namespace: str, gpus: int
) -> None:
    name = f"restricted-{gpus}"
    with cluster.api_client() as api_client:
        trainings = Trainings(api_client, restricted_namespace)
        created = trainings.create(training_manifest(name, resources={"gpus": gpus, "cpu": "1", "memory": "1Gi"}))
        ref = TrainingRef(namespace=restricted_namespace, name=name, uid=created["metadata"]["uid"])
        spec = LoRATrainingSpec.model_validate(created["spec"])
        settings = OperatorSettings(trainer_image="lora-trainer:test")
        config = trainer_config(ref, spec, attempt=1, overrides=AttemptOverrides(), settings=settings)
        job = render_job(ref, spec, attempt=1, settings=settings)

        dry_run_pod(api_client, restricted_namespace, job["spec"]["template"]["spec"], f"{name}-dry-run")
        trainings.core.create_namespaced_config_map(restricted_namespace, render_config_map(ref, config))
        trainings.batch.create_namespaced_job(restricted_namespace, job)
        pod = poll_until(
            lambda: next(iter(trainings.pods_of(job["metadata"]["name"])), None),
            timeout=60, description=f"a pod of Job {job['metadata']['name']}",
            last_state=lambda: pod_events(api_client, restricted_namespace),
        )

    assert pod.spec.security_context.run_as_non_root is True


def test_operator_pod_admitted(
    cluster: ControlPlane, cluster_helm: Helm, restricted_namespace: str
) -> None:
    create_s3_secret(cluster, restricted_namespace, access_key="unused", secret_key="unused")
    release = "restricted"
    rendered = cluster_helm.template(namespace=restricted_namespace, release=release)
    pod_spec = find_object(rendered, "Deployment")["spec"]["template"]["spec"]

    cluster_helm.run("install", release, str(CHART_DIR), "--namespace", restricted_namespace)
    try:
        with cluster.api_client() as api_client:
            # The dry run names the violations at once, where a rejected pod only shows as missing.
            dry_run_pod(api_client, restricted_namespace, pod_spec, "operator-dry-run")
            core = client.CoreV1Api(api_client)
            pod = poll_until(
                lambda: next(iter(core.list_namespaced_pod(
                    restricted_namespace, label_selector=f"app.kubernetes.io/instance={release}").items), None),
                timeout=60, description="the operator pod", last_state=lambda: pod_events(api_client, restricted_namespace),
            )
    finally:
        cluster_helm.run("uninstall", release, "--namespace", restricted_namespace)

    assert pod.spec.service_account_name == f"{release}-lora-operator"

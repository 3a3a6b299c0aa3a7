"""helm install, upgrade and uninstall of the chart on the test control plane.

kwok runs the chart's operator pod but no container in it. For the operator's own
behaviour, a test runs `lora-operator run` here with a token of the chart's
ServiceAccount, so every API call goes through the chart's RBAC.
"""

from __future__ import annotations

import os
import secrets
import textwrap
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import yaml
from kubernetes import client

from tests.cluster.operator.conftest import OperatorProcess, Trainings, training_manifest
from tests.harness.ports import free_ports
from tests.harness.seaweed import SeaweedS3
from tests.harness.stack import ControlPlane
from tests.harness.waiting import poll_until
from tests.helm.conftest import create_s3_secret
from tests.helm.helm_cli import CHART_DIR, Helm, HelmError, set_values
from tests.helm.service_account import can_i, write_service_account_kubeconfig

pytestmark = pytest.mark.cluster

CRD_NAMES = ("loratrainings.lora-operator.io", "notionsources.lora-operator.io")
INSTALL_TIMEOUT = "120s"


@dataclass
class Release:
    """A helm release of the chart in its own namespace."""

    name: str
    namespace: str
    helm: Helm
    base_values: dict[str, str]

    @property
    def fullname(self) -> str:
        return f"{self.name}-lora-operator"

    @property
    def selector(self) -> str:
        """Label selector of the release's objects."""
        return f"app.kubernetes.io/instance={self.name}"

    def install(self, **values: str) -> str:
        """helm install --wait with the base values plus values; return helm's output (with NOTES)."""
        return self._apply("install", values)

    def upgrade(self, **values: str) -> str:
        return self._apply("upgrade", values)

    def uninstall(self) -> None:
        self.helm.run("uninstall", self.name, "--namespace", self.namespace, "--wait", "--timeout", INSTALL_TIMEOUT)

    def _apply(self, command: str, values: dict[str, str]) -> str:
        merged = {**self.base_values, **{key.replace("__", "."): value for key, value in values.items()}}
        result = self.helm.run(
            command, self.name, str(CHART_DIR), "--namespace", self.namespace,
            "--wait", "--timeout", INSTALL_TIMEOUT, *set_values(merged),
        )
        return result.stdout


@pytest.fixture
def release(cluster: ControlPlane, cluster_helm: Helm, namespace: str, s3: SeaweedS3, s3_bucket: str) -> Iterator[Release]:
    create_s3_secret(cluster, namespace, access_key=s3.access_key, secret_key=s3.secret_key)
    # ClusterRoles are cluster-scoped, so each release needs a name of its own.
    handle = Release(
        name=f"lora-{secrets.token_hex(3)}",
        namespace=namespace,
        helm=cluster_helm,
        base_values={
            "s3.endpoint": s3.endpoint,
            "s3.secure": "false",
            "s3.bucket": s3_bucket,
            "trainer.image.repository": "lora-trainer",
            "trainer.image.tag": "test",
        },
    )
    yield handle
    handle.helm.run("uninstall", handle.name, "--namespace", namespace, "--ignore-not-found")


def deployment_env(api_client: client.ApiClient, release: Release) -> dict[str, str]:
    deployment = client.AppsV1Api(api_client).read_namespaced_deployment(release.fullname, release.namespace)
    return {entry.name: entry.value for entry in deployment.spec.template.spec.containers[0].env}


def test_install_brings_up_operator(cluster: ControlPlane, release: Release) -> None:
    release.install()

    with cluster.api_client() as api_client:
        extensions = client.ApiextensionsV1Api(api_client)
        for name in CRD_NAMES:
            crd = extensions.read_custom_resource_definition(name)
            conditions = {item.type: item.status for item in crd.status.conditions}
            assert conditions.get("Established") == "True", f"CRD {name} not Established: {conditions}"
        core = client.CoreV1Api(api_client)
        rbac = client.RbacAuthorizationV1Api(api_client)
        assert core.read_namespaced_service_account(release.fullname, release.namespace)
        assert rbac.read_namespaced_role(release.fullname, release.namespace).rules
        assert rbac.read_namespaced_role_binding(release.fullname, release.namespace).subjects[0].name == release.fullname
        deployment = client.AppsV1Api(api_client).read_namespaced_deployment(release.fullname, release.namespace)
        assert deployment.status.ready_replicas == 1
        pods = core.list_namespaced_pod(release.namespace, label_selector=release.selector).items
        assert [pod.status.phase for pod in pods] == ["Running"]
        assert pods[0].spec.node_name.startswith("kwok-")


def test_install_rejects_invalid_values(cluster: ControlPlane, release: Release) -> None:
    with pytest.raises(HelmError) as raised:
        release.install(s3__secure="sometimes")

    assert "at '/s3/secure': got string, want boolean" in str(raised.value)
    with cluster.api_client() as api_client:
        assert client.AppsV1Api(api_client).list_namespaced_deployment(release.namespace).items == []


def test_notes_training_passes_api_validation(cluster: ControlPlane, release: Release) -> None:
    output = release.install()

    notes = output.partition("NOTES:")[2]
    manifest_text = textwrap.dedent(notes.split("cat <<'YAML'", 1)[1].split("\n", 1)[1].split("  YAML", 1)[0])
    manifest = yaml.safe_load(manifest_text)
    with cluster.api_client() as api_client:
        created = client.CustomObjectsApi(api_client).create_namespaced_custom_object(
            "lora-operator.io", "v1alpha1", release.namespace, "loratrainings", manifest, dry_run="All"
        )
    assert created["spec"]["baseModel"] == "builtin://tiny-sd"


def test_chart_rbac_limits_operator(cluster: ControlPlane, release: Release, tmp_path: Path) -> None:
    release.install()
    kubeconfig = write_service_account_kubeconfig(
        cluster, namespace=release.namespace, name=release.fullname, path=tmp_path / "operator.kubeconfig"
    )

    def allowed(verb: str, resource: str, *, group: str = "", name: str = "", namespace: str = release.namespace) -> bool:
        return can_i(kubeconfig, verb=verb, resource=resource, group=group, name=name, namespace=namespace)

    assert allowed("create", "jobs", group="batch")
    assert allowed("patch", "loratrainings/status", group="lora-operator.io")
    assert allowed("get", "secrets", name="lora-s3-credentials")
    assert not allowed("get", "secrets", name="someone-elses-secret")
    assert not allowed("list", "secrets")
    assert not allowed("create", "jobs", group="batch", namespace="kube-system")
    assert not allowed("list", "loratrainings", group="lora-operator.io", namespace="default")
    assert not allowed("delete", "loratrainings", group="lora-operator.io")
    assert allowed("update", "leases", group="coordination.k8s.io")
    assert not allowed("update", "leases", group="coordination.k8s.io", namespace="kube-system")


def test_operator_reconciles_with_chart_token(
    cluster: ControlPlane, release: Release, s3: SeaweedS3, tmp_path: Path
) -> None:
    release.install()
    kubeconfig = write_service_account_kubeconfig(
        cluster, namespace=release.namespace, name=release.fullname, path=tmp_path / "operator.kubeconfig"
    )
    environment = {
        **os.environ,
        "KUBECONFIG": str(kubeconfig),
        "LORA_OPERATOR_NAMESPACES": release.namespace,
        "LORA_OPERATOR_S3_ENDPOINT": s3.endpoint,
        "LORA_OPERATOR_S3_SECURE": "false",
        "LORA_OPERATOR_S3_BUCKET": release.base_values["s3.bucket"],
        "LORA_OPERATOR_PROGRESS_INTERVAL_SECONDS": "1",
        "LORA_OPERATOR_TRAINER_IMAGE": "lora-trainer:test",
        # As the chart's Deployment does: the Lease in the release namespace, with the chart's Role.
        "LORA_OPERATOR_LEADER_ELECTION": "true",
        "LORA_OPERATOR_LEADER_ELECTION_NAMESPACE": release.namespace,
        "AWS_ACCESS_KEY_ID": s3.access_key,
        "AWS_SECRET_ACCESS_KEY": s3.secret_key,
    }
    operator = OperatorProcess(environment=environment, log_path=tmp_path / "operator.log", ports=free_ports(2))
    operator.start()
    try:
        with cluster.api_client() as api_client:
            trainings = Trainings(api_client, release.namespace, operator)
            created = trainings.create(training_manifest("via-chart-rbac"))
            job = trainings.wait_job("via-chart-rbac-attempt-1")
            trainings.wait_pod_running("via-chart-rbac-attempt-1")
            running = trainings.wait_phase("via-chart-rbac", "Running")
            reasons = trainings.wait_event_reasons("via-chart-rbac", {"PodRunning"})
            config_map = trainings.core.read_namespaced_config_map("via-chart-rbac-attempt-1", release.namespace)
    finally:
        operator.stop()

    assert job.metadata.owner_references[0].uid == created["metadata"]["uid"]
    assert running["status"]["jobName"] == "via-chart-rbac-attempt-1"
    assert "PodRunning" in reasons
    assert config_map.metadata.owner_references[0].uid == created["metadata"]["uid"]
    assert "acquired Lease" in operator.log()
    # In namespaced mode the API server denies kopf's cluster-wide scans of namespaces and CRDs,
    # and kopf falls back to the given namespaces. The operator's own API calls must all pass.
    operator_lines = [line for line in operator.log().splitlines() if " lora_operator" in line]
    assert [line for line in operator_lines if "forbidden" in line.lower()] == []
    assert [line for line in operator_lines if "reconcile failed" in line] == []


def test_upgrade_applies_changed_values(cluster: ControlPlane, release: Release) -> None:
    release.install()

    release.upgrade(trainer__image__tag="v2", operator__workers="2", watch__clusterWide="true")

    with cluster.api_client() as api_client:
        environment = deployment_env(api_client, release)
        rbac = client.RbacAuthorizationV1Api(api_client)
        cluster_roles = rbac.list_cluster_role(label_selector=release.selector).items
        roles = rbac.list_namespaced_role(release.namespace, label_selector=release.selector).items
        deployment = client.AppsV1Api(api_client).read_namespaced_deployment(release.fullname, release.namespace)
    assert environment["LORA_OPERATOR_TRAINER_IMAGE"] == "lora-trainer:v2"
    assert environment["LORA_OPERATOR_WORKERS"] == "2"
    # The API server drops an empty env value, and the operator reads a missing one as empty.
    assert environment["LORA_OPERATOR_NAMESPACES"] is None
    assert [role.metadata.name for role in cluster_roles] == [release.fullname]
    # Only the Lease's Role stays namespaced; the training rules moved to the ClusterRole.
    assert [role.metadata.name for role in roles] == [f"{release.fullname}-leader-election"]
    assert deployment.status.ready_replicas == 1


def test_uninstall_keeps_crds_and_trainings(cluster: ControlPlane, release: Release) -> None:
    release.install()
    with cluster.api_client() as api_client:
        Trainings(api_client, release.namespace).create(training_manifest("outlives-release"))

    release.uninstall()

    with cluster.api_client() as api_client:
        apps = client.AppsV1Api(api_client)
        rbac = client.RbacAuthorizationV1Api(api_client)
        assert apps.list_namespaced_deployment(release.namespace).items == []
        assert rbac.list_namespaced_role(release.namespace).items == []
        core = client.CoreV1Api(api_client)
        accounts = [account.metadata.name for account in core.list_namespaced_service_account(release.namespace).items]
        assert release.fullname not in accounts
        extensions = client.ApiextensionsV1Api(api_client)
        for name in CRD_NAMES:
            assert extensions.read_custom_resource_definition(name).metadata.name == name
        training = Trainings(api_client, release.namespace).get("outlives-release")
        assert training["metadata"]["name"] == "outlives-release"
        poll_until(
            lambda: not core.list_namespaced_pod(release.namespace, label_selector=release.selector).items,
            timeout=60, description="operator pod deleted after uninstall",
        )

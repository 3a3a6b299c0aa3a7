"""Fixtures for the Helm chart: the pinned helm binary, offline and against the test control plane."""

from __future__ import annotations

import base64

import pytest
from kubernetes import client

from tests.harness.fixtures import ensure_components_built
from tests.harness.stack import ControlPlane
from tests.helm.helm_cli import Helm

S3_SECRET_NAME = "lora-s3-credentials"


@pytest.fixture(scope="session")
def helm(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Helm:
    """helm without a cluster, for lint and template."""
    bin_dir = ensure_components_built(request.config)
    return Helm(binary=bin_dir / "helm", home=tmp_path_factory.mktemp("helm-home"))


@pytest.fixture(scope="session")
def cluster_helm(cluster: ControlPlane, tmp_path_factory: pytest.TempPathFactory) -> Helm:
    """helm that installs into the test control plane as a cluster admin."""
    return Helm(binary=cluster.bin_dir / "helm", home=tmp_path_factory.mktemp("helm-home"), kubeconfig=cluster.kubeconfig)


def create_s3_secret(cluster: ControlPlane, namespace: str, *, access_key: str, secret_key: str) -> str:
    """Create the S3 credentials Secret that the chart's Deployment and the trainer Jobs read."""
    data = {"AWS_ACCESS_KEY_ID": access_key, "AWS_SECRET_ACCESS_KEY": secret_key}
    body = {
        "metadata": {"name": S3_SECRET_NAME},
        "data": {key: base64.b64encode(value.encode()).decode() for key, value in data.items()},
    }
    with cluster.api_client() as api_client:
        client.CoreV1Api(api_client).create_namespaced_secret(namespace, body)
    return S3_SECRET_NAME

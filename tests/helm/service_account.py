"""Acting as a ServiceAccount: a TokenRequest token in a kubeconfig, and access reviews with it."""

from __future__ import annotations

from pathlib import Path

import yaml
from kubernetes import client, config

from tests.harness.stack import ControlPlane

TOKEN_SECONDS = 3600


def write_service_account_kubeconfig(cluster: ControlPlane, *, namespace: str, name: str, path: Path) -> Path:
    """Write a kubeconfig that authenticates as ServiceAccount namespace/name with a TokenRequest token."""
    request = client.AuthenticationV1TokenRequest(spec=client.V1TokenRequestSpec(
        audiences=[], expiration_seconds=TOKEN_SECONDS,
    ))
    with cluster.api_client() as admin:
        token = client.CoreV1Api(admin).create_namespaced_service_account_token(name, namespace, request).status.token

    user = f"system:serviceaccount:{namespace}:{name}"
    document = {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [{"name": "test", "cluster": {"server": cluster.server, "certificate-authority": str(cluster.ca_file)}}],
        "users": [{"name": user, "user": {"token": token}}],
        "contexts": [{"name": "test", "context": {"cluster": "test", "user": user, "namespace": namespace}}],
        "current-context": "test",
    }
    path.write_text(yaml.safe_dump(document, sort_keys=False))
    path.chmod(0o600)
    return path


def can_i(kubeconfig: Path, *, verb: str, resource: str, namespace: str, group: str = "", name: str = "") -> bool:
    """Ask the API server, as the kubeconfig's user, whether it may do verb on resource."""
    attributes = client.V1ResourceAttributes(
        verb=verb, resource=resource, group=group, namespace=namespace, name=name or None
    )
    review = client.V1SelfSubjectAccessReview(spec=client.V1SelfSubjectAccessReviewSpec(resource_attributes=attributes))
    with config.new_client_from_config(config_file=str(kubeconfig)) as api_client:
        return client.AuthorizationV1Api(api_client).create_self_subject_access_review(review).status.allowed

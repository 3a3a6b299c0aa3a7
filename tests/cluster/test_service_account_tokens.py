"""Service-account tokens signed by kube-apiserver authenticate API requests."""

from __future__ import annotations

import pytest
from kubernetes import client

from tests.harness.stack import ControlPlane

pytestmark = pytest.mark.cluster


def test_service_account_token_authenticates(cluster: ControlPlane, namespace: str) -> None:
    with cluster.api_client() as admin_client:
        token_request = client.AuthenticationV1TokenRequest(spec=client.V1TokenRequestSpec(audiences=[]))
        token = client.CoreV1Api(admin_client).create_namespaced_service_account_token(
            "default", namespace, token_request
        ).status.token

    configuration = client.Configuration()
    configuration.host = cluster.server
    configuration.ssl_ca_cert = str(cluster.ca_file)
    configuration.api_key = {"authorization": token}
    configuration.api_key_prefix = {"authorization": "Bearer"}
    with client.ApiClient(configuration) as token_client:
        review = client.AuthenticationV1Api(token_client).create_self_subject_review(
            client.V1SelfSubjectReview()
        )

    assert review.status.user_info.username == f"system:serviceaccount:{namespace}:default"
    assert "system:serviceaccounts" in review.status.user_info.groups

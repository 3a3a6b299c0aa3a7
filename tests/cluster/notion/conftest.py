"""Fixtures of the Notion cluster tests: the real operator process, talking to the local Notion server."""

from __future__ import annotations

import base64
from typing import Any

import pytest
from kubernetes import client

from tests.cluster.operator.conftest import (  # noqa: F401 - pytest fixtures
    REPO,
    OperatorProcess,
    api,
    crds_installed,
    operator,
    s3_secret,
    trainings,
)
from tests.harness.waiting import poll_until
from tests.notion_server.fixtures import lora_database, notion_server  # noqa: F401 - pytest fixtures
from tests.notion_server.lora_database import LoraDatabase

GROUP, VERSION = "lora-operator.io", "v1alpha1"
SOURCE_PLURAL = "notionsources"
TOKEN_SECRET = "notion-token"
PAGE_LABEL = "lora-operator.io/notion-page"


@pytest.fixture(scope="session")
def notion_crd_installed(cluster) -> None:
    cluster.apply_file(REPO / "crds" / "notionsource.yaml")


@pytest.fixture
def notion_environment(monkeypatch, notion_server) -> None:
    """Point the operator process, which copies this environment, at the local Notion server."""
    monkeypatch.setenv("LORA_OPERATOR_NOTION_API_URL", notion_server.base_url)
    monkeypatch.setenv("LORA_OPERATOR_NOTION_REQUESTS_PER_SECOND", "10")
    monkeypatch.setenv("LORA_OPERATOR_NOTION_BACKOFF_SECONDS", "0.2")


@pytest.fixture
def notion_operator(notion_environment, notion_crd_installed, operator) -> OperatorProcess:
    return operator


@pytest.fixture
def notion_token(api, namespace, lora_database) -> str:
    """The Secret with the integration token, as an admin creates it."""
    client.CoreV1Api(api).create_namespaced_secret(namespace, {
        "metadata": {"name": TOKEN_SECRET},
        "data": {"token": base64.b64encode(lora_database.token.encode()).decode()},
    })
    return TOKEN_SECRET


class NotionSources:
    """Helpers over NotionSources and the trainings they create, in one namespace."""

    def __init__(self, api_client: client.ApiClient, namespace: str, database: LoraDatabase,
                 operator: OperatorProcess) -> None:
        self.custom = client.CustomObjectsApi(api_client)
        self.namespace = namespace
        self.database = database
        self.operator = operator

    def create(self, manifest: dict[str, Any]) -> dict[str, Any]:
        manifest["metadata"]["namespace"] = self.namespace
        return self.custom.create_namespaced_custom_object(GROUP, VERSION, self.namespace, SOURCE_PLURAL, manifest)

    def get(self, name: str) -> dict[str, Any]:
        return self.custom.get_namespaced_custom_object(GROUP, VERSION, self.namespace, SOURCE_PLURAL, name)

    def trainings_of(self, page_id: str) -> list[dict[str, Any]]:
        selector = f"{PAGE_LABEL}={page_id.replace('-', '')}"
        return self.custom.list_namespaced_custom_object(GROUP, VERSION, self.namespace, "loratrainings",
                                                         label_selector=selector)["items"]

    def all_trainings(self) -> list[dict[str, Any]]:
        return self.custom.list_namespaced_custom_object(GROUP, VERSION, self.namespace, "loratrainings",
                                                         label_selector=PAGE_LABEL)["items"]

    def wait_training(self, page_id: str, *, timeout: float = 90) -> dict[str, Any]:
        found = poll_until(lambda: self.trainings_of(page_id), timeout=timeout,
                           description=f"a LoRATraining for page {page_id}", last_state=self.log_tail)
        return found[0]

    def wait_row(self, page_id: str, check, *, description: str, timeout: float = 90) -> None:
        poll_until(lambda: check(page_id), timeout=timeout, description=description,
                   last_state=lambda: f"row={self.database.server.workspace.page_values(page_id)}\n{self.log_tail()}")

    def wait_status(self, page_id: str, status: str, *, timeout: float = 90) -> None:
        self.wait_row(page_id, lambda page: self.database.value(page, "状态") == status,
                      description=f"row {page_id} status {status}", timeout=timeout)

    def log_tail(self) -> str:
        return self.operator.log()[-4000:]


@pytest.fixture
def notion_sources(api, namespace, lora_database, notion_operator, notion_token) -> NotionSources:
    return NotionSources(api, namespace, lora_database, notion_operator)

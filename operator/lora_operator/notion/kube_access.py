"""The Kubernetes calls of the Notion integration: NotionSources, their token Secrets and trainings."""

from __future__ import annotations

import base64
from typing import Any

from kubernetes.client.exceptions import ApiException

from lora_operator.api.base import API_GROUP, API_VERSION
from lora_operator.kube import AlreadyExists, Kube, KubeError, NotFound, PLURAL, REQUEST_TIMEOUT_SECONDS
from lora_operator.notion import keys

SOURCE_PLURAL = "notionsources"


def _translate(error: ApiException, what: str) -> KubeError:
    message = f"{what}: {error.status} {error.reason}"
    if error.status == 404:
        return NotFound(message, status=404)
    if error.status == 409:
        return AlreadyExists(message, status=409)
    return KubeError(message, status=error.status or 0)


class NotionKube:
    """Typed access to what the Notion integration reads and writes in the cluster."""

    def __init__(self, kube: Kube) -> None:
        self.custom = kube.custom
        self.core = kube.core

    def read_secret_key(self, namespace: str, name: str, key: str) -> str:
        """Return one decoded key of a Secret; the error names the Secret and key, never the value."""
        try:
            secret = self.core.read_namespaced_secret(name, namespace, _request_timeout=REQUEST_TIMEOUT_SECONDS)
        except ApiException as error:
            raise _translate(error, f"read Secret {namespace}/{name}") from error
        data = secret.data or {}
        if key not in data:
            raise NotFound(f"Secret {namespace}/{name} has no key {key!r}; add it or set spec.tokenSecret.key", status=404)
        return base64.b64decode(data[key]).decode().strip()

    def find_training_for_page(self, namespace: str, page_hex: str) -> str | None:
        """Return the name of the training labelled with this page id, or None."""
        try:
            listed = self.custom.list_namespaced_custom_object(
                API_GROUP, API_VERSION, namespace, PLURAL, label_selector=f"{keys.LABEL_PAGE}={page_hex}",
                _request_timeout=REQUEST_TIMEOUT_SECONDS,
            )
        except ApiException as error:
            raise _translate(error, f"list LoRATrainings of Notion page {page_hex}") from error
        names = sorted(item["metadata"]["name"] for item in listed["items"])
        return names[0] if names else None

    def create_training(self, manifest: dict[str, Any]) -> None:
        namespace, name = manifest["metadata"]["namespace"], manifest["metadata"]["name"]
        try:
            self.custom.create_namespaced_custom_object(
                API_GROUP, API_VERSION, namespace, PLURAL, manifest, _request_timeout=REQUEST_TIMEOUT_SECONDS
            )
        except ApiException as error:
            raise _translate(error, f"create LoRATraining {namespace}/{name}") from error

    def get_training(self, namespace: str, name: str) -> dict[str, Any]:
        try:
            return self.custom.get_namespaced_custom_object(
                API_GROUP, API_VERSION, namespace, PLURAL, name, _request_timeout=REQUEST_TIMEOUT_SECONDS
            )
        except ApiException as error:
            raise _translate(error, f"get LoRATraining {namespace}/{name}") from error

    def list_source_trainings(self, namespace: str, source_name: str) -> list[dict[str, Any]]:
        selector = f"{keys.LABEL_SOURCE}={keys.source_label(source_name)}"
        try:
            return self.custom.list_namespaced_custom_object(
                API_GROUP, API_VERSION, namespace, PLURAL, label_selector=selector,
                _request_timeout=REQUEST_TIMEOUT_SECONDS,
            )["items"]
        except ApiException as error:
            raise _translate(error, f"list LoRATrainings of NotionSource {source_name}") from error

    def annotate_training(self, namespace: str, name: str, annotations: dict[str, str]) -> None:
        try:
            self.custom.patch_namespaced_custom_object(
                API_GROUP, API_VERSION, namespace, PLURAL, name, {"metadata": {"annotations": annotations}},
                _request_timeout=REQUEST_TIMEOUT_SECONDS,
            )
        except ApiException as error:
            raise _translate(error, f"annotate LoRATraining {namespace}/{name}") from error

    def patch_source_status(self, namespace: str, name: str, status: dict[str, Any]) -> None:
        try:
            self.custom.patch_namespaced_custom_object_status(
                API_GROUP, API_VERSION, namespace, SOURCE_PLURAL, name, {"status": status},
                _request_timeout=REQUEST_TIMEOUT_SECONDS,
            )
        except ApiException as error:
            raise _translate(error, f"patch status of NotionSource {namespace}/{name}") from error

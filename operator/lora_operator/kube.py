"""The Kubernetes calls the operator makes, over the official client, with named errors."""

from __future__ import annotations

import json
from datetime import datetime, timezone
from typing import Any, Callable

from kubernetes import client
from kubernetes.client.exceptions import ApiException

from lora_operator.api.base import API_GROUP, API_VERSION

PLURAL = "loratrainings"
REQUEST_TIMEOUT_SECONDS = 15


class KubeError(RuntimeError):
    """A Kubernetes API call failed; ``status`` is the HTTP status."""

    def __init__(self, message: str, *, status: int) -> None:
        super().__init__(message)
        self.status = status


class NotFound(KubeError):
    """The object does not exist (HTTP 404)."""


class AlreadyExists(KubeError):
    """An object of that name exists already (HTTP 409)."""


def _translate(error: ApiException, what: str) -> KubeError:
    message = f"{what}: {error.status} {error.reason}"
    if error.status == 404:
        return NotFound(message, status=404)
    if error.status == 409:
        return AlreadyExists(message, status=409)
    return KubeError(message, status=error.status or 0)


def now_rfc3339() -> str:
    return datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


class Kube:
    """Typed access to the objects a training owns. Every call has a request timeout."""

    def __init__(self, api_client: client.ApiClient, *, on_request: Callable[[str, str], None] | None = None) -> None:
        self.api_client = api_client
        self._on_request = on_request or (lambda verb, resource: None)
        self.batch = client.BatchV1Api(api_client)
        self.core = client.CoreV1Api(api_client)
        self.custom = client.CustomObjectsApi(api_client)

    @staticmethod
    def _json(response: Any) -> Any:
        """Parse a response fetched with _preload_content=False.

        This skips the client's model objects and their conversion back to dicts, which cost
        CPU time in a burst of new trainings.
        """
        try:
            return json.loads(response.data)
        finally:
            response.release_conn()

    def get_training(self, namespace: str, name: str) -> dict[str, Any]:
        self._on_request("get", "loratrainings")
        try:
            return self.custom.get_namespaced_custom_object(
                API_GROUP, API_VERSION, namespace, PLURAL, name, _request_timeout=REQUEST_TIMEOUT_SECONDS
            )
        except ApiException as error:
            raise _translate(error, f"get LoRATraining {namespace}/{name}") from error

    def list_trainings(self, namespaces: list[str]) -> list[dict[str, Any]]:
        """List trainings in ``namespaces``, or in the whole cluster when the list is empty."""
        self._on_request("list", "loratrainings")
        try:
            if not namespaces:
                return self.custom.list_cluster_custom_object(
                    API_GROUP, API_VERSION, PLURAL, _request_timeout=REQUEST_TIMEOUT_SECONDS
                )["items"]
            items: list[dict[str, Any]] = []
            for namespace in namespaces:
                items += self.custom.list_namespaced_custom_object(
                    API_GROUP, API_VERSION, namespace, PLURAL, _request_timeout=REQUEST_TIMEOUT_SECONDS
                )["items"]
            return items
        except ApiException as error:
            raise _translate(error, "list LoRATrainings") from error

    def patch_training_status(self, namespace: str, name: str, status: dict[str, Any]) -> None:
        self._on_request("patch", "loratrainings/status")
        try:
            self.custom.patch_namespaced_custom_object_status(
                API_GROUP, API_VERSION, namespace, PLURAL, name, {"status": status},
                _request_timeout=REQUEST_TIMEOUT_SECONDS,
            )
        except ApiException as error:
            raise _translate(error, f"patch status of LoRATraining {namespace}/{name}") from error

    def patch_training_metadata(self, namespace: str, name: str, metadata: dict[str, Any]) -> None:
        self._on_request("patch", "loratrainings")
        try:
            self.custom.patch_namespaced_custom_object(
                API_GROUP, API_VERSION, namespace, PLURAL, name, {"metadata": metadata},
                _request_timeout=REQUEST_TIMEOUT_SECONDS,
            )
        except ApiException as error:
            raise _translate(error, f"patch metadata of LoRATraining {namespace}/{name}") from error

    def get_job(self, namespace: str, name: str) -> dict[str, Any] | None:
        self._on_request("get", "jobs")
        try:
            response = self.batch.read_namespaced_job(
                name, namespace, _request_timeout=REQUEST_TIMEOUT_SECONDS, _preload_content=False
            )
            return self._json(response)
        except ApiException as error:
            if error.status == 404:
                return None
            raise _translate(error, f"get Job {namespace}/{name}") from error

    def create_job(self, job: dict[str, Any]) -> dict[str, Any]:
        self._on_request("create", "jobs")
        namespace = job["metadata"]["namespace"]
        try:
            response = self.batch.create_namespaced_job(
                namespace, job, _request_timeout=REQUEST_TIMEOUT_SECONDS, _preload_content=False
            )
        except ApiException as error:
            raise _translate(error, f"create Job {namespace}/{job['metadata']['name']}") from error
        return self._json(response)

    def delete_job(self, namespace: str, name: str) -> None:
        """Delete a Job and, in the background, its pods, which get their termination grace period."""
        self._on_request("delete", "jobs")
        try:
            self.batch.delete_namespaced_job(
                name, namespace, propagation_policy="Background", _request_timeout=REQUEST_TIMEOUT_SECONDS
            )
        except ApiException as error:
            if error.status != 404:
                raise _translate(error, f"delete Job {namespace}/{name}") from error

    def list_job_pods(self, namespace: str, job_name: str) -> list[dict[str, Any]]:
        self._on_request("list", "pods")
        try:
            response = self.core.list_namespaced_pod(
                namespace, label_selector=f"job-name={job_name}", _request_timeout=REQUEST_TIMEOUT_SECONDS,
                _preload_content=False,
            )
        except ApiException as error:
            raise _translate(error, f"list pods of Job {namespace}/{job_name}") from error
        return self._json(response)["items"]

    def create_config_map(self, config_map: dict[str, Any]) -> None:
        self._on_request("create", "configmaps")
        namespace = config_map["metadata"]["namespace"]
        try:
            response = self.core.create_namespaced_config_map(
                namespace, config_map, _request_timeout=REQUEST_TIMEOUT_SECONDS, _preload_content=False
            )
            self._json(response)
        except ApiException as error:
            raise _translate(error, f"create ConfigMap {namespace}/{config_map['metadata']['name']}") from error

    def create_event(
        self, *, involved: dict[str, Any], event_type: str, reason: str, message: str
    ) -> None:
        """Record a core/v1 Event on the training, shown by `kubectl describe`."""
        metadata = involved["metadata"]
        timestamp = now_rfc3339()
        self._on_request("create", "events")
        event = {
            "apiVersion": "v1",
            "kind": "Event",
            "metadata": {"generateName": f"{metadata['name']}.", "namespace": metadata["namespace"]},
            "involvedObject": {
                "apiVersion": involved.get("apiVersion", f"{API_GROUP}/{API_VERSION}"),
                "kind": involved.get("kind", "LoRATraining"),
                "name": metadata["name"],
                "namespace": metadata["namespace"],
                "uid": metadata.get("uid"),
            },
            "type": event_type,
            "reason": reason,
            "message": message[:1024],
            "source": {"component": "lora-operator"},
            "firstTimestamp": timestamp,
            "lastTimestamp": timestamp,
            "count": 1,
        }
        try:
            response = self.core.create_namespaced_event(
                metadata["namespace"], event, _request_timeout=REQUEST_TIMEOUT_SECONDS, _preload_content=False
            )
            self._json(response)
        except ApiException as error:
            raise _translate(error, f"create Event for {metadata['namespace']}/{metadata['name']}") from error

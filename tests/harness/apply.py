"""Server-side apply of YAML manifests through the Kubernetes dynamic client."""

from __future__ import annotations

import time
from pathlib import Path

import yaml
from kubernetes import client, dynamic
from kubernetes.dynamic.exceptions import ResourceNotFoundError

FIELD_MANAGER = "lora-operator-tests"
CRD_ESTABLISHED_TIMEOUT_SECONDS = 60.0


def load_documents(path: Path) -> list[dict]:
    """Return the non-empty YAML documents of path."""
    with open(path) as stream:
        return [document for document in yaml.safe_load_all(stream) if document]


def _find_resource(dynamic_client: dynamic.DynamicClient, api_version: str, kind: str) -> dynamic.Resource:
    try:
        return dynamic_client.resources.get(api_version=api_version, kind=kind)
    except ResourceNotFoundError:
        # Discovery is cached; a kind from a CRD applied a moment ago needs a
        # fresh look.
        dynamic_client.resources.invalidate_cache()
        return dynamic_client.resources.get(api_version=api_version, kind=kind)


def apply_objects(
    api_client: client.ApiClient,
    objects: list[dict],
    *,
    namespace: str | None = None,
    cache_file: Path | None = None,
) -> list[dict]:
    """Server-side apply each object in order; namespaced objects without one go to namespace."""
    dynamic_client = dynamic.DynamicClient(api_client, cache_file=str(cache_file) if cache_file else None)
    applied = []
    for manifest in objects:
        api_version, kind = manifest.get("apiVersion"), manifest.get("kind")
        name = manifest.get("metadata", {}).get("name")
        if not api_version or not kind or not name:
            raise ValueError(f"manifest needs apiVersion, kind and metadata.name; got {manifest!r:.200}")
        resource = _find_resource(dynamic_client, api_version, kind)
        target_namespace = None
        if resource.namespaced:
            target_namespace = manifest.get("metadata", {}).get("namespace") or namespace
            if not target_namespace:
                raise ValueError(f"{kind} {name} is namespaced; set metadata.namespace or pass namespace=")
        result = resource.server_side_apply(
            body=manifest,
            name=name,
            namespace=target_namespace,
            field_manager=FIELD_MANAGER,
            force_conflicts=True,
        )
        applied.append(result.to_dict())
    return applied


def apply_file(
    api_client: client.ApiClient,
    path: Path,
    *,
    namespace: str | None = None,
    cache_file: Path | None = None,
) -> list[dict]:
    """Server-side apply every document of the YAML file at path."""
    documents = load_documents(path)
    if not documents:
        raise ValueError(f"{path} contains no YAML document to apply")
    return apply_objects(api_client, documents, namespace=namespace, cache_file=cache_file)


def wait_for_crd_established(
    api_client: client.ApiClient,
    name: str,
    *,
    timeout: float = CRD_ESTABLISHED_TIMEOUT_SECONDS,
) -> client.V1CustomResourceDefinition:
    """Wait until the CRD named name has condition Established=True; raise TimeoutError with its conditions."""
    extensions = client.ApiextensionsV1Api(api_client)
    deadline = time.monotonic() + timeout
    while True:
        crd = extensions.read_custom_resource_definition(name)
        conditions = {condition.type: condition for condition in crd.status.conditions or []}
        established = conditions.get("Established")
        if established is not None and established.status == "True":
            return crd
        if time.monotonic() >= deadline:
            summary = {kind: (c.status, c.reason, c.message) for kind, c in conditions.items()}
            raise TimeoutError(f"CRD {name} not Established after {timeout:.0f} s; conditions: {summary}")
        time.sleep(0.2)

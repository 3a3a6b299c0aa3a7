"""The project's CustomResourceDefinitions install on a real kube-apiserver."""

from __future__ import annotations

from pathlib import Path

import pytest
from kubernetes import dynamic

from tests.harness.apply import load_documents, wait_for_crd_established
from tests.harness.stack import ControlPlane

CRD_DIR = Path(__file__).resolve().parents[2] / "crds"

pytestmark = pytest.mark.cluster


def test_crd_files_become_established(cluster: ControlPlane, namespace: str) -> None:
    crd_files = sorted(CRD_DIR.glob("*.yaml"))
    assert crd_files, f"no CRD files (*.yaml) in {CRD_DIR}"

    for path in crd_files:
        documents = load_documents(path)
        crds = [document for document in documents if document.get("kind") == "CustomResourceDefinition"]
        assert crds, f"{path} contains no CustomResourceDefinition"

        cluster.apply_file(path)

        with cluster.api_client() as api_client:
            for crd in crds:
                name = crd["metadata"]["name"]
                established = wait_for_crd_established(api_client, name)
                group = established.spec.group
                kind = established.spec.names.kind
                served = [version.name for version in established.spec.versions if version.served]
                assert served, f"CRD {name} serves no version"

                # An Established CRD must also be found through discovery and
                # listable; the new namespace of the test contains no objects yet.
                resources = dynamic.DynamicClient(api_client).resources
                for version in served:
                    resource = resources.get(api_version=f"{group}/{version}", kind=kind)
                    listed = resource.get(namespace=namespace) if resource.namespaced else resource.get()
                    assert isinstance(listed.items, list), f"{kind} {group}/{version}: list returned {listed!r}"
                    if resource.namespaced:
                        assert listed.items == [], f"{kind} in new namespace {namespace}: expected none, got {listed.items}"


def test_crd_apply_is_idempotent(cluster: ControlPlane) -> None:
    crd_files = sorted(CRD_DIR.glob("*.yaml"))
    assert crd_files, f"no CRD files (*.yaml) in {CRD_DIR}"

    for path in crd_files:
        first = cluster.apply_file(path)
        second = cluster.apply_file(path)
        first_generations = [obj["metadata"]["generation"] for obj in first]
        second_generations = [obj["metadata"]["generation"] for obj in second]
        assert second_generations == first_generations, f"re-applying {path} changed the spec"

"""The parts every CustomResourceDefinition of this project shares: the document and the status schema."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel

from lora_operator.api.base import API_GROUP, API_VERSION
from lora_operator.schema import structural_schema


def status_schema(model: type[BaseModel]) -> dict[str, Any]:
    """Return the structural schema of a status model whose conditions are keyed by type."""
    schema = structural_schema(model)
    # Conditions are keyed by type, so server-side apply merges them entry by entry.
    conditions = schema["properties"]["conditions"]
    conditions["x-kubernetes-list-type"] = "map"
    conditions["x-kubernetes-list-map-keys"] = ["type"]
    conditions["items"]["required"] = ["type", "status"]
    # The operator may add status fields before a CRD upgrade; keep them instead of pruning.
    schema["x-kubernetes-preserve-unknown-fields"] = True
    return schema


def custom_resource_definition(
    *,
    kind: str,
    plural: str,
    short_names: list[str],
    description: str,
    printer_columns: list[dict[str, Any]],
    spec_schema: dict[str, Any],
    status: dict[str, Any],
) -> dict[str, Any]:
    """Return a namespaced, single-version CRD of group lora-operator.io with a status subresource."""
    return {
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {"name": f"{plural}.{API_GROUP}"},
        "spec": {
            "group": API_GROUP,
            "scope": "Namespaced",
            "names": {
                "kind": kind,
                "listKind": f"{kind}List",
                "plural": plural,
                "singular": kind.lower(),
                "shortNames": short_names,
                "categories": ["lora"],
            },
            "versions": [
                {
                    "name": API_VERSION,
                    "served": True,
                    "storage": True,
                    "subresources": {"status": {}},
                    "additionalPrinterColumns": printer_columns,
                    "schema": {
                        "openAPIV3Schema": {
                            "type": "object",
                            "description": description,
                            "required": ["spec"],
                            "properties": {
                                "apiVersion": {"type": "string"},
                                "kind": {"type": "string"},
                                "metadata": {"type": "object"},
                                "spec": spec_schema,
                                "status": status,
                            },
                        }
                    },
                }
            ],
        },
    }

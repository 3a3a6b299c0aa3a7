"""The NotionSource CRD, generated from the pydantic models like the LoRATraining CRD."""

from __future__ import annotations

from typing import Any

from lora_operator.api.notion_source import NotionSourceSpec, NotionSourceStatus
from lora_operator.crd_document import custom_resource_definition, status_schema
from lora_operator.api.training_spec import LoRATrainingSpec
from lora_operator.schema import structural_schema


def template_schema() -> dict[str, Any]:
    """Return the LoRATraining spec schema as a preset template: dataset optional, no sources.

    Transition rules (those using oldSelf) cannot apply inside a list item, and the
    spec's root rules read fields that a template may leave out, so both are dropped.
    The operator validates every template in full with the pydantic model instead.
    """
    schema = structural_schema(LoRATrainingSpec)
    schema.pop("x-kubernetes-validations", None)
    schema["required"] = [name for name in schema.get("required", []) if name != "dataset"]
    dataset = schema["properties"]["dataset"]
    dataset["required"] = [name for name in dataset.get("required", []) if name != "sources"]
    if not dataset["required"]:
        dataset.pop("required")
    dataset["x-kubernetes-validations"] = [{
        "rule": "!has(self.sources)",
        "message": "dataset.sources is filled by the operator from the row's images: remove it from the template",
    }]
    _drop_transition_rules(schema)
    return schema


def _drop_transition_rules(node: Any) -> None:
    if isinstance(node, dict):
        rules = node.get("x-kubernetes-validations")
        if rules is not None:
            kept = [rule for rule in rules if "oldSelf" not in rule["rule"]]
            if kept:
                node["x-kubernetes-validations"] = kept
            else:
                node.pop("x-kubernetes-validations")
        for value in node.values():
            _drop_transition_rules(value)
    elif isinstance(node, list):
        for value in node:
            _drop_transition_rules(value)


def _spec_schema() -> dict[str, Any]:
    schema = structural_schema(NotionSourceSpec)
    presets = schema["properties"]["presets"]
    # Presets are keyed by row type, so the API server rejects two presets for one type.
    presets["x-kubernetes-list-type"] = "map"
    presets["x-kubernetes-list-map-keys"] = ["type"]
    template = presets["items"]["properties"]["template"]
    presets["items"]["properties"]["template"] = {**template_schema(), "description": template.get("description", "")}
    return schema


def notionsource_crd() -> dict[str, Any]:
    """Return the NotionSource CRD as a dict."""
    return custom_resource_definition(
        kind="NotionSource",
        plural="notionsources",
        short_names=["nsrc"],
        description="A NotionSource turns rows of a Notion database into LoRATrainings and "
        "writes their status, progress and results back to the rows.",
        printer_columns=[
            {"name": "Ready", "type": "string", "jsonPath": '.status.conditions[?(@.type=="Ready")].status'},
            {"name": "Created", "type": "integer", "jsonPath": ".status.counts.trainingsCreated",
             "description": "LoRATrainings created from rows"},
            {"name": "Rejected", "type": "integer", "jsonPath": ".status.counts.rowsRejected",
             "description": "Rows rejected with a comment"},
            {"name": "Last Sync", "type": "date", "jsonPath": ".status.lastSyncTime"},
            {"name": "Age", "type": "date", "jsonPath": ".metadata.creationTimestamp"},
        ],
        spec_schema=_spec_schema(),
        status=status_schema(NotionSourceStatus),
    )

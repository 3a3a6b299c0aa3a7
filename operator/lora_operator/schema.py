"""Convert a pydantic model's JSON Schema into a Kubernetes structural OpenAPI v3 schema.

Kubernetes accepts a subset of OpenAPI v3.0 (structural schemas): no $ref, no anyOf of
types, no null type, boolean exclusiveMinimum. This module inlines references, folds
optional fields, keeps descriptions, bounds and defaults, and adds the CEL rules that
each model declares in ``cel_rules``.
"""

from __future__ import annotations

import copy
from typing import Any

from pydantic import BaseModel

from lora_operator.api.base import ApiModel

# JSON Schema keywords that the structural schema keeps as they are.
KEPT_KEYWORDS = (
    "type",
    "description",
    "enum",
    "pattern",
    "minimum",
    "maximum",
    "minLength",
    "maxLength",
    "minItems",
    "maxItems",
    "format",
    "x-kubernetes-int-or-string",
)


def structural_schema(model: type[BaseModel]) -> dict[str, Any]:
    """Return the structural schema of ``model`` with the CEL rules of every nested ApiModel."""
    raw = model.model_json_schema(by_alias=True, mode="validation")
    definitions = raw.pop("$defs", {})
    rules_by_title = _collect_cel_rules(model)
    return _convert(raw, definitions=definitions, rules_by_title=rules_by_title)


def _collect_cel_rules(model: type[BaseModel]) -> dict[str, list[dict[str, str]]]:
    """Map each model class name (the JSON Schema title) to its CEL rules, walking nested fields."""
    found: dict[str, list[dict[str, str]]] = {}
    pending: list[type[BaseModel]] = [model]
    while pending:
        current = pending.pop()
        if current.__name__ in found:
            continue
        rules = current.cel_rules if issubclass(current, ApiModel) else ()
        found[current.__name__] = [rule.as_schema() for rule in rules]
        for field in current.model_fields.values():
            pending.extend(_nested_models(field.annotation))
    return found


def _nested_models(annotation: Any) -> list[type[BaseModel]]:
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return [annotation]
    nested: list[type[BaseModel]] = []
    for argument in getattr(annotation, "__args__", ()):
        nested.extend(_nested_models(argument))
    return nested


def _convert(
    node: dict[str, Any], *, definitions: dict[str, Any], rules_by_title: dict[str, list[dict[str, str]]]
) -> dict[str, Any]:
    # Step 1: inline a reference, keeping the referring field's own description and default.
    if "$ref" in node:
        target = copy.deepcopy(definitions[node["$ref"].split("/")[-1]])
        target.update({key: value for key, value in node.items() if key != "$ref"})
        node = target

    # Step 2: fold `X | None` into X, since optional fields are simply not required.
    if "anyOf" in node:
        node = _fold_any_of(node)

    out: dict[str, Any] = {key: node[key] for key in KEPT_KEYWORDS if key in node}
    if "const" in node:
        out["enum"] = [node["const"]]
    if "exclusiveMinimum" in node:
        out["minimum"] = node["exclusiveMinimum"]
        out["exclusiveMinimum"] = True
    if "exclusiveMaximum" in node:
        out["maximum"] = node["exclusiveMaximum"]
        out["exclusiveMaximum"] = True
    if node.get("default") is not None and not isinstance(node["default"], (dict, list)):
        out["default"] = node["default"]
    if "enum" in out and "type" not in out:
        out["type"] = _enum_type(out["enum"])

    # Step 3: recurse into objects, maps and arrays.
    if node.get("type") == "object" or "properties" in node:
        out["type"] = "object"
        properties = node.get("properties", {})
        if properties:
            out["properties"] = {
                name: _convert(child, definitions=definitions, rules_by_title=rules_by_title)
                for name, child in properties.items()
            }
        if node.get("required"):
            out["required"] = list(node["required"])
        additional = node.get("additionalProperties")
        if isinstance(additional, dict):
            out["additionalProperties"] = _convert(additional, definitions=definitions, rules_by_title=rules_by_title)
        rules = rules_by_title.get(node.get("title", ""), [])
        if rules:
            out["x-kubernetes-validations"] = rules
    if node.get("type") == "array":
        out["items"] = _convert(node.get("items", {}), definitions=definitions, rules_by_title=rules_by_title)
    return out


def _fold_any_of(node: dict[str, Any]) -> dict[str, Any]:
    options = [option for option in node["anyOf"] if option.get("type") != "null"]
    rest = {key: value for key, value in node.items() if key != "anyOf"}
    types = {option.get("type") for option in options}
    if len(options) == 1:
        merged = dict(options[0])
        merged.update(rest)
        return merged
    if types == {"integer", "string"}:
        return {**rest, "x-kubernetes-int-or-string": True}
    raise ValueError(f"cannot express anyOf {node['anyOf']!r} in a structural schema; use a single type")


def _enum_type(values: list[Any]) -> str:
    if all(isinstance(value, bool) for value in values):
        return "boolean"
    if all(isinstance(value, int) for value in values):
        return "integer"
    return "string"

"""Shared pieces of the API models: camelCase aliases and CEL rules attached to a model."""

from __future__ import annotations

from typing import Any, ClassVar

from pydantic import BaseModel, ConfigDict
from pydantic.alias_generators import to_camel

API_GROUP = "lora-operator.io"
API_VERSION = "v1alpha1"


class CelRule:
    """A cross-field rule that the API server enforces (x-kubernetes-validations).

    Rules on a single object are also checked in Python by the model's own validator,
    so local mode rejects what the API server rejects. Transition rules (those that use
    ``oldSelf``) only the API server can check. ``field_path`` names the field the
    message is about, which kubectl shows next to the error.
    """

    def __init__(self, *, rule: str, message: str, field_path: str | None = None) -> None:
        self.rule = rule
        self.message = message
        self.field_path = field_path

    def as_schema(self) -> dict[str, str]:
        entry = {"rule": self.rule, "message": self.message}
        if self.field_path:
            entry["fieldPath"] = self.field_path
        return entry


class ApiModel(BaseModel):
    """Base of every spec and status model: camelCase on the wire, unknown fields rejected."""

    model_config = ConfigDict(
        alias_generator=to_camel,
        populate_by_name=True,
        extra="forbid",
        validate_assignment=True,
    )

    # Rules written into the CRD schema of this model, in addition to field bounds.
    cel_rules: ClassVar[tuple[CelRule, ...]] = ()

    def to_wire(self) -> dict[str, Any]:
        """Dump with camelCase keys and without unset optional fields."""
        return self.model_dump(by_alias=True, exclude_none=True, mode="json")

"""Map a row to its preset and then to a LoRATraining, or reject it with a reason.

A row is rejected, and no training is created, for an empty or unknown type, no images,
a submitter who is not allowed, an override out of bounds, or settings that make an
invalid spec.
"""

from __future__ import annotations

import copy
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from pydantic import ValidationError

from lora_operator.api.notion_source import NotionSourceSpec, Preset
from lora_operator.api.training import TRAINING_API_VERSION
from lora_operator.api.training_spec import LoRATrainingSpec
from lora_operator.notion import keys
from lora_operator.notion.messages import Localizer
from lora_operator.notion.overrides import RowRejected, apply_overrides
from lora_operator.notion.rows import NotionRow, compact_id

DATASET_FOLDER = "notion-dataset"
# Characters that end the first phrase of a description: ASCII and CJK commas, semicolons, full stop.
PHRASE_END = re.compile(r"[,，、;；。]")
MAX_TRIGGER_LENGTH = 64
MAX_PROMPTS = 16
MAX_PROMPT_LENGTH = 500


@dataclass(frozen=True)
class SourceRef:
    """The NotionSource a row belongs to."""

    namespace: str
    name: str
    spec: NotionSourceSpec

    @property
    def target_namespace(self) -> str:
        return self.spec.target_namespace or self.namespace


@dataclass(frozen=True)
class TrainingPlan:
    """A row mapped to a training: its name, spec and where its images go."""

    row: NotionRow
    preset: Preset
    namespace: str
    name: str
    spec: LoRATrainingSpec
    dataset_uri: str
    """Folder the row's images are copied into, and the spec's only dataset source."""

    def manifest(self, source: SourceRef) -> dict[str, Any]:
        """Return the LoRATraining manifest, labelled with the row's page id."""
        return {
            "apiVersion": TRAINING_API_VERSION,
            "kind": "LoRATraining",
            "metadata": {
                "name": self.name,
                "namespace": self.namespace,
                "labels": {keys.LABEL_PAGE: self.row.page_hex, keys.LABEL_SOURCE: keys.source_label(source.name)},
                "annotations": {
                    keys.ANNOTATION_SOURCE: f"{source.namespace}/{source.name}",
                    keys.ANNOTATION_PAGE_URL: self.row.url,
                    keys.ANNOTATION_CREATOR: self.row.creator_id,
                    keys.ANNOTATION_TITLE: self.row.title[:200],
                },
            },
            "spec": self.spec.to_wire(),
        }


def training_name(preset: Preset, page_id: str) -> str:
    """Return the training's name: the preset's prefix and the page id, the same on every try."""
    return f"{preset.name_prefix}-{compact_id(page_id)}"


def trigger_and_prompts(description: str) -> tuple[str, list[str]]:
    """Return the trigger word (the description's first phrase) and one preview prompt per line."""
    lines = [line.strip() for line in description.splitlines() if line.strip()]
    if not lines:
        return "", []
    trigger = PHRASE_END.split(lines[0], maxsplit=1)[0].strip()[:MAX_TRIGGER_LENGTH]
    prompts = []
    for line in lines[:MAX_PROMPTS]:
        prompt = line if line.startswith(trigger) else f"{trigger}, {line}"
        prompts.append(prompt[:MAX_PROMPT_LENGTH])
    return trigger, prompts


def map_row(
    row: NotionRow,
    source: SourceRef,
    *,
    dataset_uri_for: Callable[[LoRATrainingSpec, str, str], str],
    submitter_email: Callable[[str], str],
) -> TrainingPlan:
    """Map a row to a TrainingPlan, or raise RowRejected.

    ``dataset_uri_for(template spec, namespace, name)`` returns the folder the images go
    to. ``submitter_email(user id)`` is called only when the allowed submitters include
    email addresses.
    """
    spec = source.spec
    preset = _preset_for(row, spec)
    _check_submitter(row, spec.allowed_submitters, submitter_email)
    if not row.images:
        raise RowRejected("reject.no_images", property=spec.properties.images)

    wire = copy.deepcopy(preset.template)
    _apply_description(wire, row.description)
    apply_overrides(wire, row, spec.overrides)
    namespace, name = source.target_namespace, training_name(preset, row.page_id)

    template_spec = _validate(wire, dataset_uri="s3://placeholder/notion-dataset")
    dataset_uri = dataset_uri_for(template_spec, namespace, name)
    return TrainingPlan(
        row=row, preset=preset, namespace=namespace, name=name,
        spec=_validate(wire, dataset_uri=dataset_uri), dataset_uri=dataset_uri,
    )


def _preset_for(row: NotionRow, spec: NotionSourceSpec) -> Preset:
    choices = [preset.type for preset in spec.presets]
    if not row.type:
        raise RowRejected("reject.missing_type", property=spec.properties.type, choices=choices)
    for preset in spec.presets:
        if preset.type == row.type:
            return preset
    raise RowRejected("reject.unknown_type", value=row.type, choices=choices)


def _check_submitter(row: NotionRow, allowed: list[str], submitter_email: Callable[[str], str]) -> None:
    if not allowed:
        return
    allowed_ids = {compact_id(entry) for entry in allowed if "@" not in entry}
    if row.creator_id and compact_id(row.creator_id) in allowed_ids:
        return
    allowed_emails = {entry.lower() for entry in allowed if "@" in entry}
    if allowed_emails and row.creator_id:
        email = submitter_email(row.creator_id).lower()
        if email and email in allowed_emails:
            return
    raise RowRejected("reject.submitter", user=row.creator_name or row.creator_id or "?")


def _apply_description(wire: dict[str, Any], description: str) -> None:
    trigger, prompts = trigger_and_prompts(description)
    if trigger:
        wire.setdefault("captioning", {})["triggerWord"] = trigger
    if prompts:
        wire.setdefault("previews", {})["prompts"] = prompts


def _validate(wire: dict[str, Any], *, dataset_uri: str) -> LoRATrainingSpec:
    dataset = {**(wire.get("dataset") or {}), "sources": [{"uri": dataset_uri}]}
    try:
        return LoRATrainingSpec.model_validate({**wire, "dataset": dataset})
    except ValidationError as error:
        detail = "; ".join(
            f"{'.'.join(str(part) for part in item['loc'])}: {item['msg']}" for item in error.errors()
        )
        raise RowRejected("reject.invalid_spec", detail=detail) from None


def rejection_text(rejection: RowRejected, localizer: Localizer) -> str:
    """Return the localised reason of a rejection."""
    fields = dict(rejection.fields)
    if "kind_key" in fields:
        fields["kind"] = localizer.text(fields.pop("kind_key"))
    if isinstance(fields.get("choices"), list):
        fields["choices"] = localizer.join(fields["choices"])
    return localizer.text(rejection.key, **fields)

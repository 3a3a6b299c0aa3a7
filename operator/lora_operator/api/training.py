"""The LoRATraining resource: spec, status and the manifest loader."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from lora_operator.api.base import API_GROUP, API_VERSION, ApiModel
from lora_operator.api.training_spec import LoRATrainingSpec

Phase = Literal["Pending", "Queued", "Running", "Succeeded", "Failed", "Suspended"]


class Condition(ApiModel):
    """A Kubernetes-style condition."""

    type: str = Field(description="Condition type, for example Ready, JobCreated, Progressing.")
    status: Literal["True", "False", "Unknown"] = Field(description="True, False or Unknown.")
    reason: str = Field(default="", description="CamelCase reason of the last transition.")
    message: str = Field(default="", description="Human-readable details.")
    last_transition_time: str = Field(default="", description="RFC 3339 time of the last status change.")
    observed_generation: int = Field(default=0, description="metadata.generation the condition was computed from.")


class Progress(ApiModel):
    """Training progress, copied from the trainer's progress.json."""

    step: int = Field(default=0, description="Optimiser steps done.")
    total_steps: int = Field(default=0, description="Optimiser steps planned.")
    epoch: int = Field(default=0, description="Current epoch, from 1.")
    percent: float = Field(default=0.0, description="step / totalSteps x 100.")
    loss: float | None = Field(default=None, description="Exponential moving average of the training loss.")
    eta_seconds: int | None = Field(default=None, description="Estimated seconds until training ends.")
    updated_at: str = Field(default="", description="When the trainer last wrote progress.")


class Artifacts(ApiModel):
    """s3:// URIs of the run's outputs."""

    root: str = Field(default="", description="Folder of everything this run wrote.")
    weights: dict[str, str] = Field(default_factory=dict, description="Exported weights by format (kohya, diffusers, peft).")
    previews: list[str] = Field(default_factory=list, description="Newest preview images.")
    loss_plot: str = Field(default="", description="Loss curve PNG.")
    config: str = Field(default="", description="Resolved trainer config as run.")
    summary: str = Field(default="", description="run.json: metrics, durations, hashes, versions.")


class AttemptOverrides(ApiModel):
    """Values that the operator changed from the spec for the current attempt; empty means none."""

    batch_size: int | None = Field(default=None, ge=1, description="Batch size after out-of-memory halving.")
    gradient_accumulation: int | None = Field(default=None, ge=1, description="Accumulation after out-of-memory doubling.")

    def apply(self, spec: LoRATrainingSpec) -> LoRATrainingSpec:
        """Return a copy of ``spec`` with the overrides applied."""
        training = spec.training.model_copy()
        if self.batch_size is not None:
            training.batch_size = self.batch_size
        if self.gradient_accumulation is not None:
            training.gradient_accumulation = self.gradient_accumulation
        return spec.model_copy(update={"training": training})


class LoRATrainingStatus(ApiModel):
    """Observed state, written by the operator only."""

    model_config = ConfigDict(extra="allow")

    phase: Phase = Field(default="Pending", description="Pending, Queued, Running, Succeeded, Failed or Suspended.")
    conditions: list[Condition] = Field(default_factory=list, description="Detailed state for machines.")
    observed_generation: int = Field(default=0, description="metadata.generation the status reflects.")
    attempt: int = Field(default=0, description="Current attempt, from 1.")
    job_name: str = Field(default="", description="Job of the current attempt.")
    start_time: str = Field(default="", description="When the first attempt started running.")
    completion_time: str = Field(default="", description="When the training ended.")
    progress: Progress = Field(default_factory=Progress, description="Training progress.")
    artifacts: Artifacts = Field(default_factory=Artifacts, description="Where the outputs are.")
    message: str = Field(default="", description="Last notable event, for humans.")
    failures: int = Field(default=0, description="Failed attempts so far; retries stop at spec.retry.maxAttempts.")
    retryable: bool = Field(default=False, description="Whether the last failure may succeed on another attempt.")
    overrides: AttemptOverrides = Field(default_factory=AttemptOverrides, description="Operator changes to the spec for the current attempt.")
    job_created_at: str = Field(default="", description="When the current attempt's Job was created.")


class ObjectMeta(BaseModel):
    """The part of metadata the trainer and local mode use."""

    model_config = ConfigDict(extra="allow")

    name: str = Field(pattern=r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$", max_length=63)
    namespace: str = "default"
    uid: str = ""
    generation: int = 0


class LoRATraining(BaseModel):
    """A whole LoRATraining manifest."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    api_version: Literal["lora-operator.io/v1alpha1"] = Field(alias="apiVersion")
    kind: Literal["LoRATraining"]
    metadata: ObjectMeta
    spec: LoRATrainingSpec
    status: LoRATrainingStatus | None = None


class ManifestError(ValueError):
    """A manifest file that cannot be read or fails validation; the message names the field."""


def load_training_manifest(path: Path) -> LoRATraining:
    """Read and validate one LoRATraining manifest from a YAML file."""
    try:
        document: Any = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError) as error:
        raise ManifestError(f"cannot read manifest {path}: {error}") from error
    if not isinstance(document, dict) or document.get("kind") != "LoRATraining":
        raise ManifestError(f"{path} is not a LoRATraining manifest: expected 'kind: LoRATraining'")
    try:
        return LoRATraining.model_validate(document)
    except ValidationError as error:
        raise ManifestError(describe_validation_error(path, error)) from error


def describe_validation_error(source: Path | str, error: ValidationError) -> str:
    """Format pydantic errors as one line per field, with the dotted camelCase path."""
    lines = [f"invalid LoRATraining in {source}:"]
    for item in error.errors():
        location = ".".join(str(part) for part in item["loc"])
        lines.append(f"  {location}: {item['msg']} (got {item.get('input')!r})")
    return "\n".join(lines)


TRAINING_API_VERSION = f"{API_GROUP}/{API_VERSION}"

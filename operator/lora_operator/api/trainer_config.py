"""The resolved config the trainer runs: the spec plus the run's identity and output location."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from lora_operator.api.base import ApiModel
from lora_operator.api.training_spec import LoRATrainingSpec


class RunIdentity(ApiModel):
    """The resource and attempt this run belongs to."""

    namespace: str = Field(default="default", description="Namespace of the LoRATraining.")
    name: str = Field(description="Name of the LoRATraining.")
    uid: str = Field(description="UID of the LoRATraining; local mode derives one from the manifest.")
    attempt: int = Field(default=1, ge=1, description="Attempt number, from 1.")


class OutputLocation(ApiModel):
    """Root of the run's artifact tree. Credentials never appear here: they come from the environment."""

    uri: str = Field(
        pattern=r"^(file|s3)://.+",
        description="file:///abs/path or s3://bucket/prefix of the run folder NAMESPACE/NAME/UID.",
    )
    s3_endpoint: str = Field(default="", description="host:port of the S3 API for s3:// URIs; empty means AWS S3.")
    s3_secure: bool = Field(default=True, description="Use HTTPS for the S3 endpoint.")
    s3_region: str = Field(default="", description="S3 region, if the server needs one.")


class TrainerConfig(ApiModel):
    """The config that `lora-train --config FILE` reads and that is stored as config.yaml."""

    api_version: Literal["lora-operator.io/v1alpha1"] = Field(default="lora-operator.io/v1alpha1", alias="apiVersion")
    kind: Literal["TrainerConfig"] = "TrainerConfig"
    run: RunIdentity
    output: OutputLocation
    spec: LoRATrainingSpec
    work_dir: str = Field(default="", description="Local scratch folder; empty uses a temporary folder.")
    device: Literal["auto", "cpu", "cuda"] = Field(default="auto", description="Where to train; auto picks CUDA when present.")

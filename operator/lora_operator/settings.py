"""Operator settings, read from LORA_OPERATOR_* environment variables (pydantic-settings)."""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import Field, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict


class OperatorSettings(BaseSettings):
    """Everything the operator needs to render Jobs and reach S3. Credentials stay in a Secret."""

    model_config = SettingsConfigDict(env_prefix="LORA_OPERATOR_", extra="ignore")

    trainer_image: str = Field(
        default="ghcr.io/lora-operator/lora-trainer:0.1.0",
        description="Image of the trainer container; its entrypoint is lora-train.",
    )
    image_pull_policy: str = Field(default="IfNotPresent", description="imagePullPolicy of the trainer container.")
    namespaces: Annotated[list[str], NoDecode] = Field(
        default_factory=list,
        description="Namespaces to watch, comma-separated in the environment; empty watches the whole cluster.",
    )
    s3_endpoint: str = Field(default="", description="host:port of the S3 API; empty means AWS S3.")
    s3_secure: bool = Field(default=True, description="Use HTTPS for the S3 endpoint.")
    s3_region: str = Field(default="", description="S3 region, if the server needs one.")
    s3_bucket: str = Field(default="lora-artifacts", description="Bucket of runs whose spec.output.bucket is empty.")
    s3_credentials_secret: str = Field(
        default="lora-s3-credentials",
        description="Secret in each training's namespace with AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY.",
    )
    job_backoff_limit: int = Field(
        default=0,
        ge=0,
        description="Pod retries inside one attempt Job. 0 because the operator retries with a new attempt that resumes.",
    )
    job_ttl_seconds: int = Field(default=86_400, ge=0, description="Seconds a finished Job is kept before deletion.")
    stop_grace_seconds: int = Field(
        default=300, ge=10, description="Seconds between SIGTERM and SIGKILL: the time the trainer has to checkpoint."
    )
    progress_interval_seconds: float = Field(
        default=30.0, ge=1.0, description="How often progress.json is read for running trainings; also the status patch limit."
    )
    scratch_size_limit: str = Field(default="50Gi", description="sizeLimit of the trainer's /tmp emptyDir.")
    workers: int = Field(
        default=8, ge=1, le=64, description="Threads that reconcile trainings; each training is handled by one at a time."
    )
    default_gpu_resource_name: str = Field(
        default="nvidia.com/gpu",
        description="GPU resource of trainings whose spec.resources.gpuResourceName is empty, e.g. a MIG profile.",
    )
    default_node_selector: dict[str, str] = Field(
        default_factory=dict, description="Node labels every trainer pod must match, merged under the spec's (JSON)."
    )
    default_tolerations: list[dict[str, Any]] = Field(
        default_factory=list, description="Tolerations added to every trainer pod, before the spec's own (JSON)."
    )
    default_queue_name: str = Field(default="", description="Kueue LocalQueue of trainings whose spec.queueName is empty.")
    notion_token_secret: str = Field(default="", description="Secret with the Notion integration token, if Notion is used.")
    leader_election: bool = Field(
        default=False,
        description="Work only while holding a coordination.k8s.io Lease, so that several replicas can run and one is active.",
    )
    leader_election_namespace: str = Field(
        default="", description="Namespace of the Lease; required with leader_election (the chart sets its own namespace)."
    )
    leader_election_lease: str = Field(default="lora-operator", description="Name of the Lease.")
    operator_namespace: str = Field(default="", description="Namespace the operator runs in, for its own Events.")

    @field_validator("namespaces", mode="before")
    @classmethod
    def _split_namespaces(cls, raw: str | list[str]) -> list[str]:
        items = raw.split(",") if isinstance(raw, str) else raw
        return [name.strip() for name in items if name.strip()]

"""The NotionSource resource: a Notion database whose rows become LoRATrainings.

Admins create NotionSources and their presets through Kubernetes RBAC. Notion users only
add rows to the database. A row's type picks a preset, and the preset's template is the
LoRATraining spec that the row completes with its images, description and allowed overrides.
"""

from __future__ import annotations

from types import UnionType
from typing import Any, Literal, Union, get_args, get_origin

from pydantic import ConfigDict, Field, ValidationError, field_validator, model_validator

from lora_operator.api.base import ApiModel, CelRule
from lora_operator.api.training import Condition
from lora_operator.api.training_spec import LoRATrainingSpec

# A Notion id with or without dashes, or empty.
NOTION_ID_PATTERN = r"^([0-9a-fA-F]{8}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{12})?$"
# Stands in for dataset.sources while a template is validated: the operator fills that
# field from the row's images, so a template does not set it.
PLACEHOLDER_SOURCE = {"uri": "s3://placeholder/notion-dataset"}
# Notion's single-part File Upload API accepts files up to 20 MB.
SINGLE_PART_UPLOAD_LIMIT = 20 * 1000 * 1000
# S3 SigV4 presigned URLs are valid for at most 7 days.
MAX_PRESIGN_SECONDS = 7 * 24 * 3600


class SecretKeyRef(ApiModel):
    """A key of a Secret in the NotionSource's namespace."""

    name: str = Field(
        pattern=r"^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$", max_length=253, description="Name of the Secret."
    )
    key: str = Field(
        default="token", pattern=r"^[-._a-zA-Z0-9]+$", max_length=253, description="Key in the Secret's data."
    )


class NotionProperties(ApiModel):
    """Names of the database's properties (columns). An empty name turns that write-back off."""

    title: str = Field(default="Name", max_length=100, description="Title property: the training's display name.")
    type: str = Field(
        default="Type", min_length=1, max_length=100,
        description="Select, status or text property whose value names a preset.",
    )
    description: str = Field(
        default="Description", max_length=100,
        description="Text property. Its first phrase becomes the trigger word and each line a preview prompt.",
    )
    images: str = Field(default="Images", min_length=1, max_length=100, description="Files property with the reference images.")
    status: str = Field(
        default="Status", min_length=1, max_length=100,
        description="Status or select property: users set it to the submitted value, the operator writes the rest.",
    )
    creator: str = Field(
        default="Creator", max_length=100,
        description="Created-by or people property naming the submitter; empty uses the page's created_by.",
    )
    weights: str = Field(
        default="Weights", max_length=100,
        description="Files, URL or text property that gets the weights: the file itself when small enough, else a link.",
    )
    previews: str = Field(default="Previews", max_length=100, description="Files property that gets the preview images.")
    progress: str = Field(
        default="Progress", max_length=100,
        description="Number property that gets the percent done; a percent-formatted number gets a fraction.",
    )
    loss: str = Field(default="Loss", max_length=100, description="Number property that gets the training loss.")
    epoch: str = Field(default="Epoch", max_length=100, description="Number property that gets the current epoch.")
    download: str = Field(
        default="Download", max_length=100,
        description="Text or URL property that gets the presigned weights link and the s3:// URI.",
    )
    error: str = Field(default="Error", max_length=100, description="Text property that gets the error or rejection reason.")
    resource: str = Field(
        default="Resource", max_length=100, description="Text property that gets NAMESPACE/NAME of the LoRATraining."
    )


class StatusValues(ApiModel):
    """Option names of the status property. An empty value uses the locale's default name."""

    submitted: str = Field(default="", max_length=100, description="Set by users to submit a row (en: Ready, zh-CN: 待训练).")
    queued: str = Field(default="", max_length=100, description="Claimed, waiting for a GPU (en: Queued, zh-CN: 排队中).")
    running: str = Field(default="", max_length=100, description="Training (en: Training, zh-CN: 训练中).")
    suspended: str = Field(default="", max_length=100, description="Suspended by an admin (en: Paused, zh-CN: 已暂停).")
    succeeded: str = Field(default="", max_length=100, description="Finished (en: Done, zh-CN: 已完成).")
    failed: str = Field(default="", max_length=100, description="Failed (en: Failed, zh-CN: 失败).")
    rejected: str = Field(
        default="", max_length=100, description="Rejected before any training started (en: Rejected, zh-CN: 已拒绝)."
    )


class OverrideRule(ApiModel):
    """A spec field that a row may set from one of its properties, within bounds."""

    property: str = Field(min_length=1, max_length=100, description="Row property that contains the value; an empty value keeps the preset's.")
    field: str = Field(
        pattern=r"^[a-zA-Z]+(\.[a-zA-Z]+)*$",
        max_length=200,
        description="Dotted camelCase path of a scalar field in the LoRATraining spec, for example training.maxSteps.",
    )
    minimum: float | None = Field(default=None, description="Smallest allowed number.")
    maximum: float | None = Field(default=None, description="Largest allowed number.")
    allowed_values: list[str] = Field(
        default_factory=list, max_length=100, description="Allowed text values; empty allows any text the spec accepts."
    )

    @field_validator("field")
    @classmethod
    def _field_exists(cls, path: str) -> str:
        scalar_field_type(path)
        return path


class Preset(ApiModel):
    """The LoRATraining spec template of one row type."""

    type: str = Field(min_length=1, max_length=100, description="Value of the row's type property that selects this preset.")
    name_prefix: str = Field(
        default="notion",
        pattern=r"^[a-z]([-a-z0-9]{0,18}[a-z0-9])?$",
        description="Start of the LoRATraining name; the page id follows, so names stay unique.",
    )
    template: dict[str, Any] = Field(
        description="LoRATraining spec without dataset.sources, which the operator fills from the row's images.",
    )

    @field_validator("template")
    @classmethod
    def _template_is_spec(cls, template: dict[str, Any]) -> dict[str, Any]:
        validate_template(template)
        return template


class ExternalUrlPolicy(ApiModel):
    """The external attachment URLs that the operator may fetch."""

    allowed_schemes: list[Literal["http", "https"]] = Field(
        default_factory=lambda: ["https", "http"], min_length=1, description="URL schemes that may be fetched."
    )
    allow_private_addresses: bool = Field(
        default=False,
        description="Also fetch from loopback, private, link-local and other non-public addresses (cluster-internal hosts).",
    )


class NotionSourceSpec(ApiModel):
    """The database, the rules for its rows, and the write-back settings."""

    data_source_id: str = Field(
        default="",
        pattern=NOTION_ID_PATTERN,
        description="Id of the database's data source (Notion API 2025-09-03): database menu, Manage data sources, Copy data source ID.",
    )
    database_id: str = Field(
        default="",
        pattern=NOTION_ID_PATTERN,
        description="Id of the database, used when dataSourceId is empty; the database must have exactly one data source.",
    )
    token_secret: SecretKeyRef = Field(description="Secret key holding the integration's token (ntn_...).")
    token_env: str = Field(
        default="NOTION_TOKEN",
        pattern=r"^[A-Za-z_][A-Za-z0-9_]*$",
        max_length=100,
        description="Local mode only: environment variable that contains the token.",
    )
    properties: NotionProperties = Field(default_factory=NotionProperties, description="Property names of the database.")
    status_values: StatusValues = Field(default_factory=StatusValues, description="Option names of the status property.")
    presets: list[Preset] = Field(min_length=1, max_length=50, description="Row type to training template, one per type.")
    allowed_submitters: list[str] = Field(
        default_factory=list,
        max_length=1000,
        description="Notion user ids or email addresses whose rows are trained; empty allows everyone who can edit the database.",
    )
    overrides: list[OverrideRule] = Field(default_factory=list, max_length=50, description="Spec fields that rows may set.")
    locale: Literal["zh-CN", "en"] = Field(default="en", description="Language of everything written to Notion.")
    poll_interval_seconds: int = Field(default=30, ge=5, le=3600, description="Seconds between queries for new rows.")
    target_namespace: str = Field(
        default="",
        pattern=r"^([a-z0-9]([-a-z0-9]*[a-z0-9])?)?$",
        max_length=63,
        description="Namespace of the created LoRATrainings; empty uses the NotionSource's namespace.",
    )
    weights_link_expiry_seconds: int = Field(
        default=MAX_PRESIGN_SECONDS, ge=60, le=MAX_PRESIGN_SECONDS,
        description="Seconds the presigned weights link stays valid (S3 allows at most 7 days).",
    )
    max_upload_bytes: int = Field(
        default=SINGLE_PART_UPLOAD_LIMIT, ge=0, le=SINGLE_PART_UPLOAD_LIMIT,
        description="Weights up to this size are uploaded into the weights property; 0 uploads none. Free workspaces accept 5 MiB.",
    )
    max_previews: int = Field(default=4, ge=0, le=8, description="Newest preview images uploaded when a run succeeds.")
    external_urls: ExternalUrlPolicy = Field(
        default_factory=ExternalUrlPolicy, description="Which external attachment URLs may be fetched."
    )
    suspend: bool = Field(default=False, description="Stop querying for new rows; write-back of existing trainings goes on.")

    cel_rules = (
        CelRule(
            rule="(has(self.dataSourceId) && self.dataSourceId != '') || (has(self.databaseId) && self.databaseId != '')",
            message="set dataSourceId (or databaseId for a database with one data source)",
        ),
    )

    @model_validator(mode="after")
    def _check_source_named(self) -> NotionSourceSpec:
        if not self.data_source_id and not self.database_id:
            raise ValueError("set spec.dataSourceId (or spec.databaseId for a database with one data source)")
        return self


class SyncCounts(ApiModel):
    """Totals since the NotionSource was created."""

    trainings_created: int = Field(default=0, description="LoRATrainings created from rows.")
    rows_rejected: int = Field(default=0, description="Rows rejected with a comment.")
    sync_errors: int = Field(default=0, description="Sync passes that ended with an error.")


class NotionSourceStatus(ApiModel):
    """Observed state, written by the operator only."""

    model_config = ConfigDict(extra="allow")

    observed_generation: int = Field(default=0, description="metadata.generation the status reflects.")
    last_sync_time: str = Field(default="", description="RFC 3339 time the last sync pass ended.")
    watermark: str = Field(
        default="", description="Newest last_edited_time seen; the next query starts one minute before it."
    )
    counts: SyncCounts = Field(default_factory=SyncCounts, description="Totals of created, rejected and failed.")
    conditions: list[Condition] = Field(
        default_factory=list, description="Ready: the last sync pass worked; False carries the last error."
    )


def validate_template(template: dict[str, Any]) -> LoRATrainingSpec:
    """Validate a preset template as a LoRATraining spec, with a placeholder for dataset.sources."""
    if "sources" in (template.get("dataset") or {}):
        raise ValueError("template.dataset.sources is set by the operator from the row's images: remove it")
    dataset = {**(template.get("dataset") or {}), "sources": [PLACEHOLDER_SOURCE]}
    try:
        return LoRATrainingSpec.model_validate({**template, "dataset": dataset})
    except ValidationError as error:
        problems = "; ".join(
            f"template.{'.'.join(str(part) for part in item['loc'])}: {item['msg']}" for item in error.errors()
        )
        raise ValueError(problems) from None


def scalar_field_type(path: str) -> type:
    """Return the Python type of the scalar spec field at a dotted camelCase path.

    Raises ValueError naming the path when a segment does not exist or the field is not a
    number, text or boolean.
    """
    model: Any = LoRATrainingSpec
    segments = path.split(".")
    for position, segment in enumerate(segments):
        fields = {info.alias or name: info for name, info in model.model_fields.items()}
        if segment not in fields:
            known = ", ".join(sorted(fields))
            raise ValueError(f"override field {path!r}: {segment!r} is not a field here; use one of {known}")
        annotation = fields[segment].annotation
        if position < len(segments) - 1:
            if not (isinstance(annotation, type) and issubclass(annotation, ApiModel)):
                raise ValueError(f"override field {path!r}: {segment!r} has no nested fields")
            model = annotation
            continue
        return _scalar_type(path, annotation)
    raise ValueError(f"override field {path!r} is empty")


def _scalar_type(path: str, annotation: Any) -> type:
    origin = get_origin(annotation)
    if origin is Literal:
        return str
    if origin in (Union, UnionType):
        options = [option for option in get_args(annotation) if option is not type(None)]
        if len(options) == 1:
            return _scalar_type(path, options[0])
    elif origin is None and annotation in (int, float, str, bool):
        return annotation
    raise ValueError(f"override field {path!r} is not a number, text or boolean field, so a row cannot set it")

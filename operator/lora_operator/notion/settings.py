"""Operator-wide Notion settings, read from LORA_OPERATOR_NOTION_* environment variables."""

from __future__ import annotations

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

# Notion allows an average of three requests per second per integration; staying under
# it avoids most 429 responses.
DEFAULT_REQUESTS_PER_SECOND = 2.5


class NotionSettings(BaseSettings):
    """Settings of the Notion integration: API address, request pace, retries and download links."""

    model_config = SettingsConfigDict(env_prefix="LORA_OPERATOR_NOTION_", extra="ignore")

    api_url: str = Field(default="https://api.notion.com", description="Base URL of the Notion API, without /v1.")
    requests_per_second: float = Field(
        default=DEFAULT_REQUESTS_PER_SECOND, gt=0, le=100,
        description="Requests per second per token; Notion's limit is an average of 3.",
    )
    max_attempts: int = Field(default=8, ge=1, le=30, description="Tries of one request on 429, 5xx, 529 and timeouts.")
    backoff_seconds: float = Field(default=1.0, gt=0, le=60, description="First retry delay without Retry-After; doubles per try.")
    max_backoff_seconds: float = Field(default=60.0, gt=0, le=600, description="Maximum wait in seconds between two tries.")
    timeout_seconds: float = Field(default=60.0, gt=0, le=600, description="Timeout of one Notion request.")
    public_s3_endpoint: str = Field(
        default="", description="host:port that presigned weights links point at; empty uses the operator's S3 endpoint."
    )
    public_s3_secure: bool | None = Field(default=None, description="HTTPS for presigned links; unset follows the S3 setting.")
    writeback_workers: int = Field(default=4, ge=1, le=32, description="Threads that write training status back to rows.")
    max_attachment_bytes: int = Field(
        default=200 * 1024 * 1024, ge=1024, description="Maximum size in bytes of one attachment; a larger one rejects the row."
    )

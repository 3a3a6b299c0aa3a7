"""Read run artifacts for upload, and make download links, for s3:// and file:// URIs."""

from __future__ import annotations

import os
from datetime import timedelta
from pathlib import Path
from typing import Protocol

from minio import Minio
from minio.error import S3Error

from lora_operator.notion.settings import NotionSettings
from lora_operator.settings import OperatorSettings

# MinIO presigns locally when the region is known; without one it requests the region from the server.
DEFAULT_REGION = "us-east-1"


class ArtifactAccess(Protocol):
    """Read access to artifacts, and their download links."""

    def size(self, uri: str) -> int | None: ...
    def read(self, uri: str) -> bytes: ...
    def link(self, uri: str, *, expiry_seconds: int) -> str: ...


def split_s3_uri(uri: str) -> tuple[str, str]:
    bucket, _, key = uri.removeprefix("s3://").partition("/")
    return bucket, key


class S3Artifacts:
    """Artifacts in S3; links are presigned GET URLs signed for the public endpoint."""

    def __init__(self, client: Minio, *, presign_client: Minio) -> None:
        self.client = client
        self.presign_client = presign_client

    @classmethod
    def from_settings(cls, settings: OperatorSettings, notion: NotionSettings) -> S3Artifacts:
        access_key = os.environ.get("AWS_ACCESS_KEY_ID", "")
        secret_key = os.environ.get("AWS_SECRET_ACCESS_KEY", "")
        region = settings.s3_region or DEFAULT_REGION
        client = Minio(settings.s3_endpoint or "s3.amazonaws.com", access_key=access_key, secret_key=secret_key,
                       secure=settings.s3_secure, region=region)
        public_secure = settings.s3_secure if notion.public_s3_secure is None else notion.public_s3_secure
        presign_client = Minio(notion.public_s3_endpoint or settings.s3_endpoint or "s3.amazonaws.com",
                               access_key=access_key, secret_key=secret_key, secure=public_secure, region=region)
        return cls(client, presign_client=presign_client)

    def size(self, uri: str) -> int | None:
        bucket, key = split_s3_uri(uri)
        try:
            return self.client.stat_object(bucket, key).size
        except S3Error as error:
            if error.code in ("NoSuchKey", "NoSuchObject"):
                return None
            raise

    def read(self, uri: str) -> bytes:
        bucket, key = split_s3_uri(uri)
        response = self.client.get_object(bucket, key)
        try:
            return response.read()
        finally:
            response.close()
            response.release_conn()

    def link(self, uri: str, *, expiry_seconds: int) -> str:
        bucket, key = split_s3_uri(uri)
        return self.presign_client.presigned_get_object(bucket, key, expires=timedelta(seconds=expiry_seconds))


class LocalArtifacts:
    """Artifacts in a local run folder (local mode); links are the file:// URIs themselves."""

    def size(self, uri: str) -> int | None:
        path = Path(uri.removeprefix("file://"))
        return path.stat().st_size if path.is_file() else None

    def read(self, uri: str) -> bytes:
        return Path(uri.removeprefix("file://")).read_bytes()

    def link(self, uri: str, *, expiry_seconds: int) -> str:
        return uri


"""Objects written to SeaweedFS through the minio client read back unchanged."""

from __future__ import annotations

import io
import os

import pytest
from minio import Minio
from minio.error import S3Error

from tests.harness.seaweed import SeaweedS3

pytestmark = pytest.mark.s3


def test_object_written_reads_back(s3: SeaweedS3, s3_bucket: str) -> None:
    # Larger than one 4 MiB filer chunk, so the object spans several chunks.
    payload = os.urandom(5 * 1024 * 1024 + 17)
    s3_client = s3.client()

    s3_client.put_object(
        s3_bucket,
        "runs/run-1/adapter.safetensors",
        io.BytesIO(payload),
        length=len(payload),
        content_type="application/octet-stream",
        metadata={"x-amz-meta-run": "run-1"},
    )

    response = s3_client.get_object(s3_bucket, "runs/run-1/adapter.safetensors")
    try:
        read_back = response.read()
    finally:
        response.close()
        response.release_conn()
    stat = s3_client.stat_object(s3_bucket, "runs/run-1/adapter.safetensors")
    listed = [item.object_name for item in s3_client.list_objects(s3_bucket, prefix="runs/", recursive=True)]

    assert read_back == payload
    assert stat.size == len(payload)
    assert stat.metadata.get("x-amz-meta-run") == "run-1"
    assert listed == ["runs/run-1/adapter.safetensors"]


def test_wrong_secret_key_is_rejected(s3: SeaweedS3, s3_bucket: str) -> None:
    intruder = Minio(s3.endpoint, access_key=s3.access_key, secret_key="not-the-secret", secure=s3.secure)

    with pytest.raises(S3Error) as raised:
        list(intruder.list_objects(s3_bucket))

    assert raised.value.code in {"SignatureDoesNotMatch", "AccessDenied", "InvalidAccessKeyId"}

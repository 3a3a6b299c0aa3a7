"""Trainings in the cluster: found by the page-id label, images copied into S3."""

from __future__ import annotations

from typing import Any

from minio import Minio

from lora_operator.api.training_spec import LoRATrainingSpec
from lora_operator.kube import AlreadyExists, KubeError
from lora_operator.notion import keys
from lora_operator.notion.kube_access import NotionKube
from lora_operator.notion.mapping import DATASET_FOLDER
from lora_trainer.storage import ArtifactStore, S3Store


class ClusterSink:
    """Creates LoRATrainings; their images go under s3://BUCKET/[PREFIX/]NAMESPACE/NAME/notion-dataset/."""

    def __init__(self, kube: NotionKube, *, s3: Minio, default_bucket: str) -> None:
        self.kube = kube
        self.s3 = s3
        self.default_bucket = default_bucket

    def find(self, namespace: str, page_hex: str) -> str | None:
        return self.kube.find_training_for_page(namespace, page_hex)

    def dataset_uri(self, spec: LoRATrainingSpec, namespace: str, name: str) -> str:
        bucket = spec.output.bucket or self.default_bucket
        parts = [spec.output.prefix.strip("/"), namespace, name, DATASET_FOLDER]
        return f"s3://{bucket}/" + "/".join(part for part in parts if part)

    def open_dataset(self, uri: str) -> ArtifactStore:
        bucket, _, prefix = uri.removeprefix("s3://").partition("/")
        return S3Store(self.s3, bucket=bucket, prefix=prefix)

    def create(self, manifest: dict[str, Any]) -> None:
        metadata = manifest["metadata"]
        try:
            self.kube.create_training(manifest)
        except AlreadyExists:
            existing = self.kube.get_training(metadata["namespace"], metadata["name"])
            page = (existing["metadata"].get("labels") or {}).get(keys.LABEL_PAGE)
            if page != metadata["labels"][keys.LABEL_PAGE]:
                raise KubeError(
                    f"LoRATraining {metadata['namespace']}/{metadata['name']} exists but belongs to Notion page "
                    f"{page or 'none'}; delete or rename it", status=409,
                ) from None

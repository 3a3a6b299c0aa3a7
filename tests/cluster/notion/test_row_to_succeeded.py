"""A row of the Chinese database goes from row to LoRATraining to Job to Succeeded, and back to the row."""

from __future__ import annotations

import io

import httpx
import pytest

from tests.cluster.operator.conftest import put_json
from tests.datasets import PHOTOS_DIR
from tests.harness.pod_fates import Fate, fate_annotations
from tests.harness.waiting import poll_until
from tests.notion_server.lora_database import example_source
from tests.notion_server.workspace import plain

pytestmark = [pytest.mark.cluster, pytest.mark.s3]

PHOTOS = [PHOTOS_DIR / "chelsea.png", PHOTOS_DIR / "coffee.png"]
WEIGHTS = b"safetensors-bytes" * 64


def put_bytes(s3, bucket: str, key: str, data: bytes) -> None:
    s3.client().put_object(bucket, key, io.BytesIO(data), len(data))


def run_prefix(training: dict) -> str:
    metadata = training["metadata"]
    return f"{metadata['namespace']}/{metadata['name']}/{metadata['uid']}"


def test_row_trains_and_reports(notion_sources, lora_database, trainings, s3, s3_bucket, namespace):
    page = lora_database.add_row("水彩城市", description="wcstyle，水彩风格的城市街景", images=PHOTOS)
    notion_sources.create(example_source(lora_database))

    # Row -> resource, with the images already in S3 under the dataset prefix.
    training = notion_sources.wait_training(page)
    name = training["metadata"]["name"]
    dataset_uri = training["spec"]["dataset"]["sources"][0]["uri"]
    assert dataset_uri == f"s3://{s3_bucket}/{namespace}/{name}/notion-dataset"
    copied = sorted(item.object_name for item in s3.client().list_objects(s3_bucket, prefix=f"{namespace}/{name}/notion-dataset/", recursive=True))
    assert copied == [f"{namespace}/{name}/notion-dataset/00-chelsea.png", f"{namespace}/{name}/notion-dataset/01-coffee.png"]
    assert training["spec"]["captioning"]["triggerWord"] == "wcstyle"
    assert lora_database.text(page, "训练资源") == f"{namespace}/{name}"

    # Resource -> Job -> running trainer -> progress in the row.
    pod = trainings.wait_pod_running(f"{name}-attempt-1")
    notion_sources.wait_status(page, "训练中")
    prefix = run_prefix(training)
    put_json(s3, s3_bucket, f"{prefix}/progress.json",
             {"phase": "training", "step": 2, "totalSteps": 4, "epoch": 1, "lossEma": 0.125, "etaSeconds": 9})
    notion_sources.wait_row(page, lambda row: lora_database.value(row, "进度") == 50.0, description="progress 50")
    assert lora_database.value(page, "损失") == 0.125
    assert lora_database.value(page, "轮次") == 1

    # The trainer's outputs, then the pod ends and the run succeeds.
    put_bytes(s3, s3_bucket, f"{prefix}/weights/{name}.safetensors", WEIGHTS)
    preview = PHOTOS[1].read_bytes()
    put_bytes(s3, s3_bucket, f"{prefix}/previews/step-000004-00.png", preview)
    put_json(s3, s3_bucket, f"{prefix}/progress.json",
             {"phase": "done", "step": 4, "totalSteps": 4, "epoch": 2, "lossEma": 0.0931, "etaSeconds": 0})
    put_json(s3, s3_bucket, f"{prefix}/run.json", {"artifacts": {
        "weights": {"kohya": {"key": f"weights/{name}.safetensors"}}, "previews": ["previews/step-000004-00.png"],
        "lossPlot": "loss.png"}})
    poll_until(lambda: (trainings.get(name).get("status") or {}).get("progress", {}).get("step") == 4,
               timeout=60, description="status.progress.step 4")
    trainings.set_pod_fate(pod, fate_annotations(Fate.SUCCEED, after="0s"))
    trainings.wait_phase(name, "Succeeded")

    notion_sources.wait_status(page, "已完成")
    notion_sources.wait_row(page, lambda row: lora_database.comments(row), description="the final comment")
    assert lora_database.value(page, "进度") == 100.0
    assert lora_database.value(page, "损失") == 0.0931
    assert lora_database.file_bytes(page, "输出权重") == [WEIGHTS]
    assert lora_database.file_bytes(page, "预览图") == [preview]
    weights_uri = f"s3://{s3_bucket}/{prefix}/weights/{name}.safetensors"
    assert weights_uri in lora_database.text(page, "下载链接")
    (link,) = lora_database.links(page, "下载链接")
    assert httpx.get(link, timeout=30).content == WEIGHTS
    (comment,) = lora_database.comments(page)
    assert comment.rich_text[0]["mention"]["user"]["id"] == lora_database.submitter.id
    assert "“水彩城市”训练完成，最终损失 0.0931" in plain(comment.rich_text)


def test_source_status_counts(notion_sources, lora_database):
    lora_database.add_row("水彩城市", images=PHOTOS[:1])
    lora_database.add_row("风景", row_type="风景画", images=PHOTOS[:1])
    notion_sources.create(example_source(lora_database))

    def counted():
        status = notion_sources.get("design-team").get("status") or {}
        counts = status.get("counts") or {}
        return counts.get("trainingsCreated") == 1 and counts.get("rowsRejected") == 1 and status

    status = poll_until(counted, timeout=90, description="counts of 1 created and 1 rejected",
                        last_state=notion_sources.log_tail)
    ready = next(condition for condition in status["conditions"] if condition["type"] == "Ready")
    assert ready["status"] == "True"
    assert status["lastSyncTime"]


def test_misconfigured_source_not_ready(notion_sources, lora_database):
    manifest = example_source(lora_database)
    manifest["spec"]["properties"]["images"] = "附件"
    notion_sources.create(manifest)

    def not_ready():
        conditions = (notion_sources.get("design-team").get("status") or {}).get("conditions") or []
        return next((item for item in conditions if item["type"] == "Ready" and item["status"] == "False"), None)

    condition = poll_until(not_ready, timeout=90, description="Ready False", last_state=notion_sources.log_tail)
    assert "property '附件'" in condition["message"]
    assert "must be one of files" in condition["message"]

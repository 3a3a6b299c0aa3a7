"""A LoRATraining's labels, annotations and status become the view its row shows."""

from __future__ import annotations

import pytest

from lora_operator.notion import keys
from lora_operator.notion.training_view import view_from_training

pytestmark = pytest.mark.unit

PAGE = "0a1b2c3d4e5f4a6b8c7d9e0f1a2b3c4d"


def training(status: dict, *, labelled: bool = True) -> dict:
    return {
        "metadata": {
            "name": f"style-{PAGE}", "namespace": "design",
            "labels": {keys.LABEL_PAGE: PAGE} if labelled else {},
            "annotations": {keys.ANNOTATION_TITLE: "水彩城市", keys.ANNOTATION_CREATOR: "user-1"},
        },
        "status": status,
    }


def test_unlabelled_training_ignored():
    assert view_from_training(training({}, labelled=False)) is None


def test_new_training_has_no_progress():
    view = view_from_training(training({"phase": "Pending"}))
    assert view.phase == "Pending"
    assert view.percent is None
    assert view.title == "水彩城市"
    assert view.creator_id == "user-1"


def test_running_progress_read():
    status = {"phase": "Running", "startTime": "2025-01-01T00:00:00Z",
              "progress": {"step": 2, "totalSteps": 4, "percent": 50.0, "loss": 0.125, "epoch": 1}}
    view = view_from_training(training(status))
    assert (view.percent, view.loss, view.epoch) == (50.0, 0.125, 1)


def test_started_pending_shows_running():
    view = view_from_training(training({"phase": "Pending", "startTime": "2025-01-01T00:00:00Z"}))
    assert view.phase == "Running"


def test_success_is_complete():
    status = {"phase": "Succeeded", "artifacts": {
        "weights": {"diffusers": "s3://b/d.safetensors", "kohya": "s3://b/k.safetensors"},
        "previews": ["s3://b/p0.png", "s3://b/p1.png"]}}
    view = view_from_training(training(status))
    assert view.percent == 100.0
    assert view.weights_uri == "s3://b/k.safetensors"
    assert view.preview_uris == ("s3://b/p0.png", "s3://b/p1.png")
    assert view.terminal


def test_text_run_links_adapter():
    status = {"phase": "Succeeded", "artifacts": {
        "weights": {"peft": "s3://b/weights/peft/adapter_model.safetensors"},
        "previews": ["s3://b/previews/step-000200.jsonl"]}}
    view = view_from_training(training(status))
    assert view.weights_uri == "s3://b/weights/peft/adapter_model.safetensors"
    assert view.preview_uris == ("s3://b/previews/step-000200.jsonl",)


def test_failure_reason_from_condition():
    conditions = [
        {"type": "Running", "status": "False", "reason": "Failed"},
        {"type": "Failed", "status": "True", "reason": "InvalidInput"},
    ]
    view = view_from_training(training({"phase": "Failed", "message": "no usable image", "conditions": conditions}))
    assert view.failure_reason == "InvalidInput"
    assert view.message == "no usable image"


def test_no_failure_reason_unless_failed():
    conditions = [{"type": "Failed", "status": "False", "reason": "InvalidInput"}]
    assert view_from_training(training({"phase": "Running", "conditions": conditions})).failure_reason == ""

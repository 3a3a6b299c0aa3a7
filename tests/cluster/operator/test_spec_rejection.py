"""The API server itself rejects invalid LoRATraining specs, with messages that name the field."""

from __future__ import annotations

import json

import pytest
from kubernetes.client.exceptions import ApiException

from tests.cluster.operator.conftest import training_manifest

pytestmark = pytest.mark.cluster


def rejection(trainings, manifest: dict) -> str:
    with pytest.raises(ApiException) as caught:
        trainings.create(manifest)
    assert caught.value.status == 422, caught.value.body
    return json.loads(caught.value.body)["message"]


def test_rank_below_minimum_rejected(crds_installed, trainings):
    message = rejection(trainings, training_manifest("rank", lora={"rank": 0}))
    assert "spec.lora.rank" in message
    assert "should be greater than or equal to 1" in message


def test_steps_and_epochs_rejected(crds_installed, trainings):
    message = rejection(trainings, training_manifest("both", training={"maxSteps": 5, "epochs": 2}))
    assert "set either maxSteps or epochs, not both" in message


def test_resolution_multiple_of_eight(crds_installed, trainings):
    manifest = training_manifest("res", dataset={"sources": [{"uri": "s3://d/p"}], "resolution": 100})
    message = rejection(trainings, manifest)
    assert "spec.dataset.resolution" in message
    assert "multiple of 8" in message


def test_unknown_scheme_rejected(crds_installed, trainings):
    message = rejection(trainings, training_manifest("scheme", baseModel="ftp://models/sd"))
    assert "spec.baseModel" in message


def test_unknown_enum_rejected(crds_installed, trainings):
    message = rejection(trainings, training_manifest("enum", training={"scheduler": "exponential"}))
    assert "spec.training.scheduler" in message
    assert "constant_with_warmup" in message


def test_lora_edit_rejected(crds_installed, trainings):
    trainings.create(training_manifest("frozen"))
    with pytest.raises(ApiException) as caught:
        trainings.patch_spec("frozen", {"lora": {"rank": 16}})
    assert caught.value.status == 422
    assert "spec.lora cannot change after creation" in json.loads(caught.value.body)["message"]


def test_suspend_and_retry_stay_editable(crds_installed, trainings):
    trainings.create(training_manifest("editable"))
    patched = trainings.patch_spec("editable", {"suspend": True, "retry": {"maxAttempts": 5}})
    assert patched["spec"]["suspend"] is True
    assert patched["spec"]["retry"]["maxAttempts"] == 5


def test_defaults_applied_by_server(crds_installed, trainings):
    created = trainings.create(training_manifest("defaults", lora={}))
    assert created["spec"]["lora"]["rank"] == 8
    assert created["spec"]["lora"]["alpha"] == 16

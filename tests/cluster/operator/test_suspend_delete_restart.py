"""Suspend and resume, deletion with and without artifacts, and an operator killed mid-reconcile."""

from __future__ import annotations

import io

import pytest
from kubernetes.client.exceptions import ApiException

from tests.cluster.operator.conftest import training_manifest
from tests.harness.waiting import poll_until

pytestmark = pytest.mark.cluster


def test_suspend_then_resume(operator, trainings):
    trainings.create(training_manifest("pausable"))
    trainings.wait_pod_running("pausable-attempt-1")
    trainings.patch_spec("pausable", {"suspend": True})
    suspended = trainings.wait_phase("pausable", "Suspended")
    assert "set it to false to resume" in suspended["status"]["message"]
    poll_until(lambda: not trainings.pods_of("pausable-attempt-1"), timeout=60,
               description="the suspended attempt's pod is gone")

    trainings.patch_spec("pausable", {"suspend": False})
    trainings.wait_job("pausable-attempt-2")
    resumed = trainings.wait_phase("pausable", "Running")
    assert resumed["status"]["attempt"] == 2
    assert resumed["status"].get("failures", 0) == 0


def test_delete_collects_children(operator, trainings):
    trainings.create(training_manifest("short-lived"))
    trainings.wait_job("short-lived-attempt-1")
    trainings.delete("short-lived")
    poll_until(lambda: not trainings.jobs("short-lived"), timeout=90, description="Jobs garbage-collected")
    poll_until(
        lambda: not [item for item in trainings.core.list_namespaced_config_map(trainings.namespace).items
                     if item.metadata.name.startswith("short-lived-")],
        timeout=90, description="ConfigMaps garbage-collected",
    )


def put_artifact(s3, bucket: str, key: str) -> None:
    s3.client().put_object(bucket, key, io.BytesIO(b"weights"), 7)


def keys_under(s3, bucket: str, prefix: str) -> list[str]:
    return [item.object_name for item in s3.client().list_objects(bucket, prefix=prefix, recursive=True)]


def test_delete_keeps_artifacts_by_default(operator, trainings, s3, s3_bucket):
    created = trainings.create(training_manifest("keeper"))
    trainings.wait_job("keeper-attempt-1")
    prefix = f"{trainings.namespace}/keeper/{created['metadata']['uid']}/"
    put_artifact(s3, s3_bucket, prefix + "weights/keeper.safetensors")
    trainings.delete("keeper")
    poll_until(lambda: not trainings.jobs("keeper"), timeout=90, description="Jobs garbage-collected")
    assert keys_under(s3, s3_bucket, prefix) == [prefix + "weights/keeper.safetensors"]


def test_delete_on_removal_removes_prefix(operator, trainings, s3, s3_bucket):
    created = trainings.create(training_manifest("cleaner", output={"deleteOnRemoval": True}))
    poll_until(lambda: "lora-operator.io/delete-artifacts" in (trainings.get("cleaner")["metadata"].get("finalizers") or []),
               timeout=60, description="the artifact finalizer")
    prefix = f"{trainings.namespace}/cleaner/{created['metadata']['uid']}/"
    put_artifact(s3, s3_bucket, prefix + "weights/cleaner.safetensors")
    other = f"{trainings.namespace}/other/uid/weights/other.safetensors"
    put_artifact(s3, s3_bucket, other)
    trainings.delete("cleaner")

    def gone() -> bool:
        try:
            trainings.get("cleaner")
        except ApiException as error:
            return error.status == 404
        return False

    poll_until(gone, timeout=90, description="the training is deleted", last_state=lambda: operator.log()[-2000:])
    assert keys_under(s3, s3_bucket, prefix) == []
    assert keys_under(s3, s3_bucket, other) == [other]


def test_killed_operator_makes_no_duplicates(operator, trainings):
    names = [f"burst-{index}" for index in range(6)]
    for name in names:
        trainings.create(training_manifest(name))
    # Kill as soon as the first Job exists, so some reconciles are cut off midway.
    poll_until(lambda: any(trainings.jobs(name) for name in names), timeout=60, description="a first Job")
    operator.kill()
    operator.start()
    for name in names:
        trainings.wait_job(f"{name}-attempt-1")
    for name in names:
        assert [job.metadata.name for job in trainings.jobs(name)] == [f"{name}-attempt-1"]
        config_maps = [item.metadata.name for item in trainings.core.list_namespaced_config_map(trainings.namespace).items
                       if item.metadata.name.startswith(f"{name}-attempt")]
        assert config_maps == [f"{name}-attempt-1"]
    assert operator.starts == 2

"""The operator's Job runs the real trainer: the resource ends Succeeded with artifact URIs that exist.

kwok plays the pod. The test starts the Job's container command here, with the Job's
environment and its ConfigMap as the config file, so the real trainer writes to SeaweedFS.
"""

from __future__ import annotations

import json

import pytest

from tests.cluster.operator.conftest import training_manifest
from tests.harness.kwok import GPU_RESOURCE
from tests.harness.pod_fates import Fate, fate_annotations
from tests.security.test_secrets_not_exposed import run_trainer_like_kubelet, upload_photos

pytestmark = [pytest.mark.cluster, pytest.mark.s3, pytest.mark.trainer, pytest.mark.e2e, pytest.mark.slow]


def object_key(uri: str, bucket: str) -> str:
    assert uri.startswith(f"s3://{bucket}/"), uri
    return uri.removeprefix(f"s3://{bucket}/")


def test_job_trainer_succeeds_with_artifacts(operator, trainings, s3, s3_bucket, tmp_path):
    source = upload_photos(s3, s3_bucket)
    trainings.create(training_manifest(
        "real-run",
        dataset={"sources": [{"uri": source}], "resolution": 64},
        training={"maxSteps": 4, "batchSize": 2, "checkpointEvery": 2},
        previews={"every": 4, "count": 1, "inferenceSteps": 2},
        resources={"gpus": 0, "cpu": "1", "memory": "1Gi"},
    ))
    pod = trainings.wait_pod_running("real-run-attempt-1")
    running = trainings.wait_phase("real-run", "Running")
    assert running["status"]["attempt"] == 1

    trainer = run_trainer_like_kubelet(trainings, "real-run-attempt-1", tmp_path)
    assert trainer.returncode == 0, trainer.stderr[-4000:]
    progressed = trainings.wait_status(
        "real-run", lambda status: (status.get("progress") or {}).get("step") == 4, description="progress step 4"
    )
    assert progressed["status"]["progress"]["totalSteps"] == 4

    trainings.set_pod_fate(pod, fate_annotations(Fate.SUCCEED, after="0s"))
    done = trainings.wait_phase("real-run", "Succeeded", timeout=120)
    artifacts = done["status"]["artifacts"]
    uris = [artifacts["weights"]["kohya"], artifacts["weights"]["diffusers"], artifacts["lossPlot"],
            artifacts["config"], artifacts["summary"], *artifacts["previews"]]
    assert len(artifacts["previews"]) == 1
    s3_client = s3.client()
    for uri in uris:
        stat = s3_client.stat_object(s3_bucket, object_key(uri, s3_bucket))
        assert stat.size > 0, uri

    summary_key = object_key(artifacts["summary"], s3_bucket)
    summary = json.loads(s3_client.get_object(s3_bucket, summary_key).read())
    assert summary["metrics"]["globalStep"] == 4
    assert summary["run"]["name"] == "real-run"


def test_two_gpu_job_trains_data_parallel(operator, trainings, s3, s3_bucket, tmp_path):
    source = upload_photos(s3, s3_bucket)
    trainings.create(training_manifest(
        "parallel-run",
        dataset={"sources": [{"uri": source}], "resolution": 64},
        training={"maxSteps": 3, "batchSize": 1, "checkpointEvery": 3},
        previews={"count": 0},
        resources={"gpus": 2, "cpu": "2", "memory": "1Gi"},
    ))
    pod = trainings.wait_pod_running("parallel-run-attempt-1")
    job = trainings.batch.read_namespaced_job("parallel-run-attempt-1", trainings.namespace)
    container = job.spec.template.spec.containers[0]
    assert container.command[-2:] == ["--processes", "2"]
    assert container.resources.limits[GPU_RESOURCE] == "2"

    # No GPU here: the Job's config sets device auto, so the two processes train on the CPU over gloo.
    trainer = run_trainer_like_kubelet(trainings, "parallel-run-attempt-1", tmp_path)
    assert trainer.returncode == 0, trainer.stderr[-4000:]
    assert "workers ended with codes [0, 0]" in trainer.stderr

    trainings.set_pod_fate(pod, fate_annotations(Fate.SUCCEED, after="0s"))
    done = trainings.wait_phase("parallel-run", "Succeeded", timeout=120)
    s3_client = s3.client()
    summary_key = object_key(done["status"]["artifacts"]["summary"], s3_bucket)
    summary = json.loads(s3_client.get_object(s3_bucket, summary_key).read())
    assert summary["metrics"]["globalStep"] == 3
    weights_key = object_key(done["status"]["artifacts"]["weights"]["kohya"], s3_bucket)
    assert s3_client.stat_object(s3_bucket, weights_key).size > 0

"""The operator's Job runs the real trainer: the resource ends Succeeded with artifact URIs that exist.

kwok plays the pod. The test starts the Job's container command here, with the Job's
environment and its ConfigMap as the config file, so the real trainer writes to SeaweedFS.
"""

from __future__ import annotations

import json

import pytest

from tests.cluster.operator.conftest import training_manifest
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

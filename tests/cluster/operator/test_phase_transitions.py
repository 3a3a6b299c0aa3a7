"""Every phase of a LoRATraining on the real control plane; kwok decides how trainer pods end."""

from __future__ import annotations

import pytest
import yaml

from tests.cluster.operator.conftest import put_json, training_manifest
from tests.harness.pod_fates import Fate, fate_annotations

pytestmark = pytest.mark.cluster


def run_prefix(training: dict) -> str:
    metadata = training["metadata"]
    return f"{metadata['namespace']}/{metadata['name']}/{metadata['uid']}"


def test_pending_running_succeeded(operator, trainings, s3, s3_bucket):
    created = trainings.create(training_manifest("happy"))
    job = trainings.wait_job("happy-attempt-1")
    assert job.metadata.owner_references[0].uid == created["metadata"]["uid"]

    pod = trainings.wait_pod_running("happy-attempt-1")
    running = trainings.wait_phase("happy", "Running")
    assert running["status"]["attempt"] == 1
    assert running["status"]["jobName"] == "happy-attempt-1"
    assert running["status"]["startTime"]

    prefix = run_prefix(created)
    put_json(s3, s3_bucket, f"{prefix}/progress.json",
             {"phase": "training", "step": 2, "totalSteps": 4, "epoch": 1, "lossEma": 0.125, "etaSeconds": 9})
    progressed = trainings.wait_status("happy", lambda status: (status.get("progress") or {}).get("step") == 2,
                                       description="status.progress.step 2")
    assert progressed["status"]["progress"]["percent"] == 50.0
    assert progressed["status"]["progress"]["loss"] == 0.125

    put_json(s3, s3_bucket, f"{prefix}/run.json", {"artifacts": {
        "weights": {"kohya": {"key": "weights/happy.safetensors"}}, "previews": ["previews/step-000004-00.png"],
        "lossPlot": "loss.png"}})
    trainings.set_pod_fate(pod, fate_annotations(Fate.SUCCEED, after="0s"))
    done = trainings.wait_phase("happy", "Succeeded")
    artifacts = done["status"]["artifacts"]
    assert artifacts["weights"]["kohya"] == f"s3://{s3_bucket}/{prefix}/weights/happy.safetensors"
    assert artifacts["previews"] == [f"s3://{s3_bucket}/{prefix}/previews/step-000004-00.png"]
    assert done["status"]["progress"]["percent"] == 100.0
    conditions = {item["type"]: item for item in done["status"]["conditions"]}
    assert conditions["Complete"]["status"] == "True"
    assert conditions["Running"]["status"] == "False"
    assert conditions["Complete"]["observedGeneration"] == done["metadata"]["generation"]
    trainings.wait_event_reasons("happy", {"PodRunning", "Completed"})

    metrics = operator.metrics_text()
    assert 'lora_trainings{phase="Succeeded"} 1.0' in metrics
    assert "lora_create_to_job_seconds_count 1.0" in metrics
    assert "lora_run_seconds_count 1.0" in metrics


def test_config_snapshot_owned(operator, trainings, s3_bucket):
    created = trainings.create(training_manifest("snapshot"))
    trainings.wait_job("snapshot-attempt-1")
    config_map = trainings.core.read_namespaced_config_map("snapshot-attempt-1", trainings.namespace)
    assert config_map.metadata.owner_references[0].uid == created["metadata"]["uid"]
    config = yaml.safe_load(config_map.data["config.yaml"])
    assert config["output"]["uri"] == f"s3://{s3_bucket}/{run_prefix(created)}"
    assert config["spec"]["lora"]["rank"] == 8


def test_unschedulable_is_queued(operator, trainings):
    trainings.create(training_manifest("too-big", resources={"gpus": 16, "cpu": "1", "memory": "1Gi"}))
    queued = trainings.wait_phase("too-big", "Queued")
    assert "nvidia.com/gpu" in queued["status"]["message"]


def test_oom_retried_with_half_batch(operator, trainings):
    trainings.create(training_manifest("oom", training={"maxSteps": 4, "batchSize": 4, "gradientAccumulation": 1}))
    pod = trainings.wait_pod_running("oom-attempt-1")
    trainings.set_pod_fate(pod, fate_annotations(Fate.OOM_KILL, after="0s"))

    trainings.wait_job("oom-attempt-2")
    config_map = trainings.core.read_namespaced_config_map("oom-attempt-2", trainings.namespace)
    training = yaml.safe_load(config_map.data["config.yaml"])["spec"]["training"]
    assert training["batchSize"] == 2
    assert training["gradientAccumulation"] == 2
    status = trainings.wait_status("oom", lambda status: status.get("attempt") == 2, description="attempt 2")["status"]
    assert status["failures"] == 1
    # The status moves on to attempt 2 at once, so the cause is read from the Event.
    oom_events = [event for event in trainings.events("oom") if event.reason == "OOMKilled"]
    assert len(oom_events) == 1
    assert "retrying with batchSize 2 and gradientAccumulation 2" in oom_events[0].message


def test_kill_retried_with_same_batch(operator, trainings):
    # Exit 137 with reason Error and no out-of-memory line: a SIGKILL after the grace period.
    trainings.create(training_manifest("killed", training={"maxSteps": 4, "batchSize": 4, "gradientAccumulation": 1}))
    pod = trainings.wait_pod_running("killed-attempt-1")
    trainings.set_pod_fate(pod, fate_annotations(Fate.FAIL, after="0s", exit_code=137))

    trainings.wait_job("killed-attempt-2")
    config_map = trainings.core.read_namespaced_config_map("killed-attempt-2", trainings.namespace)
    training = yaml.safe_load(config_map.data["config.yaml"])["spec"]["training"]
    assert training["batchSize"] == 4
    assert training["gradientAccumulation"] == 1
    killed_events = [event for event in trainings.events("killed") if event.reason == "Killed"]
    assert len(killed_events) == 1
    assert "retrying as attempt 2" in killed_events[0].message


def test_invalid_input_not_retried(operator, trainings):
    trainings.create(training_manifest("bad-input"))
    pod = trainings.wait_pod_running("bad-input-attempt-1")
    trainings.set_pod_fate(pod, fate_annotations(Fate.FAIL, after="0s", exit_code=42))
    failed = trainings.wait_phase("bad-input", "Failed")
    assert failed["status"]["conditions"][-1]["type"] in {"Failed", "Suspended"}
    conditions = {item["type"]: item for item in failed["status"]["conditions"]}
    assert conditions["Failed"]["reason"] == "InvalidInput"
    assert trainings.jobs("bad-input")[0].metadata.name == "bad-input-attempt-1"
    assert len(trainings.jobs("bad-input")) == 1


def test_attempts_stop_at_max(operator, trainings):
    trainings.create(training_manifest("flaky", retry={"maxAttempts": 2}))
    for attempt in (1, 2):
        pod = trainings.wait_pod_running(f"flaky-attempt-{attempt}")
        trainings.set_pod_fate(pod, fate_annotations(Fate.FAIL, after="0s", exit_code=3))
    failed = trainings.wait_phase("flaky", "Failed")
    assert "no attempts left (retry.maxAttempts is 2)" in failed["status"]["message"]
    assert failed["status"]["failures"] == 2
    assert sorted(job.metadata.name for job in trainings.jobs("flaky")) == ["flaky-attempt-1", "flaky-attempt-2"]


def test_disruption_keeps_attempt(operator, trainings):
    trainings.create(training_manifest("preempted"))
    pod = trainings.wait_pod_running("preempted-attempt-1")
    trainings.set_pod_fate(pod, fate_annotations(Fate.DISRUPT, after="0s"))
    # The Job's podFailurePolicy ignores the disruption and starts a replacement pod.
    from tests.harness.waiting import poll_until

    poll_until(lambda: len(trainings.pods_of("preempted-attempt-1")) >= 2, timeout=60,
               description="a replacement pod in the same attempt")
    running = trainings.wait_phase("preempted", "Running")
    assert running["status"]["attempt"] == 1
    assert running["status"].get("failures", 0) == 0

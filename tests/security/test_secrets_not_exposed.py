"""After a full run, no secret value shows up anywhere a user of the cluster or the bucket can read.

The operator creates the Job and kwok runs its pod. The real trainer runs here with the
environment that kubelet would give the container, Secret references resolved, and writes
progress.json, run.json and the rest of the run folder to SeaweedFS. Then the test searches
the operator log, the trainer output, Events, the training, ConfigMaps, Jobs, pods and every
object of the run folder for the S3 keys and a Notion-like token.
"""

from __future__ import annotations

import base64
import json
import secrets
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from kubernetes import client

from lora_operator.jobs.render import CONFIG_FILE, CONFIG_MOUNT
from tests.cluster.operator.conftest import OperatorProcess, Trainings, training_manifest
from tests.datasets import PHOTOS_DIR
from tests.harness.pod_fates import Fate, fate_annotations
from tests.harness.seaweed import SeaweedS3
from tests.harness.stack import ControlPlane

pytestmark = [pytest.mark.cluster, pytest.mark.s3, pytest.mark.trainer, pytest.mark.e2e, pytest.mark.slow]

PHOTO_NAMES = ["astronaut.png", "coffee.png", "horse.png", "rocket.jpg"]
TRAINING = "secret-check"
TRAINER_TIMEOUT_SECONDS = 600


def create_notion_secret(cluster: ControlPlane, namespace: str, token: str) -> None:
    body = {"metadata": {"name": "notion-token"}, "stringData": {"token": token}}
    with cluster.api_client() as api_client:
        client.CoreV1Api(api_client).create_namespaced_secret(namespace, body)


def upload_photos(s3: SeaweedS3, bucket: str) -> str:
    s3_client = s3.client()
    for name in PHOTO_NAMES:
        s3_client.fput_object(bucket, f"data/photos/{name}", str(PHOTOS_DIR / name))
    return f"s3://{bucket}/data/photos"


def sanitize(trainings: Trainings, item: object) -> dict:
    """Return an API object as the plain JSON-style dict that the API server sent."""
    return trainings.core.api_client.sanitize_for_serialization(item)


def container_environment(core: client.CoreV1Api, namespace: str, container: dict, scratch: Path) -> dict[str, str]:
    """Resolve the container's env as kubelet does, with /tmp (an emptyDir in the pod) mapped to scratch."""
    environment = {}
    for entry in container["env"]:
        if "valueFrom" in entry:
            reference = entry["valueFrom"]["secretKeyRef"]
            secret = core.read_namespaced_secret(reference["name"], namespace)
            environment[entry["name"]] = base64.b64decode(secret.data[reference["key"]]).decode()
        else:
            environment[entry["name"]] = entry["value"].replace("/tmp", str(scratch), 1)
    return environment


def run_trainer_like_kubelet(trainings: Trainings, job_name: str, tmp_path: Path) -> subprocess.CompletedProcess[str]:
    """Run the Job's trainer container here: its command, its env, its ConfigMap as the config file."""
    job = trainings.batch.read_namespaced_job(job_name, trainings.namespace)
    container = sanitize(trainings, job.spec.template.spec.containers[0])
    scratch = tmp_path / "scratch"
    scratch.mkdir()

    config_map = trainings.core.read_namespaced_config_map(job_name, trainings.namespace)
    config = yaml.safe_load(config_map.data[CONFIG_FILE])
    config["workDir"] = str(scratch / "work")
    config_path = tmp_path / CONFIG_FILE
    config_path.write_text(yaml.safe_dump(config), encoding="utf-8")

    command = container["command"]
    assert command[0] == "lora-train", f"the trainer container must start lora-train, got {command}"
    arguments = [str(config_path) if item == f"{CONFIG_MOUNT}/{CONFIG_FILE}" else item for item in command[1:]]
    environment = container_environment(trainings.core, trainings.namespace, container, scratch)
    environment["PATH"] = str(Path(sys.executable).parent) + ":/usr/bin:/bin"
    return subprocess.run(
        [sys.executable, "-m", "lora_trainer.cli", *arguments],
        env=environment, capture_output=True, text=True, timeout=TRAINER_TIMEOUT_SECONDS,
    )


def run_folder_objects(s3: SeaweedS3, bucket: str, prefix: str) -> dict[str, bytes]:
    s3_client = s3.client()
    objects = {}
    for item in s3_client.list_objects(bucket, prefix=f"{prefix}/", recursive=True):
        response = s3_client.get_object(bucket, item.object_name)
        try:
            objects[item.object_name.removeprefix(f"{prefix}/")] = response.read()
        finally:
            response.close()
            response.release_conn()
    return objects


def readable_places(
    trainings: Trainings, operator: OperatorProcess, trainer: subprocess.CompletedProcess[str], objects: dict[str, bytes]
) -> dict[str, bytes]:
    """Everything a user can read after the run, as bytes by where it came from."""
    namespace = trainings.namespace

    def dump(items: list) -> bytes:
        return json.dumps([sanitize(trainings, item) for item in items]).encode()

    places = {
        "operator log": operator.log().encode(),
        "trainer output": (trainer.stdout + trainer.stderr).encode(),
        "events": dump(trainings.core.list_namespaced_event(namespace).items),
        "training": json.dumps(trainings.get(TRAINING)).encode(),
        "configmaps": dump(trainings.core.list_namespaced_config_map(namespace).items),
        "jobs": dump(trainings.batch.list_namespaced_job(namespace).items),
        "pods": dump(trainings.core.list_namespaced_pod(namespace).items),
    }
    places.update({f"s3 {key}": data for key, data in objects.items()})
    return places


def test_no_secret_anywhere_readable(
    cluster: ControlPlane, operator: OperatorProcess, trainings: Trainings, s3: SeaweedS3, s3_bucket: str,
    tmp_path: Path,
) -> None:
    notion_token = f"ntn_{secrets.token_hex(20)}"
    create_notion_secret(cluster, trainings.namespace, notion_token)
    source = upload_photos(s3, s3_bucket)
    created = trainings.create(training_manifest(
        TRAINING,
        dataset={"sources": [{"uri": source}], "resolution": 64},
        training={"maxSteps": 2, "batchSize": 2, "checkpointEvery": 2},
        previews={"every": 2, "count": 1, "inferenceSteps": 2},
        resources={"gpus": 0, "cpu": "1", "memory": "1Gi"},
    ))
    job_name = f"{TRAINING}-attempt-1"
    trainings.wait_job(job_name)
    pod = trainings.wait_pod_running(job_name)

    trainer = run_trainer_like_kubelet(trainings, job_name, tmp_path)
    assert trainer.returncode == 0, trainer.stderr[-4000:]
    trainings.set_pod_fate(pod, fate_annotations(Fate.SUCCEED, after="0s"))
    trainings.wait_phase(TRAINING, "Succeeded", timeout=120)

    metadata = created["metadata"]
    objects = run_folder_objects(s3, s3_bucket, f"{metadata['namespace']}/{metadata['name']}/{metadata['uid']}")
    assert "progress.json" in objects
    assert "run.json" in objects
    places = readable_places(trainings, operator, trainer, objects)
    values = {"S3 secret key": s3.secret_key, "S3 access key": s3.access_key, "Notion token": notion_token}
    for label, value in values.items():
        for form, needle in (("plain", value), ("base64", base64.b64encode(value.encode()).decode())):
            leaked = sorted(place for place, data in places.items() if needle.encode() in data)
            assert leaked == [], f"{label} ({form}) found in {leaked}"

"""Fixtures that run the real operator process against the test control plane and SeaweedFS."""

from __future__ import annotations

import base64
import json
import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from kubernetes import client

from tests.harness.ports import free_ports
from tests.harness.kwok import GPU_RESOURCE
from tests.harness.waiting import poll_until

REPO = Path(__file__).resolve().parents[3]
GROUP, VERSION, PLURAL = "lora-operator.io", "v1alpha1", "loratrainings"
SECRET_NAME = "lora-s3-credentials"


@pytest.fixture(scope="session")
def crds_installed(cluster) -> None:
    cluster.apply_file(REPO / "crds" / "loratraining.yaml")


@dataclass
class OperatorProcess:
    """A running `lora-operator run`; restartable, so tests can kill it mid-reconcile."""

    environment: dict[str, str]
    log_path: Path
    ports: list[int]
    process: subprocess.Popen | None = None
    starts: int = field(default=0)

    def start(self) -> None:
        self.starts += 1
        command = [
            sys.executable, "-m", "lora_operator.cli", "run", "--bind-address", "127.0.0.1",
            "--metrics-port", str(self.ports[0]), "--health-port", str(self.ports[1]), "--log-level", "DEBUG",
        ]
        log_file = self.log_path.open("a", encoding="utf-8")
        log_file.write(f"\n===== start {self.starts} =====\n")
        log_file.flush()
        self.process = subprocess.Popen(command, env=self.environment, stdout=log_file, stderr=subprocess.STDOUT)

    def kill(self) -> None:
        """SIGKILL: no cleanup, as when a node dies."""
        if self.process and self.process.poll() is None:
            self.process.send_signal(signal.SIGKILL)
            self.process.wait(timeout=30)

    def stop(self) -> None:
        if self.process and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.kill()

    def log(self) -> str:
        return self.log_path.read_text(encoding="utf-8", errors="replace")

    def metrics_text(self) -> str:
        import urllib.request

        with urllib.request.urlopen(f"http://127.0.0.1:{self.ports[0]}/metrics", timeout=10) as response:
            return response.read().decode()


@pytest.fixture
def s3_secret(cluster, namespace, s3) -> str:
    """The Secret that gives trainer pods their S3 keys."""
    with cluster.api_client() as api_client:
        client.CoreV1Api(api_client).create_namespaced_secret(namespace, {
            "metadata": {"name": SECRET_NAME},
            "data": {
                "AWS_ACCESS_KEY_ID": base64.b64encode(s3.access_key.encode()).decode(),
                "AWS_SECRET_ACCESS_KEY": base64.b64encode(s3.secret_key.encode()).decode(),
            },
        })
    return SECRET_NAME


@pytest.fixture
def operator(cluster, crds_installed, namespace, s3, s3_bucket, s3_secret, tmp_path) -> Iterator[OperatorProcess]:
    """The operator watching this test's namespace, writing runs into this test's bucket."""
    environment = {
        **os.environ,
        "KUBECONFIG": str(cluster.kubeconfig),
        "LORA_OPERATOR_NAMESPACES": namespace,
        "LORA_OPERATOR_S3_ENDPOINT": s3.endpoint,
        "LORA_OPERATOR_S3_SECURE": "false",
        "LORA_OPERATOR_S3_BUCKET": s3_bucket,
        "LORA_OPERATOR_S3_CREDENTIALS_SECRET": s3_secret,
        "LORA_OPERATOR_PROGRESS_INTERVAL_SECONDS": "1",
        "LORA_OPERATOR_STOP_GRACE_SECONDS": "10",
        "LORA_OPERATOR_TRAINER_IMAGE": "lora-trainer:test",
        "AWS_ACCESS_KEY_ID": s3.access_key,
        "AWS_SECRET_ACCESS_KEY": s3.secret_key,
    }
    handle = OperatorProcess(environment=environment, log_path=tmp_path / "operator.log", ports=free_ports(2))
    handle.start()
    yield handle
    handle.stop()


@pytest.fixture
def api(cluster) -> Iterator[client.ApiClient]:
    with cluster.api_client() as api_client:
        yield api_client


def training_manifest(name: str, **spec_overrides) -> dict:
    spec = {
        "baseModel": "builtin://tiny-sd",
        "dataset": {"sources": [{"uri": "s3://data/photos"}], "resolution": 64},
        "training": {"maxSteps": 4, "batchSize": 4},
        "resources": {"gpus": 1, "cpu": "1", "memory": "1Gi"},
    }
    spec.update(spec_overrides)
    return {"apiVersion": f"{GROUP}/{VERSION}", "kind": "LoRATraining", "metadata": {"name": name}, "spec": spec}


class Trainings:
    """Helpers over the LoRATraining API of one namespace."""

    def __init__(self, api_client: client.ApiClient, namespace: str, operator: OperatorProcess | None = None) -> None:
        self.custom = client.CustomObjectsApi(api_client)
        self.batch = client.BatchV1Api(api_client)
        self.core = client.CoreV1Api(api_client)
        self.namespace = namespace
        self.operator = operator

    def create(self, manifest: dict) -> dict:
        return self.custom.create_namespaced_custom_object(GROUP, VERSION, self.namespace, PLURAL, manifest)

    def get(self, name: str) -> dict:
        return self.custom.get_namespaced_custom_object(GROUP, VERSION, self.namespace, PLURAL, name)

    def patch_spec(self, name: str, spec: dict) -> dict:
        return self.custom.patch_namespaced_custom_object(GROUP, VERSION, self.namespace, PLURAL, name, {"spec": spec})

    def delete(self, name: str) -> None:
        self.custom.delete_namespaced_custom_object(GROUP, VERSION, self.namespace, PLURAL, name)

    def describe(self, name: str) -> str:
        try:
            status = self.get(name).get("status")
        except client.exceptions.ApiException as error:
            status = f"get failed: {error.status}"
        log_tail = self.operator.log()[-3000:] if self.operator else ""
        return f"status={json.dumps(status)}\noperator log tail:\n{log_tail}"

    def wait_phase(self, name: str, phase: str, *, timeout: float = 90) -> dict:
        return poll_until(
            lambda: (body := self.get(name)) and (body.get("status") or {}).get("phase") == phase and body,
            timeout=timeout, description=f"LoRATraining {name} phase {phase}", last_state=lambda: self.describe(name),
        )

    def wait_status(self, name: str, check, *, description: str, timeout: float = 90) -> dict:
        return poll_until(
            lambda: (body := self.get(name)) and check(body.get("status") or {}) and body,
            timeout=timeout, description=description, last_state=lambda: self.describe(name),
        )

    def jobs(self, name: str) -> list:
        selector = f"lora-operator.io/training={name}"
        return self.batch.list_namespaced_job(self.namespace, label_selector=selector).items

    def wait_job(self, job_name: str, *, timeout: float = 60):
        return poll_until(
            lambda: next((job for job in self.batch.list_namespaced_job(self.namespace).items
                          if job.metadata.name == job_name), None),
            timeout=timeout, description=f"Job {job_name}",
            last_state=lambda: self.operator.log()[-3000:] if self.operator else "",
        )

    def pods_of(self, job_name: str) -> list:
        return self.core.list_namespaced_pod(self.namespace, label_selector=f"job-name={job_name}").items

    def wait_pod_running(self, job_name: str, *, timeout: float = 60):
        return poll_until(
            lambda: next((pod for pod in self.pods_of(job_name) if pod.status.phase == "Running"), None),
            timeout=timeout, description=f"a Running pod of Job {job_name}", last_state=self.gpu_bookings,
        )

    def gpu_bookings(self) -> list[str]:
        """Describe every pod that books GPUs on a node, for a test that waits in vain for one."""
        bookings = []
        for pod in self.core.list_pod_for_all_namespaces().items:
            gpus = sum(int((container.resources.requests or {}).get(GPU_RESOURCE, 0)) for container in pod.spec.containers)
            if gpus and pod.spec.node_name:
                deleting = " deleting" if pod.metadata.deletion_timestamp else ""
                bookings.append(f"{pod.metadata.namespace}/{pod.metadata.name} {pod.status.phase}{deleting} gpus={gpus}")
        return bookings

    def set_pod_fate(self, pod, annotations: dict[str, str]) -> None:
        self.core.patch_namespaced_pod(pod.metadata.name, self.namespace, {"metadata": {"annotations": annotations}})

    def events(self, name: str) -> list:
        selector = f"involvedObject.name={name}"
        return self.core.list_namespaced_event(self.namespace, field_selector=selector).items

    def wait_event_reasons(self, name: str, reasons: set[str], *, timeout: float = 30) -> list[str]:
        """Return the Event reasons of a training once they include ``reasons``.

        The operator records a transition's Event after the status patch, so a test that has
        just seen the new phase may be a moment early for the Event.
        """
        def seen() -> list[str] | None:
            found = [event.reason for event in self.events(name)]
            return found if reasons <= set(found) else None

        return poll_until(seen, timeout=timeout, description=f"Events {sorted(reasons)} of {name}")


@pytest.fixture
def trainings(api, namespace, request) -> Trainings:
    operator = request.getfixturevalue("operator") if "operator" in request.fixturenames else None
    return Trainings(api, namespace, operator)


def put_json(s3, bucket: str, key: str, document: dict) -> None:
    import io

    data = json.dumps(document).encode()
    s3.client().put_object(bucket, key, io.BytesIO(data), len(data), content_type="application/json")

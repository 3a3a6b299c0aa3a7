"""The test stack: a workspace folder, the Kubernetes control plane with fake GPU nodes, and S3."""

from __future__ import annotations

import logging
import shutil
import subprocess
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import TypeVar

from kubernetes import client, config

from tests.harness import apply
from tests.harness.apiserver import KUBERNETES_SERVICE_IP, start_apiserver
from tests.harness.certs import create_control_plane_pki
from tests.harness.controller_manager import start_controller_manager
from tests.harness.etcd import start_etcd
from tests.harness.kubeconfig import write_kubeconfig
from tests.harness.kwok import create_fake_nodes, start_kwok, wait_for_fake_nodes
from tests.harness.process import ComponentProcess, component_environment
from tests.harness.scheduler import start_scheduler
from tests.harness.seaweed import SeaweedS3, start_seaweed

logger = logging.getLogger(__name__)

T = TypeVar("T")


class Workspace:
    """A temporary folder with logs/ (kept after the run) and run/ (data, keys; removed at cleanup)."""

    def __init__(self, root: Path | None = None) -> None:
        self.root = root or Path(tempfile.mkdtemp(prefix="lora-operator-stack-"))
        self.log_dir = self.root / "logs"
        self.run_dir = self.root / "run"
        self.log_dir.mkdir(parents=True, exist_ok=True)
        self.run_dir.mkdir(parents=True, exist_ok=True)

    def component_dir(self, name: str) -> Path:
        path = self.run_dir / name
        path.mkdir(parents=True, exist_ok=True)
        return path

    def remove_run_data(self) -> None:
        shutil.rmtree(self.run_dir, ignore_errors=True)


@dataclass
class ControlPlane:
    """A running kube-apiserver with etcd, controllers, scheduler and kwok-managed GPU nodes."""

    kubeconfig: Path
    server: str
    ca_file: Path
    bin_dir: Path
    log_dir: Path
    discovery_cache_file: Path
    processes: list[ComponentProcess] = field(default_factory=list)

    def api_client(self) -> client.ApiClient:
        """Return a new ApiClient authenticated as a cluster admin (group system:masters)."""
        return config.new_client_from_config(config_file=str(self.kubeconfig))

    def apply_file(self, path: Path, *, namespace: str | None = None) -> list[dict]:
        """Server-side apply every document of a YAML file and return the applied objects."""
        with self.api_client() as api_client:
            return apply.apply_file(api_client, path, namespace=namespace, cache_file=self.discovery_cache_file)

    def apply_objects(self, objects: list[dict], *, namespace: str | None = None) -> list[dict]:
        """Server-side apply manifests given as dicts and return the applied objects."""
        with self.api_client() as api_client:
            return apply.apply_objects(api_client, objects, namespace=namespace, cache_file=self.discovery_cache_file)

    def kubectl(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        """Run the pinned kubectl against this cluster and return its captured output."""
        command = [str(self.bin_dir / "kubectl"), f"--kubeconfig={self.kubeconfig}", *args]
        return subprocess.run(command, capture_output=True, text=True, check=check, env=component_environment())

    def exited_components(self) -> list[ComponentProcess]:
        return [process for process in self.processes if not process.is_running()]

    def stop(self) -> None:
        """Stop the components in reverse start order."""
        for process in reversed(self.processes):
            process.stop()


def _timed(step: str, timings: dict[str, float], action: Callable[[], T]) -> T:
    started = time.monotonic()
    result = action()
    timings[step] = time.monotonic() - started
    return result


@contextmanager
def _stop_on_error(processes: list[ComponentProcess]) -> Iterator[None]:
    try:
        yield
    except BaseException:
        for process in reversed(processes):
            process.stop(timeout=2.0)
        raise


def start_control_plane(*, bin_dir: Path, workspace: Workspace) -> ControlPlane:
    """Start etcd, kube-apiserver, kube-controller-manager, kube-scheduler and kwok; wait for Ready nodes."""
    started = time.monotonic()
    timings: dict[str, float] = {}
    processes: list[ComponentProcess] = []
    log_dir = workspace.log_dir

    pki_dir = workspace.component_dir("pki")
    pki = _timed("certificates", timings, lambda: create_control_plane_pki(pki_dir, service_ip=KUBERNETES_SERVICE_IP))

    with _stop_on_error(processes):
        etcd = _timed(
            "etcd",
            timings,
            lambda: start_etcd(bin_dir=bin_dir, data_dir=workspace.component_dir("etcd"), log_dir=log_dir),
        )
        processes.append(etcd.process)

        apiserver = _timed(
            "kube-apiserver",
            timings,
            lambda: start_apiserver(
                bin_dir=bin_dir,
                etcd_url=etcd.client_url,
                pki=pki,
                cert_dir=workspace.component_dir("kube-apiserver"),
                log_dir=log_dir,
            ),
        )
        processes.append(apiserver.process)

        kubeconfig = write_kubeconfig(
            pki_dir / "admin.kubeconfig", server=apiserver.url, ca_file=pki.ca.cert, client=pki.admin, user="admin"
        )
        controller_manager_kubeconfig = write_kubeconfig(
            pki_dir / "controller-manager.kubeconfig",
            server=apiserver.url,
            ca_file=pki.ca.cert,
            client=pki.controller_manager,
            user="system:kube-controller-manager",
        )
        scheduler_kubeconfig = write_kubeconfig(
            pki_dir / "scheduler.kubeconfig",
            server=apiserver.url,
            ca_file=pki.ca.cert,
            client=pki.scheduler,
            user="system:kube-scheduler",
        )

        # The three start in parallel: each only needs kube-apiserver.
        controller_manager = start_controller_manager(
            bin_dir=bin_dir,
            kubeconfig=controller_manager_kubeconfig,
            pki=pki,
            cert_dir=workspace.component_dir("kube-controller-manager"),
            log_dir=log_dir,
        )
        processes.append(controller_manager.process)
        scheduler = start_scheduler(
            bin_dir=bin_dir,
            kubeconfig=scheduler_kubeconfig,
            cert_dir=workspace.component_dir("kube-scheduler"),
            log_dir=log_dir,
        )
        processes.append(scheduler.process)
        kwok = start_kwok(bin_dir=bin_dir, kubeconfig=kubeconfig, work_dir=workspace.component_dir("kwok"), log_dir=log_dir)
        processes.append(kwok)

        _timed("kube-controller-manager", timings, controller_manager.wait_healthy)
        _timed("kube-scheduler", timings, scheduler.wait_healthy)

        with config.new_client_from_config(config_file=str(kubeconfig)) as api_client:
            core = client.CoreV1Api(api_client)
            _timed("fake nodes", timings, lambda: create_fake_nodes(core))
            _timed(
                "fake nodes Ready",
                timings,
                lambda: wait_for_fake_nodes(core, kwok=kwok, controller_manager=controller_manager.process),
            )

    steps = ", ".join(f"{step} {seconds:.1f} s" for step, seconds in timings.items())
    logger.info("control plane ready at %s in %.1f s (%s)", apiserver.url, time.monotonic() - started, steps)
    return ControlPlane(
        kubeconfig=kubeconfig,
        server=apiserver.url,
        ca_file=pki.ca.cert,
        bin_dir=bin_dir,
        log_dir=log_dir,
        discovery_cache_file=pki_dir / "discovery-cache.json",
        processes=processes,
    )


def start_s3(*, workspace: Workspace) -> SeaweedS3:
    """Start SeaweedFS; it needs none of the Kubernetes binaries."""
    started = time.monotonic()
    server = start_seaweed(work_dir=workspace.component_dir("seaweedfs"), log_dir=workspace.log_dir)
    logger.info("S3 (SeaweedFS) ready at %s in %.1f s", server.endpoint, time.monotonic() - started)
    return server

"""kube-scheduler for the test control plane."""

from __future__ import annotations

from pathlib import Path

from tests.harness.ports import free_ports
from tests.harness.process import start_process
from tests.harness.secure_serving import ServingComponent, serving_arguments


def start_scheduler(*, bin_dir: Path, kubeconfig: Path, cert_dir: Path, log_dir: Path) -> ServingComponent:
    """Start kube-scheduler without waiting; call wait_healthy() on the result."""
    (port,) = free_ports(1)
    command = [
        bin_dir / "kube-scheduler",
        *serving_arguments(kubeconfig=kubeconfig, cert_dir=cert_dir, port=port),
    ]
    process = start_process(name="kube-scheduler", command=command, log_dir=log_dir)
    return ServingComponent(process=process, port=port)

"""kube-controller-manager for the test control plane."""

from __future__ import annotations

from pathlib import Path

from tests.harness.certs import ControlPlanePki
from tests.harness.ports import free_ports
from tests.harness.process import start_process
from tests.harness.secure_serving import ServingComponent, serving_arguments


def start_controller_manager(
    *,
    bin_dir: Path,
    kubeconfig: Path,
    pki: ControlPlanePki,
    cert_dir: Path,
    log_dir: Path,
) -> ServingComponent:
    """Start kube-controller-manager without waiting; call wait_healthy() on the result."""
    (port,) = free_ports(1)
    command = [
        bin_dir / "kube-controller-manager",
        *serving_arguments(kubeconfig=kubeconfig, cert_dir=cert_dir, port=port),
        # Controllers that need a cloud provider disable themselves when none
        # is configured, so the default set runs without errors.
        "--controllers=*",
        # Each controller then acts as its own service account, as in a
        # kubeadm cluster, which exercises token signing and the bootstrap
        # RBAC roles.
        "--use-service-account-credentials=true",
        f"--service-account-private-key-file={pki.service_account_private_key}",
        f"--root-ca-file={pki.ca.cert}",
        f"--cluster-signing-cert-file={pki.ca.cert}",
        f"--cluster-signing-key-file={pki.ca.key}",
    ]
    process = start_process(name="kube-controller-manager", command=command, log_dir=log_dir)
    return ServingComponent(process=process, port=port)

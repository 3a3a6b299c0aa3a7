"""Arguments and health probe shared by kube-controller-manager and kube-scheduler."""

from __future__ import annotations

import ssl
from dataclasses import dataclass
from pathlib import Path

from tests.harness.ports import LOOPBACK
from tests.harness.probes import http_get
from tests.harness.process import ComponentProcess, wait_until

READY_TIMEOUT_SECONDS = 120.0


def _self_signed_probe_context() -> ssl.SSLContext:
    # Both components serve /healthz with a self-signed certificate that they
    # make at start in --cert-dir; the probe only talks to 127.0.0.1.
    context = ssl.create_default_context()
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    return context


def serving_arguments(*, kubeconfig: Path, cert_dir: Path, port: int) -> list[str]:
    return [
        f"--kubeconfig={kubeconfig}",
        f"--authentication-kubeconfig={kubeconfig}",
        f"--authorization-kubeconfig={kubeconfig}",
        f"--bind-address={LOOPBACK}",
        f"--secure-port={port}",
        f"--cert-dir={cert_dir}",
        # A single instance of each runs, so leader election only adds delay.
        "--leader-elect=false",
    ]


@dataclass
class ServingComponent:
    """A started component whose secure port serves /healthz."""

    process: ComponentProcess
    port: int

    def wait_healthy(self) -> None:
        context = _self_signed_probe_context()
        wait_until(
            lambda: http_get(f"https://{LOOPBACK}:{self.port}/healthz", ssl_context=context)[0] == 200,
            process=self.process,
            expected_state="healthy (/healthz)",
            timeout=READY_TIMEOUT_SECONDS,
            interval=0.5,
        )

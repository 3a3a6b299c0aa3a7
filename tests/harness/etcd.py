"""etcd for the test control plane: one member on loopback, data in a temporary folder."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from tests.harness.probes import http_get
from tests.harness.ports import LOOPBACK, free_ports
from tests.harness.process import ComponentProcess, start_process, wait_until

READY_TIMEOUT_SECONDS = 60.0


@dataclass
class Etcd:
    process: ComponentProcess
    client_url: str


def start_etcd(*, bin_dir: Path, data_dir: Path, log_dir: Path) -> Etcd:
    """Start etcd and wait until its /health endpoint reports healthy."""
    client_port, peer_port = free_ports(2)
    client_url = f"http://{LOOPBACK}:{client_port}"
    peer_url = f"http://{LOOPBACK}:{peer_port}"
    command = [
        bin_dir / "etcd",
        "--name=test",
        f"--data-dir={data_dir}",
        f"--listen-client-urls={client_url}",
        f"--advertise-client-urls={client_url}",
        f"--listen-peer-urls={peer_url}",
        f"--initial-advertise-peer-urls={peer_url}",
        f"--initial-cluster=test={peer_url}",
        "--initial-cluster-state=new",
        # The data is thrown away after the run, so durability buys nothing
        # and fsync would slow every write on a shared disk.
        "--unsafe-no-fsync",
        "--log-level=warn",
    ]
    process = start_process(name="etcd", command=command, log_dir=log_dir)
    wait_until(lambda: _is_healthy(client_url), process=process, expected_state="healthy", timeout=READY_TIMEOUT_SECONDS)
    return Etcd(process=process, client_url=client_url)


def _is_healthy(client_url: str) -> bool:
    status, body = http_get(f"{client_url}/health")
    return status == 200 and b'"health":"true"' in body

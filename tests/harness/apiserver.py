"""kube-apiserver for the test control plane: secure serving on loopback with RBAC."""

from __future__ import annotations

import ssl
from dataclasses import dataclass
from pathlib import Path

from tests.harness.certs import FRONT_PROXY_CLIENT_NAME, ControlPlanePki
from tests.harness.ports import LOOPBACK, free_ports
from tests.harness.probes import http_get
from tests.harness.process import ComponentProcess, start_process, wait_until

# Three minutes leave room for a cold start on a busy 2-core machine, where
# kube-apiserver installs its bootstrap RBAC policy and the CRD informers.
READY_TIMEOUT_SECONDS = 180.0

# No Service traffic flows in this cluster (no kube-proxy and no real pods),
# so the range only has to be valid. The first address goes to the
# `kubernetes` Service.
SERVICE_CLUSTER_IP_RANGE = "10.96.0.0/24"
KUBERNETES_SERVICE_IP = "10.96.0.1"


@dataclass
class ApiServer:
    process: ComponentProcess
    url: str


def start_apiserver(
    *,
    bin_dir: Path,
    etcd_url: str,
    pki: ControlPlanePki,
    cert_dir: Path,
    log_dir: Path,
) -> ApiServer:
    """Start kube-apiserver and wait until /readyz returns 200."""
    (port,) = free_ports(1)
    url = f"https://{LOOPBACK}:{port}"
    command = [
        bin_dir / "kube-apiserver",
        f"--etcd-servers={etcd_url}",
        f"--bind-address={LOOPBACK}",
        f"--advertise-address={LOOPBACK}",
        f"--secure-port={port}",
        f"--cert-dir={cert_dir}",
        f"--tls-cert-file={pki.apiserver.cert}",
        f"--tls-private-key-file={pki.apiserver.key}",
        f"--client-ca-file={pki.ca.cert}",
        f"--requestheader-client-ca-file={pki.front_proxy_ca.cert}",
        f"--requestheader-allowed-names={FRONT_PROXY_CLIENT_NAME}",
        "--requestheader-username-headers=X-Remote-User",
        "--requestheader-group-headers=X-Remote-Group",
        "--requestheader-extra-headers-prefix=X-Remote-Extra-",
        f"--proxy-client-cert-file={pki.front_proxy_client.cert}",
        f"--proxy-client-key-file={pki.front_proxy_client.key}",
        f"--service-account-issuer={url}",
        f"--service-account-key-file={pki.service_account_public_key}",
        f"--service-account-signing-key-file={pki.service_account_private_key}",
        f"--service-cluster-ip-range={SERVICE_CLUSTER_IP_RANGE}",
        "--authorization-mode=Node,RBAC",
        # The default reconciler would publish the advertise address as the
        # endpoint of the `kubernetes` Service; nothing in the cluster uses it.
        "--endpoint-reconciler-type=none",
        "--allow-privileged=true",
        "--profiling=false",
    ]
    process = start_process(name="kube-apiserver", command=command, log_dir=log_dir)
    context = client_ssl_context(ca_file=pki.ca.cert, cert_file=pki.admin.cert, key_file=pki.admin.key)
    wait_until(
        lambda: http_get(f"{url}/readyz", ssl_context=context)[0] == 200,
        process=process,
        expected_state="ready (/readyz)",
        timeout=READY_TIMEOUT_SECONDS,
        interval=0.5,
    )
    return ApiServer(process=process, url=url)


def client_ssl_context(*, ca_file: Path, cert_file: Path, key_file: Path) -> ssl.SSLContext:
    context = ssl.create_default_context(cafile=str(ca_file))
    context.load_cert_chain(certfile=str(cert_file), keyfile=str(key_file))
    return context

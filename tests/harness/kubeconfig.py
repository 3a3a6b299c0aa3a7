"""Kubeconfig files for the test control plane."""

from __future__ import annotations

from pathlib import Path

import yaml

from tests.harness.certs import CertificateFiles

CONTEXT_NAME = "lora-operator-test"


def write_kubeconfig(path: Path, *, server: str, ca_file: Path, client: CertificateFiles, user: str) -> Path:
    """Write a kubeconfig that authenticates to server with a client certificate, referenced by file path."""
    config = {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [
            {"name": CONTEXT_NAME, "cluster": {"server": server, "certificate-authority": str(ca_file)}},
        ],
        "users": [
            {"name": user, "user": {"client-certificate": str(client.cert), "client-key": str(client.key)}},
        ],
        "contexts": [
            {"name": CONTEXT_NAME, "context": {"cluster": CONTEXT_NAME, "user": user}},
        ],
        "current-context": CONTEXT_NAME,
        "preferences": {},
    }
    path.write_text(yaml.safe_dump(config, sort_keys=False))
    path.chmod(0o600)
    return path

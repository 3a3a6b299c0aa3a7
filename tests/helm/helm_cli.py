"""The pinned helm binary, run against the chart and, for installs, the test control plane."""

from __future__ import annotations

import subprocess
from dataclasses import dataclass
from pathlib import Path

import yaml

from tests.harness.process import component_environment

REPO = Path(__file__).resolve().parents[2]
CHART_DIR = REPO / "helm" / "lora-operator"
HELM_TIMEOUT_SECONDS = 300


class HelmError(AssertionError):
    """helm exited non-zero; the message has its command line and output."""


@dataclass(frozen=True)
class Helm:
    """helm with its own config, cache and data folders, and an optional kubeconfig."""

    binary: Path
    home: Path
    kubeconfig: Path | None = None

    def environment(self) -> dict[str, str]:
        environment = component_environment()
        environment.update(
            HELM_CONFIG_HOME=str(self.home / "config"),
            HELM_CACHE_HOME=str(self.home / "cache"),
            HELM_DATA_HOME=str(self.home / "data"),
        )
        if self.kubeconfig is not None:
            environment["KUBECONFIG"] = str(self.kubeconfig)
        return environment

    def run(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        """Run helm with args; raise HelmError with the output when check is set and it fails."""
        command = [str(self.binary), *args]
        result = subprocess.run(
            command, capture_output=True, text=True, env=self.environment(), timeout=HELM_TIMEOUT_SECONDS
        )
        if check and result.returncode != 0:
            raise HelmError(f"{' '.join(command)} exited {result.returncode}:\n{result.stdout}\n{result.stderr}")
        return result

    def template(self, *value_args: str, namespace: str = "lora-system", release: str = "lora") -> list[dict]:
        """Render the chart with value_args (--set ..., -f ...) and return its objects."""
        output = self.run("template", release, str(CHART_DIR), "--namespace", namespace, *value_args).stdout
        return [document for document in yaml.safe_load_all(output) if document]


def set_values(values: dict[str, str]) -> list[str]:
    """Return --set arguments for dotted keys, for example {'s3.bucket': 'runs'}."""
    arguments = []
    for key, value in values.items():
        arguments += ["--set", f"{key}={value}"]
    return arguments


def find_object(objects: list[dict], kind: str, *, namespace: str | None = None) -> dict:
    """Return the single object of kind (in namespace, when given); fail naming what was rendered."""
    matches = [
        item for item in objects
        if item["kind"] == kind and (namespace is None or item["metadata"].get("namespace") == namespace)
    ]
    if len(matches) != 1:
        rendered = sorted(f"{item['kind']}/{item['metadata'].get('namespace', '')}" for item in objects)
        raise AssertionError(f"expected one {kind} in {namespace or 'any namespace'}, rendered: {rendered}")
    return matches[0]


def container_env(deployment: dict) -> dict[str, dict]:
    """Return the operator container's env entries by name."""
    container = deployment["spec"]["template"]["spec"]["containers"][0]
    return {entry["name"]: entry for entry in container["env"]}

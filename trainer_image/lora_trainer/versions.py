"""Versions of the software a run used, stored with its artifacts for reproducibility."""

from __future__ import annotations

import platform
from importlib import metadata

PACKAGES = ("lora-operator", "torch", "diffusers", "peft", "transformers", "open_clip_torch", "safetensors", "accelerate")


def software_versions() -> dict[str, str]:
    """Return the Python version and the installed version of each package that shapes a run."""
    versions = {"python": platform.python_version()}
    for package in PACKAGES:
        try:
            versions[package] = metadata.version(package)
        except metadata.PackageNotFoundError:
            versions[package] = "not installed"
    return versions

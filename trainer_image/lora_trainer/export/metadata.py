"""Facts about a training run, and the safetensors header of the kohya file built from them.

The header contains kohya sd-scripts' `ss_*` keys, which A1111, Forge and ComfyUI show in
their LoRA info panels, the `modelspec.*` keys of the Stability AI model spec 1.0.0,
and this project's own `lora_operator.*` keys. Every value is a string, as the
safetensors format requires.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import datetime, timezone
from importlib import metadata as package_metadata
from typing import Any

from lora_operator.api.training_spec import LoraSpec

from lora_trainer.errors import InvalidInputError

# sd-scripts' names for what the file adapts: the LoRA module and SD 1.x.
# NOTE: every base is described as SD 1.x. An SD 2.x or SDXL base needs other ids here
# and, for SDXL, the lora_te1_/lora_te2_ key prefixes.
KOHYA_NETWORK_MODULE = "networks.lora"
KOHYA_BASE_MODEL_VERSION = "sd_v1"
MODELSPEC_VERSION = "1.0.0"
MODELSPEC_ARCHITECTURE = "stable-diffusion-v1/lora"
MODELSPEC_IMPLEMENTATION = "https://github.com/huggingface/diffusers"
PROJECT_KEY_PREFIX = "lora_operator."
_VERSIONED_PACKAGES = ("lora-operator", "torch", "diffusers", "peft", "transformers", "safetensors")


def installed_versions() -> dict[str, str]:
    """Return the installed versions of the packages that shape the exported weights."""
    versions: dict[str, str] = {}
    for package in _VERSIONED_PACKAGES:
        try:
            versions[package] = package_metadata.version(package)
        except package_metadata.PackageNotFoundError:
            versions[package] = "not installed"
    return versions


@dataclass(frozen=True)
class ExportMetadata:
    """Facts about the training run, recorded in the exported files."""

    title: str
    """Human-readable name shown by model pickers (modelspec.title)."""
    base_model: str
    """URI of the base pipeline, for example builtin://tiny-sd or hf://runwayml/stable-diffusion-v1-5."""
    trigger_word: str | None
    resolution: tuple[int, int]
    """(width, height) in pixels of the training images."""
    dataset_hash: str
    """Hash of dataset/manifest.jsonl, so a file can be traced to the exact inputs."""
    num_train_images: int
    steps: int
    epochs: int
    learning_rate: float
    seed: int
    tag_frequency: dict[str, int] = field(default_factory=dict)
    """Caption tag to the number of images whose caption contains it."""
    training_config: dict[str, Any] = field(default_factory=dict)
    """The training spec as JSON-serialisable data."""
    software_versions: dict[str, str] = field(default_factory=installed_versions)
    description: str = ""
    dataset_name: str = "dataset"
    """Folder name under which kohya viewers group the tag frequencies."""
    text_encoder_learning_rate: float | None = None
    prediction_type: str = "epsilon"
    created_at: datetime | None = None
    """End of training, or None for the time of export."""

    def __post_init__(self) -> None:
        width, height = self.resolution
        if width <= 0 or height <= 0:
            raise InvalidInputError(f"Invalid export resolution {self.resolution}: width and height must be positive.")
        counts = {"num_train_images": self.num_train_images, "steps": self.steps, "epochs": self.epochs}
        for label, value in counts.items():
            if value < 0:
                raise InvalidInputError(f"Invalid export metadata {label}={value}: it must be zero or positive.")


def build_kohya_header(
    *,
    metadata: ExportMetadata,
    lora: LoraSpec,
    output_name: str,
    trains_text_encoder: bool,
    tensors_sha256: str,
) -> dict[str, str]:
    """Return the string-only safetensors header of the kohya file."""
    finished_at = metadata.created_at or datetime.now(timezone.utc)
    header = {
        **_kohya_training_keys(metadata, lora, output_name, trains_text_encoder, finished_at),
        **_kohya_dataset_keys(metadata),
        **_modelspec_keys(metadata, tensors_sha256, finished_at),
        **_project_keys(metadata),
    }
    return {key: str(value) for key, value in header.items()}


def _kohya_training_keys(
    metadata: ExportMetadata, lora: LoraSpec, output_name: str, trains_text_encoder: bool, finished_at: datetime
) -> dict[str, Any]:
    # sd-scripts writes str() of Python values: "16.0" for a float alpha, "False" for bools.
    text_encoder_lr = metadata.text_encoder_learning_rate or metadata.learning_rate
    return {
        "ss_network_module": KOHYA_NETWORK_MODULE,
        "ss_network_dim": lora.rank,
        "ss_network_alpha": float(lora.alpha),
        "ss_network_dropout": lora.dropout,
        "ss_base_model_version": KOHYA_BASE_MODEL_VERSION,
        "ss_v2": False,
        "ss_sd_model_name": metadata.base_model,
        "ss_output_name": output_name,
        "ss_learning_rate": metadata.learning_rate,
        "ss_unet_lr": metadata.learning_rate,
        "ss_text_encoder_lr": text_encoder_lr if trains_text_encoder else 0.0,
        "ss_steps": metadata.steps,
        "ss_max_train_steps": metadata.steps,
        "ss_epoch": metadata.epochs,
        "ss_num_epochs": metadata.epochs,
        "ss_seed": metadata.seed,
        "ss_training_finished_at": finished_at.timestamp(),
        "ss_training_comment": _training_comment(metadata),
    }


def _kohya_dataset_keys(metadata: ExportMetadata) -> dict[str, Any]:
    # sd-scripts writes resolution as str() of a (width, height) tuple and groups tag
    # counts and image counts by the dataset folder name.
    width, height = metadata.resolution
    return {
        "ss_resolution": (width, height),
        "ss_num_train_images": metadata.num_train_images,
        "ss_num_reg_images": 0,
        "ss_tag_frequency": json.dumps({metadata.dataset_name: metadata.tag_frequency}, ensure_ascii=False),
        "ss_dataset_dirs": json.dumps(
            {metadata.dataset_name: {"n_repeats": 1, "img_count": metadata.num_train_images}}, ensure_ascii=False
        ),
    }


def _modelspec_keys(metadata: ExportMetadata, tensors_sha256: str, finished_at: datetime) -> dict[str, Any]:
    width, height = metadata.resolution
    keys = {
        "modelspec.sai_model_spec": MODELSPEC_VERSION,
        "modelspec.architecture": MODELSPEC_ARCHITECTURE,
        "modelspec.implementation": MODELSPEC_IMPLEMENTATION,
        "modelspec.title": metadata.title,
        "modelspec.resolution": f"{width}x{height}",
        "modelspec.date": finished_at.isoformat(timespec="seconds"),
        "modelspec.description": metadata.description or _training_comment(metadata),
        "modelspec.prediction_type": metadata.prediction_type,
        "modelspec.hash_sha256": tensors_sha256,
    }
    if metadata.trigger_word:
        keys["modelspec.trigger_phrase"] = metadata.trigger_word
        keys["modelspec.usage_hint"] = f"Trigger word: {metadata.trigger_word}"
    return keys


def _project_keys(metadata: ExportMetadata) -> dict[str, Any]:
    return {
        PROJECT_KEY_PREFIX + "base_model": metadata.base_model,
        PROJECT_KEY_PREFIX + "dataset_hash": metadata.dataset_hash,
        PROJECT_KEY_PREFIX + "training_config": json.dumps(metadata.training_config, sort_keys=True, default=str),
        PROJECT_KEY_PREFIX + "software": json.dumps(metadata.software_versions, sort_keys=True),
    }


def _training_comment(metadata: ExportMetadata) -> str:
    comment = f"LoRA for {metadata.base_model}, trained by lora-operator."
    if metadata.trigger_word:
        comment += f" Trigger word: {metadata.trigger_word}."
    return comment

"""The safetensors header of the kohya file: sd-scripts ss_* keys, modelspec.* keys and run facts."""

from __future__ import annotations

import hashlib
import json
import struct
from datetime import datetime
from pathlib import Path

import pytest
from safetensors import safe_open

from lora_trainer.export import ExportMetadata

from .tiny_pipelines import ExportedRun

pytestmark = pytest.mark.trainer

EXPECTED_SS_VALUES = {
    "ss_network_module": "networks.lora",
    "ss_network_dim": "4",
    "ss_network_alpha": "8.0",
    "ss_network_dropout": "0.1",
    "ss_base_model_version": "sd_v1",
    "ss_resolution": "(64, 64)",
    "ss_num_train_images": "3",
    "ss_steps": "12",
    "ss_epoch": "4",
    "ss_learning_rate": "0.0002",
    "ss_text_encoder_lr": "0.0002",
    "ss_seed": "7",
    "ss_output_name": "cat-lora",
    "ss_sd_model_name": "builtin://tiny-sd",
}
EXPECTED_MODELSPEC_VALUES = {
    "modelspec.sai_model_spec": "1.0.0",
    "modelspec.architecture": "stable-diffusion-v1/lora",
    "modelspec.implementation": "https://github.com/huggingface/diffusers",
    "modelspec.title": "Tiny cat LoRA",
    "modelspec.resolution": "64x64",
    "modelspec.trigger_phrase": "zwx",
    "modelspec.description": "A test adapter.",
    "modelspec.prediction_type": "epsilon",
}


@pytest.fixture(scope="module")
def header(text_encoder_run: ExportedRun) -> dict[str, str]:
    with safe_open(str(text_encoder_run.files["kohya"]), framework="pt") as handle:
        return handle.metadata()


def tensor_data_sha256(path: Path) -> str:
    """SHA-256 of everything after the 8-byte header length and the JSON header."""
    data = path.read_bytes()
    (header_length,) = struct.unpack("<Q", data[:8])
    return "0x" + hashlib.sha256(data[8 + header_length :]).hexdigest()


@pytest.mark.parametrize(("key", "expected"), sorted(EXPECTED_SS_VALUES.items()))
def test_header_has_ss_key(header: dict[str, str], key: str, expected: str) -> None:
    assert header.get(key) == expected


@pytest.mark.parametrize(("key", "expected"), sorted(EXPECTED_MODELSPEC_VALUES.items()))
def test_header_has_modelspec_key(header: dict[str, str], key: str, expected: str) -> None:
    assert header.get(key) == expected


def test_tag_frequency_grouped_by_dataset(header: dict[str, str]) -> None:
    assert json.loads(header["ss_tag_frequency"]) == {"cats": {"cat": 3, "sofa": 1}}


def test_dataset_dirs_count_images(header: dict[str, str]) -> None:
    assert json.loads(header["ss_dataset_dirs"]) == {"cats": {"n_repeats": 1, "img_count": 3}}


def test_training_comment_names_trigger(header: dict[str, str]) -> None:
    assert "zwx" in header["ss_training_comment"]


def test_modelspec_date_is_iso(header: dict[str, str]) -> None:
    assert datetime.fromisoformat(header["modelspec.date"]).tzinfo is not None


def test_hash_covers_tensor_data(text_encoder_run: ExportedRun, header: dict[str, str]) -> None:
    assert header["modelspec.hash_sha256"] == tensor_data_sha256(text_encoder_run.files["kohya"])


def test_header_records_dataset_hash(header: dict[str, str], export_metadata: ExportMetadata) -> None:
    assert header["lora_operator.dataset_hash"] == export_metadata.dataset_hash


def test_header_records_base_model(header: dict[str, str]) -> None:
    assert header["lora_operator.base_model"] == "builtin://tiny-sd"


def test_training_config_round_trips(header: dict[str, str], export_metadata: ExportMetadata) -> None:
    assert json.loads(header["lora_operator.training_config"]) == export_metadata.training_config


def test_software_versions_round_trip(header: dict[str, str], export_metadata: ExportMetadata) -> None:
    assert json.loads(header["lora_operator.software"]) == export_metadata.software_versions

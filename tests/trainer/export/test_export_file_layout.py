"""Key names, shapes and dtypes of the exported kohya and diffusers files."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
import torch
from safetensors import safe_open

from .tiny_pipelines import ExportedRun

pytestmark = pytest.mark.trainer

KOHYA_KEY = re.compile(r"^(lora_unet|lora_te)_[A-Za-z0-9_]+\.(lora_down\.weight|lora_up\.weight|alpha)$")
UNET_Q_MODULE = "lora_unet_down_blocks_0_attentions_0_transformer_blocks_0_attn1_to_q"
TEXT_ENCODER_Q_MODULE = "lora_te_text_model_encoder_layers_0_self_attn_q_proj"


def read_tensors(path: Path) -> dict[str, torch.Tensor]:
    with safe_open(str(path), framework="pt") as handle:
        return {key: handle.get_tensor(key) for key in handle.keys()}


def read_header(path: Path) -> dict[str, str]:
    with safe_open(str(path), framework="pt") as handle:
        return handle.metadata()


@pytest.fixture(scope="module")
def kohya_tensors(text_encoder_run: ExportedRun) -> dict[str, torch.Tensor]:
    return read_tensors(text_encoder_run.files["kohya"])


@pytest.fixture(scope="module")
def diffusers_tensors(text_encoder_run: ExportedRun) -> dict[str, torch.Tensor]:
    return read_tensors(text_encoder_run.files["diffusers"])


def module_names(tensors: dict[str, torch.Tensor]) -> set[str]:
    return {key.split(".")[0] for key in tensors}


def test_kohya_keys_follow_convention(kohya_tensors: dict[str, torch.Tensor]) -> None:
    offending = [key for key in kohya_tensors if not KOHYA_KEY.match(key)]
    assert offending == []


def test_kohya_names_unet_modules(kohya_tensors: dict[str, torch.Tensor]) -> None:
    assert f"{UNET_Q_MODULE}.lora_down.weight" in kohya_tensors


def test_kohya_names_text_encoder_modules(kohya_tensors: dict[str, torch.Tensor]) -> None:
    assert f"{TEXT_ENCODER_Q_MODULE}.lora_up.weight" in kohya_tensors


def test_kohya_has_no_sdxl_prefix(kohya_tensors: dict[str, torch.Tensor]) -> None:
    assert [key for key in kohya_tensors if key.startswith(("lora_te1_", "lora_te2_"))] == []


def test_kohya_module_has_three_tensors(kohya_tensors: dict[str, torch.Tensor]) -> None:
    incomplete = [
        name
        for name in module_names(kohya_tensors)
        if {f"{name}.lora_down.weight", f"{name}.lora_up.weight", f"{name}.alpha"} - kohya_tensors.keys()
    ]
    assert incomplete == []


def test_kohya_weight_count_matches_model(
    text_encoder_run: ExportedRun, kohya_tensors: dict[str, torch.Tensor]
) -> None:
    weights = [key for key in kohya_tensors if key.endswith(".weight")]
    assert len(weights) == text_encoder_run.trained_tensor_count


def test_kohya_alpha_is_lora_alpha(text_encoder_run: ExportedRun, kohya_tensors: dict[str, torch.Tensor]) -> None:
    alphas = {key: tensor.item() for key, tensor in kohya_tensors.items() if key.endswith(".alpha")}
    wrong = {key: value for key, value in alphas.items() if value != text_encoder_run.lora.alpha}
    assert wrong == {}


def test_kohya_alpha_is_fp32_scalar(kohya_tensors: dict[str, torch.Tensor]) -> None:
    alpha = kohya_tensors[f"{UNET_Q_MODULE}.alpha"]
    assert (alpha.dtype, alpha.dim()) == (torch.float32, 0)


def test_kohya_tensors_are_fp32(kohya_tensors: dict[str, torch.Tensor]) -> None:
    assert {tensor.dtype for tensor in kohya_tensors.values()} == {torch.float32}


def test_kohya_down_has_rank_rows(text_encoder_run: ExportedRun, kohya_tensors: dict[str, torch.Tensor]) -> None:
    assert kohya_tensors[f"{UNET_Q_MODULE}.lora_down.weight"].shape[0] == text_encoder_run.lora.rank


def test_kohya_up_has_rank_columns(text_encoder_run: ExportedRun, kohya_tensors: dict[str, torch.Tensor]) -> None:
    assert kohya_tensors[f"{UNET_Q_MODULE}.lora_up.weight"].shape[1] == text_encoder_run.lora.rank


def test_diffusers_count_matches_model(
    text_encoder_run: ExportedRun, diffusers_tensors: dict[str, torch.Tensor]
) -> None:
    assert len(diffusers_tensors) == text_encoder_run.trained_tensor_count


def test_diffusers_tensors_are_fp32(diffusers_tensors: dict[str, torch.Tensor]) -> None:
    assert {tensor.dtype for tensor in diffusers_tensors.values()} == {torch.float32}


def test_diffusers_keys_have_component_prefix(diffusers_tensors: dict[str, torch.Tensor]) -> None:
    prefixes = {key.split(".")[0] for key in diffusers_tensors}
    assert prefixes == {"unet", "text_encoder"}


def test_diffusers_text_encoder_keys_nest(diffusers_tensors: dict[str, torch.Tensor]) -> None:
    text_encoder_keys = [key for key in diffusers_tensors if key.startswith("text_encoder.")]
    assert all(key.startswith("text_encoder.text_model.encoder.layers.") for key in text_encoder_keys)


def test_diffusers_metadata_keeps_alpha(text_encoder_run: ExportedRun) -> None:
    adapter_metadata = json.loads(read_header(text_encoder_run.files["diffusers"])["lora_adapter_metadata"])
    assert adapter_metadata["unet.lora_alpha"] == text_encoder_run.lora.alpha


def test_diffusers_metadata_keeps_rank(text_encoder_run: ExportedRun) -> None:
    adapter_metadata = json.loads(read_header(text_encoder_run.files["diffusers"])["lora_adapter_metadata"])
    assert adapter_metadata["text_encoder.r"] == text_encoder_run.lora.rank


def test_diffusers_metadata_disables_dropout(text_encoder_run: ExportedRun) -> None:
    adapter_metadata = json.loads(read_header(text_encoder_run.files["diffusers"])["lora_adapter_metadata"])
    assert adapter_metadata["unet.lora_dropout"] == 0.0

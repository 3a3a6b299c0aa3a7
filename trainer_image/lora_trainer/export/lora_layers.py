"""Read the trained LoRA weights and their scales out of a peft-wrapped UNet or text encoder."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import torch
from peft import get_peft_model_state_dict
from peft.tuners.lora import LoraLayer

from lora_trainer.errors import InvalidInputError, NonFiniteLossError

# The name diffusers' and transformers' add_adapter() give an adapter when none is passed.
DEFAULT_ADAPTER_NAME = "default"
LORA_WEIGHT_SUFFIXES = (".lora_A.weight", ".lora_B.weight")


class NonFiniteWeightError(NonFiniteLossError):
    """A LoRA weight is NaN or infinite, so the adapter is not written."""


@dataclass(frozen=True)
class LoraLayers:
    """The LoRA weights of one model (the UNet or the text encoder), ready to save."""

    component: str
    """Pipeline component the weights belong to: "unet" or "text_encoder"."""
    state_dict: dict[str, torch.Tensor]
    """peft key layout (`<module path>.lora_A.weight` / `.lora_B.weight`), fp32 tensors on the CPU."""
    module_alphas: dict[str, float]
    """Module path to the alpha for which alpha / rank equals the scale the module trained with."""
    adapter_config: dict[str, Any]
    """The adapter's peft LoraConfig as a dict, so a loader rebuilds the same config."""


def collect_lora_layers(
    model: torch.nn.Module,
    *,
    component: str,
    target_modules: list[str],
    key_prefix: str = "",
    adapter_name: str = DEFAULT_ADAPTER_NAME,
) -> LoraLayers:
    """Copy the LoRA weights of `model` as fp32 and check that every trained tensor is included.

    `key_prefix` is put in front of every module path, for example "text_model." for a
    CLIPTextModel that transformers 5 no longer nests under `text_model`.
    Raises InvalidInputError when the model has no LoRA weights or carries tensors that a
    plain LoRA file cannot hold (DoRA magnitudes, LoRA biases).
    """
    peft_configs = getattr(model, "peft_config", {}) or {}
    if adapter_name not in peft_configs:
        raise InvalidInputError(_empty_adapter_message(component, target_modules, adapter_name))

    state_dict = get_peft_model_state_dict(model, adapter_name=adapter_name)
    unsupported = sorted(key for key in state_dict if not key.endswith(LORA_WEIGHT_SUFFIXES))
    if unsupported:
        raise InvalidInputError(
            f"The {component} adapter {adapter_name!r} has tensors that a LoRA file cannot hold, "
            f"for example {unsupported[0]!r} ({len(unsupported)} in all). "
            "Train a plain LoRA: use_dora=False and lora_bias=False."
        )
    if not state_dict:
        raise InvalidInputError(_empty_adapter_message(component, target_modules, adapter_name))

    trainable_count = count_lora_parameters(model, adapter_name=adapter_name)
    if trainable_count != len(state_dict):
        raise InvalidInputError(
            f"The {component} has {trainable_count} LoRA weight tensors for adapter {adapter_name!r}, "
            f"but peft returned {len(state_dict)}. Add the adapter with add_adapter() and no other wrapper."
        )

    return LoraLayers(
        component=component,
        state_dict={key_prefix + key: _to_fp32_cpu(tensor) for key, tensor in state_dict.items()},
        module_alphas={key_prefix + path: alpha for path, alpha in _module_alphas(model, adapter_name).items()},
        adapter_config=peft_configs[adapter_name].to_dict(),
    )


def count_lora_parameters(model: torch.nn.Module, *, adapter_name: str = DEFAULT_ADAPTER_NAME) -> int:
    """Count the lora_A and lora_B weight tensors of one adapter in `model`."""
    markers = (f".lora_A.{adapter_name}.weight", f".lora_B.{adapter_name}.weight")
    return sum(1 for name, _ in model.named_parameters() if name.endswith(markers))


def reject_non_finite(layers: list[LoraLayers]) -> None:
    """Raise NonFiniteWeightError when any LoRA weight is NaN or infinite."""
    bad_keys = [
        f"{item.component}.{key}"
        for item in layers
        for key, tensor in item.state_dict.items()
        if not torch.isfinite(tensor).all()
    ]
    if bad_keys:
        raise NonFiniteWeightError(
            f"{len(bad_keys)} LoRA weight tensors contain NaN or infinite values, for example {bad_keys[0]!r}, so "
            "nothing was written. Resume from an earlier checkpoint with a lower learning rate."
        )


def _module_alphas(model: torch.nn.Module, adapter_name: str) -> dict[str, float]:
    # The layer's scaling is what the forward pass multiplies by. Deriving alpha from it,
    # rather than from the config, keeps alpha_pattern, rank_pattern and rsLoRA
    # (scaling = alpha / sqrt(r)) correct for loaders that compute alpha / r.
    alphas: dict[str, float] = {}
    for path, module in model.named_modules():
        if isinstance(module, LoraLayer) and adapter_name in module.r:
            alphas[path] = float(module.scaling[adapter_name]) * module.r[adapter_name]
    return {path: _round_float(alpha) for path, alpha in alphas.items()}


def _round_float(value: float) -> float:
    # alpha / r * r can come back as 7.999999999, so values within float error snap to the integer.
    nearest = round(value)
    return float(nearest) if math.isclose(value, nearest, rel_tol=1e-9, abs_tol=1e-9) else value


def _to_fp32_cpu(tensor: torch.Tensor) -> torch.Tensor:
    return tensor.detach().to(device="cpu", dtype=torch.float32).clone().contiguous()


def _empty_adapter_message(component: str, target_modules: list[str], adapter_name: str) -> str:
    return (
        f"The {component} has no LoRA weights to export (adapter {adapter_name!r}): "
        f"target_modules {target_modules} did not match any of its modules, or no adapter was added. "
        "Set targetModules (textEncoderTargetModules for the text encoder) to names of its Linear or "
        "Conv2d layers, for example to_q, to_k, to_v, to_out.0 in the UNet or q_proj, v_proj in the "
        "text encoder, and add the adapter before training."
    )

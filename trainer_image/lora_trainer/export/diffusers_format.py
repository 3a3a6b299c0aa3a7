"""The diffusers LoRA layout: `pytorch_lora_weights.safetensors` for `load_lora_weights()`.

Keys are `unet.<module path>.lora_A.weight` and `text_encoder.<module path>...`. The
header entry `lora_adapter_metadata` contains each component's peft LoraConfig, so
diffusers (checked with 0.42) rebuilds the adapter with the trained lora_alpha instead
of guessing alpha = rank.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from diffusers.loaders import StableDiffusionLoraLoaderMixin

from lora_trainer.export.lora_layers import LoraLayers

DIFFUSERS_WEIGHT_NAME = "pytorch_lora_weights.safetensors"


def write_diffusers_file(*, unet: LoraLayers, text_encoder: LoraLayers | None, directory: Path) -> Path:
    """Save the LoRA weights with diffusers' own writer and return the file path."""
    StableDiffusionLoraLoaderMixin.save_lora_weights(
        save_directory=directory,
        unet_lora_layers=unet.state_dict,
        text_encoder_lora_layers=text_encoder.state_dict if text_encoder else None,
        unet_lora_adapter_metadata=_inference_config(unet),
        text_encoder_lora_adapter_metadata=_inference_config(text_encoder) if text_encoder else None,
        weight_name=DIFFUSERS_WEIGHT_NAME,
        safe_serialization=True,
    )
    return directory / DIFFUSERS_WEIGHT_NAME


def _inference_config(layers: LoraLayers) -> dict[str, Any]:
    # diffusers 0.42 builds the LoraConfig from this metadata and injects fresh dropout
    # modules in training mode, even into a pipeline in eval mode. A nonzero dropout
    # would then make every inference random, so the file records 0. The trained value
    # stays in the kohya header (ss_network_dropout).
    return {**layers.adapter_config, "lora_dropout": 0.0}


def count_diffusers_tensors(layers: list[LoraLayers]) -> int:
    """Return how many tensors the diffusers file of `layers` must hold: A and B per module."""
    return sum(len(item.state_dict) for item in layers)

"""The kohya / WebUI LoRA layout read by A1111, Forge and ComfyUI for SD 1.x.

Per trained module `<path>` there are three tensors: `<name>.lora_down.weight` (A),
`<name>.lora_up.weight` (B) and a scalar `<name>.alpha`, where `<name>` is
`lora_unet_<path with dots as underscores>` or `lora_te_<path ...>`. Loaders scale
the update by alpha / rank.

NOTE: the tests load these files with diffusers 0.42 only. The key names follow what
A1111 and ComfyUI map for SD 1.x, but neither program was run against them.
"""

from __future__ import annotations

import torch
from diffusers.utils import convert_state_dict_to_kohya

from lora_trainer.errors import TrainerError
from lora_trainer.export.lora_layers import LoraLayers

KOHYA_PREFIXES = {"unet": "lora_unet_", "text_encoder": "lora_te_"}
# diffusers names the first text encoder lora_te1_, as SDXL files do. sd-scripts writes
# lora_te_ for a model with one text encoder, and that is the name A1111 and ComfyUI map
# first for SD 1.x.
_DIFFUSERS_TEXT_ENCODER_PREFIX = "lora_te1_"
ALPHA_SUFFIX = ".alpha"


def kohya_module_name(component: str, module_path: str) -> str:
    """Return the kohya name of a module, for example lora_unet_down_blocks_0_attentions_0_proj_in."""
    return KOHYA_PREFIXES[component] + module_path.replace(".", "_")


def build_kohya_state_dict(layers: list[LoraLayers]) -> dict[str, torch.Tensor]:
    """Convert peft-layout LoRA weights to kohya keys, with each module's trained alpha.

    diffusers' converter renames the keys but sets every alpha to the rank, which is
    right only when lora_alpha equals r, so the true alphas replace them here.
    """
    prefixed = {f"{item.component}.{key}": tensor for item in layers for key, tensor in item.state_dict.items()}
    converted = convert_state_dict_to_kohya(prefixed)

    alphas = {
        kohya_module_name(item.component, path): alpha
        for item in layers
        for path, alpha in item.module_alphas.items()
    }
    result: dict[str, torch.Tensor] = {}
    for key, tensor in converted.items():
        if key.startswith(_DIFFUSERS_TEXT_ENCODER_PREFIX):
            key = KOHYA_PREFIXES["text_encoder"] + key.removeprefix(_DIFFUSERS_TEXT_ENCODER_PREFIX)
        if key.endswith(ALPHA_SUFFIX):
            tensor = torch.tensor(_alpha_for(key, alphas), dtype=torch.float32)
        result[key] = tensor
    return result


def count_kohya_tensors(layers: list[LoraLayers]) -> int:
    """Return how many tensors the kohya file of `layers` must hold: down, up and alpha per module."""
    weight_count = sum(len(item.state_dict) for item in layers)
    return weight_count + weight_count // 2


def _alpha_for(alpha_key: str, alphas: dict[str, float]) -> float:
    module_name = alpha_key.removesuffix(ALPHA_SUFFIX)
    if module_name not in alphas:
        raise TrainerError(
            f"No LoRA scale was found for the kohya module {module_name!r} because diffusers' key "
            "conversion no longer matches the module paths. Check the installed diffusers version."
        )
    return alphas[module_name]

"""Export a trained SD 1.x image LoRA to local files in the kohya and diffusers layouts."""

from __future__ import annotations

import logging
import os
import re
import shutil
import tempfile
from pathlib import Path

import torch
from lora_operator.api.training_spec import LoraSpec
from safetensors import safe_open
from safetensors.torch import save_file

from lora_trainer.errors import InvalidInputError, TrainerError
from lora_trainer.export.diffusers_format import count_diffusers_tensors, write_diffusers_file
from lora_trainer.export.kohya_format import build_kohya_state_dict, count_kohya_tensors
from lora_trainer.export.lora_layers import LoraLayers, collect_lora_layers, reject_non_finite
from lora_trainer.export.metadata import ExportMetadata, build_kohya_header
from lora_trainer.export.tensor_hash import file_data_sha256, state_dict_data_sha256

logger = logging.getLogger(__name__)

FORMAT_KOHYA = "kohya"
FORMAT_DIFFUSERS = "diffusers"
SUPPORTED_FORMATS = (FORMAT_KOHYA, FORMAT_DIFFUSERS)
DIFFUSERS_SUBDIR = "diffusers"
_OUTPUT_NAME_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$")


def export_image_lora(
    *,
    unet: torch.nn.Module,
    text_encoder: torch.nn.Module | None = None,
    lora: LoraSpec,
    out_dir: Path,
    name: str,
    formats: list[str],
    metadata: ExportMetadata,
) -> dict[str, Path]:
    """Write the LoRA of a peft-wrapped UNet (and text encoder) and return format -> file path.

    kohya: `out_dir/<name>.safetensors`, diffusers: `out_dir/diffusers/pytorch_lora_weights.safetensors`.
    Weights are saved as fp32. The text encoder is exported when it carries an adapter,
    and must carry one when `lora.train_text_encoder` is true. Each file is written under
    a temporary name, checked (tensor count, and for kohya the recorded hash), and only
    then renamed into place, so a failed export leaves no partial file behind.
    Raises InvalidInputError for bad arguments or an empty adapter, and
    NonFiniteWeightError for NaN or infinite weights.
    """
    requested = _validate_request(name=name, formats=formats)
    unet_layers, text_encoder_layers = _collect_layers(unet=unet, text_encoder=text_encoder, lora=lora)
    all_layers = [unet_layers] + ([text_encoder_layers] if text_encoder_layers else [])
    reject_non_finite(all_layers)
    _check_spec_matches_model(all_layers, lora)

    out_dir.mkdir(parents=True, exist_ok=True)
    written: dict[str, Path] = {}
    for export_format in requested:
        if export_format == FORMAT_KOHYA:
            written[export_format] = _export_kohya(
                all_layers, lora=lora, metadata=metadata, out_dir=out_dir, name=name
            )
        else:
            written[export_format] = _export_diffusers(unet_layers, text_encoder_layers, out_dir=out_dir)
        logger.info("Exported the LoRA in %s format to %s", export_format, written[export_format])
    return written


def _validate_request(*, name: str, formats: list[str]) -> list[str]:
    if not _OUTPUT_NAME_PATTERN.match(name):
        raise InvalidInputError(
            f"Invalid output name {name!r}: use 1-128 letters, digits, '.', '_' or '-', "
            "starting with a letter or digit."
        )
    unknown = sorted(set(formats) - set(SUPPORTED_FORMATS))
    if unknown or not formats:
        raise InvalidInputError(
            f"Invalid export formats {formats!r}: choose one or more of {list(SUPPORTED_FORMATS)}."
        )
    return list(dict.fromkeys(formats))


def _collect_layers(
    *, unet: torch.nn.Module, text_encoder: torch.nn.Module | None, lora: LoraSpec
) -> tuple[LoraLayers, LoraLayers | None]:
    unet_layers = collect_lora_layers(unet, component="unet", target_modules=lora.target_modules)

    has_text_encoder_adapter = text_encoder is not None and bool(getattr(text_encoder, "peft_config", None))
    if not (lora.train_text_encoder or has_text_encoder_adapter):
        return unet_layers, None
    if text_encoder is None:
        raise InvalidInputError(
            "trainTextEncoder is true but no text encoder was passed to the export; pass the trained text_encoder."
        )
    # SD 1.x LoRA files name text-encoder modules text_model.encoder..., as CLIPTextModel did
    # before transformers 5 flattened it. diffusers strips the prefix again on load.
    key_prefix = "" if hasattr(text_encoder, "text_model") else "text_model."
    text_encoder_layers = collect_lora_layers(
        text_encoder,
        component="text_encoder",
        target_modules=lora.text_encoder_target_modules,
        key_prefix=key_prefix,
    )
    return unet_layers, text_encoder_layers


def _check_spec_matches_model(layers: list[LoraLayers], lora: LoraSpec) -> None:
    # ss_network_dim and ss_network_alpha come from the spec, so the spec must describe the weights.
    for item in layers:
        config = item.adapter_config
        if config["r"] != lora.rank or float(config["lora_alpha"]) != float(lora.alpha):
            raise TrainerError(
                f"The {item.component} adapter has r={config['r']}, lora_alpha={config['lora_alpha']}, but the "
                f"spec says rank={lora.rank}, alpha={lora.alpha}. Build the adapters from the LoraSpec that is "
                "passed to the export."
            )


def _export_kohya(
    layers: list[LoraLayers], *, lora: LoraSpec, metadata: ExportMetadata, out_dir: Path, name: str
) -> Path:
    state_dict = build_kohya_state_dict(layers)
    tensors_sha256 = state_dict_data_sha256(state_dict)
    header = build_kohya_header(
        metadata=metadata,
        lora=lora,
        output_name=name,
        trains_text_encoder=any(item.component == "text_encoder" for item in layers),
        tensors_sha256=tensors_sha256,
    )
    target = out_dir / f"{name}.safetensors"
    staging = _staging_path(target)
    try:
        save_file(state_dict, str(staging), metadata=header)
        _verify_tensor_count(staging, expected=count_kohya_tensors(layers), export_format=FORMAT_KOHYA)
        if file_data_sha256(staging) != tensors_sha256:
            raise TrainerError(
                f"The tensor hash written to {target.name} does not match its data, so safetensors may have "
                "changed its tensor order. Update state_dict_data_sha256 to the new order."
            )
        os.replace(staging, target)
    finally:
        staging.unlink(missing_ok=True)
    return target


def _export_diffusers(unet_layers: LoraLayers, text_encoder_layers: LoraLayers | None, *, out_dir: Path) -> Path:
    layers = [unet_layers] + ([text_encoder_layers] if text_encoder_layers else [])
    target_dir = out_dir / DIFFUSERS_SUBDIR
    target_dir.mkdir(parents=True, exist_ok=True)
    staging_dir = Path(tempfile.mkdtemp(dir=out_dir, prefix=".diffusers-"))
    try:
        written = write_diffusers_file(unet=unet_layers, text_encoder=text_encoder_layers, directory=staging_dir)
        _verify_tensor_count(written, expected=count_diffusers_tensors(layers), export_format=FORMAT_DIFFUSERS)
        target = target_dir / written.name
        os.replace(written, target)
    finally:
        shutil.rmtree(staging_dir, ignore_errors=True)
    return target


def _verify_tensor_count(path: Path, *, expected: int, export_format: str) -> None:
    with safe_open(str(path), framework="pt") as handle:
        saved = len(list(handle.keys()))
    if saved != expected:
        raise TrainerError(
            f"The {export_format} file contains {saved} tensors, but {expected} were expected, so some "
            "LoRA modules were lost in the key conversion. Check the installed diffusers version."
        )


def _staging_path(target: Path) -> Path:
    handle, staging = tempfile.mkstemp(dir=target.parent, prefix=f".{target.stem}-", suffix=".tmp")
    os.close(handle)
    return Path(staging)

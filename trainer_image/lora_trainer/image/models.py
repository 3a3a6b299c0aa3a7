"""Model set-up of the image recipe: the SD 1.x pipeline, frozen, with peft LoRA adapters."""

from __future__ import annotations

import contextlib
import logging
from dataclasses import dataclass
from pathlib import Path

import torch
from diffusers import DDPMScheduler, StableDiffusionPipeline
from diffusers.training_utils import cast_training_params
from peft import LoraConfig

from lora_operator.api.trainer_config import TrainerConfig
from lora_operator.api.training_spec import LoraSpec
from lora_trainer.errors import InvalidInputError
from lora_trainer.models.resolve import resolve_model_path

UNET_PREFIX = "unet."
TEXT_ENCODER_PREFIX = "text_encoder."
MIXED_PRECISION_DTYPES = {"fp16": torch.float16, "bf16": torch.bfloat16}


@dataclass
class TrainingModels:
    """The pipeline whose UNet, and optionally text encoder, carries the LoRA being trained."""

    pipeline: StableDiffusionPipeline
    model_path: Path
    """Local folder the pipeline was loaded from."""
    noise_scheduler: DDPMScheduler
    weight_dtype: torch.dtype
    """dtype of the frozen weights; the LoRA weights are always fp32."""
    train_text_encoder: bool

    @property
    def unet(self) -> torch.nn.Module:
        return self.pipeline.unet

    @property
    def text_encoder(self) -> torch.nn.Module:
        return self.pipeline.text_encoder

    @property
    def vae(self) -> torch.nn.Module:
        return self.pipeline.vae

    def trained_modules(self) -> dict[str, torch.nn.Module]:
        modules = {UNET_PREFIX: self.unet}
        if self.train_text_encoder:
            modules[TEXT_ENCODER_PREFIX] = self.text_encoder
        return modules


def resolve_base_model(config: TrainerConfig) -> Path:
    """Return the local folder of the base model named by the spec."""
    # NOTE: a relative file:// base model resolves against the working directory, not the config's folder.
    return resolve_model_path(
        config.spec.base_model,
        revision=config.spec.base_model_revision,
        s3_endpoint=config.output.s3_endpoint,
        s3_secure=config.output.s3_secure,
    )


def load_training_models(
    *, config: TrainerConfig, device: torch.device, log: logging.Logger, seed: int
) -> TrainingModels:
    """Load the base pipeline, freeze it, add the LoRA adapters and move everything to ``device``.

    ``seed`` fixes the random (gaussian) initialisation of the LoRA weights.
    """
    spec = config.spec
    path = resolve_base_model(config)
    try:
        pipeline = StableDiffusionPipeline.from_pretrained(path, safety_checker=None, requires_safety_checker=False)
        noise_scheduler = DDPMScheduler.from_pretrained(path, subfolder="scheduler")
    except (OSError, ValueError) as error:
        raise InvalidInputError(
            f"failed to load base model {spec.base_model!r} from {path} as a Stable Diffusion 1.x pipeline in diffusers "
            f"format: {error}. Point baseModel at a folder with model_index.json, unet/, vae/, text_encoder/, "
            "tokenizer/ and scheduler/"
        ) from error
    pipeline.set_progress_bar_config(disable=True)
    for module in (pipeline.vae, pipeline.text_encoder, pipeline.unet):
        module.requires_grad_(False)

    torch.manual_seed(seed)
    add_lora_adapters(pipeline, lora=spec.lora)

    weight_dtype = select_weight_dtype(spec.training.mixed_precision, device=device, log=log)
    pipeline.to(device)
    models = TrainingModels(
        pipeline=pipeline,
        model_path=path,
        noise_scheduler=noise_scheduler,
        weight_dtype=weight_dtype,
        train_text_encoder=spec.lora.train_text_encoder,
    )
    cast_frozen_weights([pipeline.vae, pipeline.text_encoder, pipeline.unet], weight_dtype=weight_dtype)
    if spec.training.gradient_checkpointing:
        pipeline.unet.enable_gradient_checkpointing()
        if models.train_text_encoder:
            pipeline.text_encoder.gradient_checkpointing_enable(gradient_checkpointing_kwargs={"use_reentrant": False})
    pipeline.vae.eval()
    return models


def add_lora_adapters(pipeline: StableDiffusionPipeline, *, lora: LoraSpec) -> None:
    """Add a peft LoRA to the UNet, and to the text encoder when ``lora.train_text_encoder``."""
    targets = [(pipeline.unet, lora.target_modules, "lora.targetModules")]
    if lora.train_text_encoder:
        targets.append((pipeline.text_encoder, lora.text_encoder_target_modules, "lora.textEncoderTargetModules"))
    for module, target_modules, field_name in targets:
        adapter = LoraConfig(
            r=lora.rank,
            lora_alpha=lora.alpha,
            lora_dropout=lora.dropout,
            target_modules=list(target_modules),
            init_lora_weights="gaussian",
        )
        try:
            module.add_adapter(adapter)
        except ValueError as error:
            raise InvalidInputError(
                f"{field_name} {list(target_modules)} matches no module of {type(module).__name__}: {error}. "
                "Name module suffixes of this model, for example to_q, to_k, to_v, to_out.0 for the UNet"
            ) from error


def select_weight_dtype(mixed_precision: str, *, device: torch.device, log: logging.Logger) -> torch.dtype:
    """Return the dtype of the frozen weights: fp16/bf16 on CUDA when requested, else fp32."""
    if mixed_precision == "no":
        return torch.float32
    if device.type != "cuda":
        log.info("training.mixedPrecision=%s is ignored on %s: training in fp32", mixed_precision, device.type)
        return torch.float32
    # NOTE: the tests run on the CPU only, so training and previews in fp16/bf16 on CUDA are untested.
    return MIXED_PRECISION_DTYPES[mixed_precision]


def cast_frozen_weights(modules: list[torch.nn.Module], *, weight_dtype: torch.dtype) -> None:
    """Cast ``modules`` to ``weight_dtype``, then the trainable (LoRA) parameters back to fp32.

    fp32 LoRA weights keep small optimiser updates from rounding away, which they would in
    fp16 or bf16. For fp32 nothing changes, because the weights are loaded in fp32.
    """
    if weight_dtype == torch.float32:
        return
    for module in modules:
        module.to(dtype=weight_dtype)
    cast_training_params(modules, dtype=torch.float32)


def lora_state_dict(models: TrainingModels) -> dict[str, torch.Tensor]:
    """Return the trainable tensors by name, prefixed with ``unet.`` or ``text_encoder.``."""
    tensors: dict[str, torch.Tensor] = {}
    for prefix, module in models.trained_modules().items():
        for name, parameter in module.named_parameters():
            if parameter.requires_grad:
                tensors[prefix + name] = parameter.detach()
    return tensors


def load_lora_state_dict(models: TrainingModels, tensors: dict[str, torch.Tensor]) -> None:
    """Copy checkpointed LoRA tensors into the trainable parameters; every name must match."""
    current = lora_state_dict(models)
    missing = sorted(set(current) - set(tensors))
    unexpected = sorted(set(tensors) - set(current))
    if missing or unexpected:
        raise InvalidInputError(
            f"checkpoint adapter does not match this model's LoRA: missing {missing[:3]}, unexpected {unexpected[:3]}. "
            "The lora settings changed since the checkpoint was written: restore them, or delete the checkpoints"
        )
    with torch.no_grad():
        for name, parameter in current.items():
            parameter.copy_(tensors[name])


def lora_parameters(module: torch.nn.Module) -> list[torch.nn.Parameter]:
    """Return the trainable parameters of ``module`` in named_parameters order."""
    return [parameter for _, parameter in module.named_parameters() if parameter.requires_grad]


def autocast_context(models: TrainingModels, device: torch.device) -> contextlib.AbstractContextManager:
    """Return autocast to the frozen weights' dtype on CUDA with mixed precision, else a no-op context."""
    if device.type == "cuda" and models.weight_dtype != torch.float32:
        return torch.autocast(device_type="cuda", dtype=models.weight_dtype)
    return contextlib.nullcontext()

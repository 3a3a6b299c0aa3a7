"""Model set-up of the text recipe: tokenizer, chat template, causal LM (optionally 4-bit) and the peft LoRA."""

from __future__ import annotations

import contextlib
import logging
from dataclasses import dataclass, field
from pathlib import Path

import torch
from peft import LoraConfig, PeftModel, get_peft_model

from lora_operator.api.trainer_config import TrainerConfig
from lora_operator.api.training_spec import ALL_LINEAR, LoraSpec
from lora_trainer.errors import InvalidInputError
from lora_trainer.models.resolve import resolve_model_path
from lora_trainer.text.chat_template import resolve_chat_template
from lora_trainer.text.quantization import four_bit_config

MIXED_PRECISION_DTYPES = {"fp16": torch.float16, "bf16": torch.bfloat16}


@dataclass
class TextModels:
    """The peft-wrapped causal LM being trained, with its tokenizer and how both differ from the base."""

    model: PeftModel
    tokenizer: object
    model_path: Path
    weight_dtype: torch.dtype
    """dtype of the frozen weights (their compute dtype when 4-bit); the LoRA weights are fp32."""
    chat_template: str
    chat_template_origin: str
    added_token_ids: list[int] = field(default_factory=list)
    quantized: bool = False

    @property
    def tokenizer_changed(self) -> bool:
        """True when the tokenizer differs from the base model's: added tokens or another chat template."""
        return bool(self.added_token_ids) or self.chat_template_origin != "base model"

    @property
    def pad_token_id(self) -> int:
        for token_id in (self.tokenizer.pad_token_id, self.tokenizer.eos_token_id):
            if token_id is not None:
                return token_id
        return 0


def load_text_models(*, config: TrainerConfig, device: torch.device, log: logging.Logger) -> TextModels:
    """Load tokenizer and base model, add tokens, freeze the base and add the LoRA; training.seed fixes its initialisation."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    spec = config.spec
    path = resolve_model_path(
        spec.base_model, revision=spec.base_model_revision,
        s3_endpoint=config.output.s3_endpoint, s3_secure=config.output.s3_secure,
    )
    try:
        tokenizer = AutoTokenizer.from_pretrained(path)
    except (OSError, ValueError) as error:
        raise InvalidInputError(f"cannot load the tokenizer of base model {spec.base_model!r} from {path}: {error}") from error
    if not getattr(tokenizer, "is_fast", False):
        raise InvalidInputError(
            f"base model {spec.base_model!r} has no fast tokenizer (tokenizer.json), which label masking needs "
            "for character offsets: use a model that ships tokenizer.json"
        )
    template, origin = resolve_chat_template(tokenizer, spec.text.chat_template)
    tokenizer.chat_template = template
    added_ids = _add_tokens(tokenizer, spec.text.added_tokens)

    weight_dtype = select_weight_dtype(spec.training.mixed_precision, device=device, log=log)
    quantization = four_bit_config(spec.text.quantization, device=device, compute_dtype=weight_dtype, log=log)
    # A 4-bit model is placed on its GPU while it loads; other models are moved afterwards.
    device_map = None
    if quantization is not None:
        gpu_index = device.index if device.index is not None else torch.cuda.current_device()
        device_map = {"": gpu_index}
    try:
        model = AutoModelForCausalLM.from_pretrained(
            path, dtype=weight_dtype, quantization_config=quantization, device_map=device_map,
        )
    except (OSError, ValueError) as error:
        raise InvalidInputError(
            f"cannot load base model {spec.base_model!r} from {path} as a causal language model: {error}. "
            "Point baseModel at a transformers model folder (config.json, weights, tokenizer) or an hf:// repo"
        ) from error
    model.requires_grad_(False)
    torch.manual_seed(spec.training.seed)
    if added_ids:
        model.resize_token_embeddings(len(tokenizer))
    if quantization is not None:
        from peft import prepare_model_for_kbit_training

        model = prepare_model_for_kbit_training(model, use_gradient_checkpointing=spec.training.gradient_checkpointing)
    peft_model = add_lora(model, lora=spec.lora, added_token_ids=added_ids)
    if quantization is None:
        peft_model.to(device)
    if spec.training.gradient_checkpointing:
        peft_model.gradient_checkpointing_enable(gradient_checkpointing_kwargs={"use_reentrant": False})
        peft_model.config.use_cache = False
    log.info("chat template: %s; %d added tokens; trainable parameters: %d", origin, len(added_ids), count_trainable(peft_model))
    return TextModels(
        model=peft_model, tokenizer=tokenizer, model_path=path, weight_dtype=weight_dtype,
        chat_template=template, chat_template_origin=origin, added_token_ids=added_ids, quantized=quantization is not None,
    )


def lora_config(lora: LoraSpec, *, added_token_ids: list[int], tied_embeddings: bool) -> LoraConfig:
    """Return the peft LoraConfig of the spec: targets (or all-linear), rsLoRA, DoRA and trainable added tokens."""
    targets: str | list[str] = ALL_LINEAR if lora.target_modules == [ALL_LINEAR] else list(lora.target_modules)
    trainable_tokens = None
    if added_token_ids:
        # A tied output head follows the embedding; an untied one needs its own rows trained.
        trainable_tokens = {"embed_tokens": added_token_ids}
        if not tied_embeddings:
            trainable_tokens["lm_head"] = added_token_ids
    return LoraConfig(
        r=lora.rank, lora_alpha=lora.alpha, lora_dropout=lora.dropout, target_modules=targets,
        use_rslora=lora.use_rslora, use_dora=lora.use_dora, task_type="CAUSAL_LM",
        trainable_token_indices=trainable_tokens,
    )


def add_lora(model: torch.nn.Module, *, lora: LoraSpec, added_token_ids: list[int]) -> PeftModel:
    tied = bool(getattr(model.config, "tie_word_embeddings", False))
    try:
        return get_peft_model(model, lora_config(lora, added_token_ids=added_token_ids, tied_embeddings=tied))
    except ValueError as error:
        linear = sorted({name.rsplit(".", 1)[-1] for name, module in model.named_modules() if isinstance(module, torch.nn.Linear)})
        raise InvalidInputError(
            f"lora.targetModules {lora.target_modules} does not fit {type(model).__name__}: {error}. "
            f"Use [all-linear] or names of its Linear modules: {', '.join(linear[:12])}"
        ) from error


def _add_tokens(tokenizer, tokens: list[str]) -> list[int]:  # noqa: ANN001
    """Add ``tokens`` as special tokens; return the ids of those that were new."""
    if not tokens:
        return []
    before = len(tokenizer)
    tokenizer.add_tokens(list(tokens), special_tokens=True)
    return list(range(before, len(tokenizer)))


def select_weight_dtype(mixed_precision: str, *, device: torch.device, log: logging.Logger) -> torch.dtype:
    """Return fp16/bf16 on CUDA when training.mixedPrecision requests it, else fp32."""
    if mixed_precision == "no":
        return torch.float32
    if device.type != "cuda":
        log.info("training.mixedPrecision=%s is ignored on %s: training in fp32", mixed_precision, device.type)
        return torch.float32
    return MIXED_PRECISION_DTYPES[mixed_precision]


def autocast_context(models: TextModels, device: torch.device) -> contextlib.AbstractContextManager:
    if device.type == "cuda" and models.weight_dtype != torch.float32:
        return torch.autocast(device_type="cuda", dtype=models.weight_dtype)
    return contextlib.nullcontext()


def trainable_state_dict(model: torch.nn.Module) -> dict[str, torch.Tensor]:
    """Return the trainable tensors (LoRA, DoRA magnitudes, added-token rows) by parameter name."""
    return {name: parameter.detach() for name, parameter in model.named_parameters() if parameter.requires_grad}


def load_trainable_state_dict(model: torch.nn.Module, tensors: dict[str, torch.Tensor]) -> None:
    """Copy checkpointed trainable tensors into the model; every name must match."""
    current = {name: parameter for name, parameter in model.named_parameters() if parameter.requires_grad}
    missing, unexpected = sorted(set(current) - set(tensors)), sorted(set(tensors) - set(current))
    if missing or unexpected:
        raise InvalidInputError(
            f"checkpoint adapter does not match this model's LoRA: missing {missing[:3]}, unexpected {unexpected[:3]}. "
            "The lora or text settings changed since the checkpoint was written: restore them, or delete the checkpoints"
        )
    with torch.no_grad():
        for name, parameter in current.items():
            parameter.copy_(tensors[name])


def count_trainable(model: torch.nn.Module) -> int:
    return sum(parameter.numel() for parameter in model.parameters() if parameter.requires_grad)

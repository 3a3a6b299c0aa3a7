"""Export of the text LoRA: a peft adapter folder with a model card, the tokenizer when it changed, merged weights on request."""

from __future__ import annotations

import logging
from dataclasses import dataclass, replace
from pathlib import Path

import torch
from safetensors import safe_open

from lora_trainer.errors import InvalidInputError
from lora_trainer.text.model_card import ModelCardFacts, render_model_card
from lora_trainer.text.models import TextModels

ADAPTER_WEIGHTS = "adapter_model.safetensors"
ADAPTER_CONFIG = "adapter_config.json"
MERGED_FOLDER = "merged"
# Full embedding and output-head matrices that peft stores besides the adapter when the vocabulary was resized.
EMBEDDING_SUFFIXES = ("base_layer.weight", "embed_tokens.weight", "lm_head.weight")


@dataclass(frozen=True)
class TextExport:
    adapter_dir: Path
    adapter_tensors: int
    merged_dir: Path | None


def export_text_adapter(
    models: TextModels, *, out_dir: Path, facts: ModelCardFacts, merge: bool, log: logging.Logger
) -> TextExport:
    """Save the adapter into ``out_dir`` and check it; add the model card, tokenizer files and merged weights.

    Raises InvalidInputError when the saved adapter does not hold exactly the trainable
    tensors of the model, for example an adapter that matched no module.
    """
    out_dir.mkdir(parents=True, exist_ok=True)
    # peft records the local folder the base was loaded from; a Hub id (or the spec's URI) is what a reader can use.
    adapter_config = models.model.peft_config["default"]
    adapter_config.base_model_name_or_path = facts.base_model.removeprefix("hf://")
    adapter_config.revision = facts.base_model_revision or None
    models.model.save_pretrained(out_dir, safe_serialization=True, save_embedding_layers=bool(models.added_token_ids))
    count = check_saved_tensors(out_dir / ADAPTER_WEIGHTS, models.model)
    if models.tokenizer_changed:
        models.tokenizer.save_pretrained(out_dir)
    # Written after save_pretrained, which writes peft's own template card.
    card_facts = replace(facts, added_tokens=models.tokenizer.convert_ids_to_tokens(models.added_token_ids))
    (out_dir / "README.md").write_text(render_model_card(card_facts, tokenizer_saved=models.tokenizer_changed), encoding="utf-8")
    merged_dir = None
    if merge:
        merged_dir = merge_adapter(models, adapter_dir=out_dir, out_dir=out_dir / MERGED_FOLDER, log=log)
    return TextExport(adapter_dir=out_dir, adapter_tensors=count, merged_dir=merged_dir)


def check_saved_tensors(path: Path, model: torch.nn.Module) -> int:
    """Return the adapter tensor count of ``path`` after checking it equals the model's trainable tensor count."""
    trainable = [name for name, parameter in model.named_parameters() if parameter.requires_grad]
    with safe_open(str(path), framework="pt") as handle:
        saved = [key for key in handle.keys() if not key.endswith(EMBEDDING_SUFFIXES)]
    if not trainable or len(saved) != len(trainable):
        raise InvalidInputError(
            f"the exported adapter {path.name} contains {len(saved)} adapter tensors but the model has {len(trainable)} "
            "trainable LoRA tensors, so it would not reproduce the training. Check lora.targetModules: it must match "
            "Linear modules of the base model (all-linear matches every one)"
        )
    return len(saved)


def merge_adapter(models: TextModels, *, adapter_dir: Path, out_dir: Path, log: logging.Logger) -> Path:
    """Load the base model again in its own dtype on the CPU, apply the saved adapter, merge it and save the result.

    Working from a fresh copy leaves the trained model untouched and also works when the
    training copy is 4-bit, which cannot be merged exactly.
    """
    from peft import PeftModel
    from transformers import AutoModelForCausalLM

    log.info("merging the adapter into the base model")
    base = AutoModelForCausalLM.from_pretrained(models.model_path, dtype="auto")
    if models.added_token_ids:
        base.resize_token_embeddings(len(models.tokenizer))
    merged = PeftModel.from_pretrained(base, adapter_dir).merge_and_unload()
    merged.save_pretrained(out_dir, safe_serialization=True)
    models.tokenizer.save_pretrained(out_dir)
    return out_dir

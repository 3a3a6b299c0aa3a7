"""The settings a text checkpoint belongs to: it resumes only when they match the current config."""

from __future__ import annotations

import hashlib
from typing import Any

from lora_operator.api.trainer_config import TrainerConfig
from lora_trainer.errors import InvalidInputError


def text_run_identity(config: TrainerConfig, *, data_fingerprint: str) -> dict[str, Any]:
    """Return the settings that define the adapter and its tokenised data."""
    spec = config.spec
    lora, text = spec.lora, spec.text
    return {
        "baseModel": spec.base_model,
        "baseModelRevision": spec.base_model_revision,
        "lora.rank": lora.rank,
        "lora.alpha": lora.alpha,
        "lora.targetModules": sorted(lora.target_modules),
        "lora.useRslora": lora.use_rslora,
        "lora.useDora": lora.use_dora,
        "text.addedTokens": list(text.added_tokens),
        "text.quantization": text.quantization,
        "text.chatTemplate": hashlib.sha256(text.chat_template.encode()).hexdigest()[:16],
        "tokenisedData": data_fingerprint,
    }


def check_text_run_identity(saved: dict[str, Any], current: dict[str, Any], *, checkpoint_uri: str) -> None:
    """Raise InvalidInputError naming every setting that differs from the checkpoint's."""
    changed = [name for name in sorted(set(saved) | set(current)) if saved.get(name) != current.get(name)]
    if not changed:
        return
    details = "; ".join(_describe(name, saved.get(name), current.get(name)) for name in changed)
    raise InvalidInputError(
        f"checkpoint {checkpoint_uri} belongs to a different run: {details}. Restore the previous settings to "
        "resume it, or delete the checkpoints folder of this run to train from the start"
    )


def _describe(name: str, saved: Any, current: Any) -> str:
    if name == "tokenisedData":
        return "the tokenised data changed (dataset files, text.maxSeqLength, overlong, packing, evalFraction or the tokenizer)"
    if name == "text.chatTemplate":
        return "text.chatTemplate changed"
    return f"{name} was {saved!r}, the config now has {current!r}"

"""The settings a text checkpoint belongs to: it resumes only when they match the current config."""

from __future__ import annotations

import hashlib
from typing import Any

from lora_operator.api.trainer_config import TrainerConfig


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


# Settings stored as fingerprints: their raw values mean nothing to a user.
IDENTITY_SUMMARIES = {
    "tokenisedData": "the tokenised data changed (dataset files, text.maxSeqLength, overlong, packing, evalFraction "
    "or the tokenizer)",
    "text.chatTemplate": "text.chatTemplate changed",
}

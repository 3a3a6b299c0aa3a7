"""README.md of an exported text adapter: what it was trained on and how to load and serve it."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any


@dataclass
class ModelCardFacts:
    name: str
    base_model: str
    """Spec URI of the base model, for example hf://Qwen/Qwen2.5-0.5B-Instruct."""
    base_model_revision: str
    steps: int
    epochs: int
    lora: dict[str, Any]
    dataset_hash: str
    train_records: int
    eval_records: int
    final_loss: float | None = None
    eval_loss: float | None = None
    perplexity: float | None = None
    added_tokens: list[str] = field(default_factory=list)
    """Tokens added to the vocabulary; the export fills them in from the tokenizer."""
    chat_template: str = ""
    """Origin of the chat template: base model, text.chatTemplate or default ChatML."""


def render_model_card(facts: ModelCardFacts, *, tokenizer_saved: bool) -> str:
    """Return the model card as Markdown with a YAML header that the Hugging Face Hub reads."""
    base_id = _hub_id(facts.base_model)
    header = ["---", "library_name: peft", "pipeline_tag: text-generation", "tags:", "- lora", "- lora-operator"]
    if base_id:
        header.append(f"base_model: {base_id}")
    header.append("---")
    base_for_code = base_id or "BASE_MODEL_PATH"
    lines = [
        *header,
        "",
        f"# {facts.name}",
        "",
        f"A LoRA adapter for `{facts.base_model}`, trained by lora-operator.",
        "",
        "## Training",
        "",
        f"- steps: {facts.steps} ({facts.epochs} epochs)",
        f"- records: {facts.train_records} train, {facts.eval_records} eval (dataset sha256 `{facts.dataset_hash[:16]}`)",
        f"- LoRA: `{json.dumps(facts.lora, sort_keys=True)}`",
        f"- chat template: {facts.chat_template}",
        f"- final training loss: {_number(facts.final_loss)}",
        f"- eval loss: {_number(facts.eval_loss)}, perplexity: {_number(facts.perplexity)}",
    ]
    if facts.added_tokens:
        lines.append(f"- added tokens: {', '.join(f'`{token}`' for token in facts.added_tokens)}")
    lines += ["", "## Use with peft", "", "```python", "from peft import PeftModel",
              "from transformers import AutoModelForCausalLM, AutoTokenizer", "",
              f'base = AutoModelForCausalLM.from_pretrained("{base_for_code}")']
    if tokenizer_saved:
        lines.append('tokenizer = AutoTokenizer.from_pretrained("ADAPTER_FOLDER")  # this folder: its tokenizer differs from the base')
    else:
        lines.append(f'tokenizer = AutoTokenizer.from_pretrained("{base_for_code}")')
    if facts.added_tokens:
        lines.append("base.resize_token_embeddings(len(tokenizer))  # the adapter stores the resized vocabulary")
    lines += ['model = PeftModel.from_pretrained(base, "ADAPTER_FOLDER")', "```", "",
              "## Serve with vLLM", "", "```bash",
              f"vllm serve {base_for_code} --enable-lora --lora-modules {facts.name}=ADAPTER_FOLDER", "```", "",
              f'Then send OpenAI-compatible requests with `"model": "{facts.name}"`.']
    if facts.added_tokens:
        lines += ["", "NOTE: the adapter adds tokens and stores the resized embedding; check that your vLLM version "
                  "loads adapters with a resized vocabulary, or serve the merged weights instead."]
    return "\n".join(lines) + "\n"


def _hub_id(uri: str) -> str:
    return uri.removeprefix("hf://") if uri.startswith("hf://") else ""


def _number(value: float | None) -> str:
    return "-" if value is None else f"{value:.4f}"

"""Preview completions of the model being trained: greedy and sampled, with fixed seeds, in previews/step-N.jsonl."""

from __future__ import annotations

import json

import torch

from lora_operator.api.training_spec import PreviewSpec
from lora_trainer.storage import ArtifactStore
from lora_trainer.text.chat_template import render_chat_prompt
from lora_trainer.text.models import TextModels, autocast_context
from lora_trainer.text.records import TextRecord

PREVIEWS_PREFIX = "previews"


def preview_key(step: int) -> str:
    return f"{PREVIEWS_PREFIX}/step-{step:06d}.jsonl"


def text_preview_prompts(previews: PreviewSpec, *, records: list[TextRecord]) -> list[str]:
    """Return previews.prompts, or else the prompts of the first previews.count records (eval records first)."""
    if previews.prompts:
        return list(previews.prompts)
    prompts = [record.preview_prompt() for record in records]
    return [prompt for prompt in prompts if prompt.strip()][: previews.count]


def render_text_previews(
    *,
    models: TextModels,
    prompts: list[str],
    previews: PreviewSpec,
    chat: bool,
    step: int,
    store: ArtifactStore,
    device: torch.device,
) -> str:
    """Complete each prompt greedily and by sampling; write one JSON line per completion; return the key.

    With ``chat`` each prompt is sent as a user turn through the chat template, else as plain
    text to continue. The sampled completion of prompt ``i`` uses seed ``previews.seed + i``.
    The global RNG states are saved and restored around generation, so previews never change
    what training draws next.
    """
    model = models.model
    was_training = model.training
    model.eval()
    lines = []
    cuda_devices = [device.index or 0] if device.type == "cuda" else []
    try:
        with torch.random.fork_rng(devices=cuda_devices), torch.no_grad(), autocast_context(models, device):
            for index, prompt in enumerate(prompts):
                text = render_chat_prompt(prompt, tokenizer=models.tokenizer, template=models.chat_template) if chat else prompt
                encoded = models.tokenizer(text, add_special_tokens=not chat, return_tensors="pt").to(device)
                for mode in ("greedy", "sampled"):
                    seed = previews.seed + index
                    torch.manual_seed(seed)
                    completion = _generate(models, encoded, previews=previews, sample=mode == "sampled")
                    line = {"step": step, "index": index, "prompt": prompt, "mode": mode, "completion": completion,
                            "maxNewTokens": previews.max_new_tokens}
                    if mode == "sampled":
                        line.update(seed=seed, temperature=previews.temperature, topP=previews.top_p)
                    lines.append(line)
    finally:
        model.train(was_training)
    key = preview_key(step)
    store.put_bytes(key, "".join(json.dumps(line, ensure_ascii=False) + "\n" for line in lines).encode("utf-8"),
                    content_type="application/x-ndjson")
    return key


def _generate(models: TextModels, encoded, *, previews: PreviewSpec, sample: bool) -> str:  # noqa: ANN001 - BatchEncoding
    options = {"do_sample": False}
    if sample:
        # top_k 0 turns off the top-k filter that a model's generation config may set, so top_p alone applies.
        options = {"do_sample": True, "temperature": previews.temperature, "top_p": previews.top_p, "top_k": 0}
    output = models.model.generate(
        input_ids=encoded["input_ids"], attention_mask=encoded["attention_mask"], max_new_tokens=previews.max_new_tokens,
        pad_token_id=models.pad_token_id, **options,
    )
    new_tokens = output[0, encoded["input_ids"].shape[1]:]
    return models.tokenizer.decode(new_tokens, skip_special_tokens=True)

"""Preview images rendered with the adapter being trained, with fixed seeds so rounds compare."""

from __future__ import annotations

import io

import torch

from lora_operator.api.training_spec import PreviewSpec
from lora_trainer.image.models import TrainingModels, autocast_context
from lora_trainer.storage import ArtifactStore

PREVIEWS_PREFIX = "previews"
FALLBACK_PROMPT = "a photo"


def preview_prompts(previews: PreviewSpec, *, trigger_word: str, captions: list[str]) -> list[str]:
    """Return previews.prompts, or else ``count`` prompts from the trigger word and the first captions."""
    if previews.prompts:
        return list(previews.prompts)
    prompts = []
    for index in range(previews.count):
        caption = captions[index % len(captions)].strip() if captions else ""
        if trigger_word and not caption.startswith(trigger_word):
            caption = f"{trigger_word}, {caption}" if caption else trigger_word
        prompts.append(caption or FALLBACK_PROMPT)
    return prompts


def preview_key(step: int, index: int) -> str:
    return f"{PREVIEWS_PREFIX}/step-{step:06d}-{index:02d}.png"


def render_previews(
    *,
    models: TrainingModels,
    prompts: list[str],
    previews: PreviewSpec,
    step: int,
    resolution: int,
    store: ArtifactStore,
    device: torch.device,
) -> list[str]:
    """Render one PNG per prompt to ``previews/step-NNNNNN-II.png``; return the keys.

    Prompt ``i`` uses seed ``previews.seed + i`` in its own generator, and the global RNG
    states are saved and restored around rendering, so previews never change what the
    training draws next. The adapters render in eval mode (no dropout); the modules'
    training modes are restored afterwards.
    """
    unet, text_encoder = models.unet, models.text_encoder
    modes = (unet.training, text_encoder.training)
    unet.eval()
    text_encoder.eval()
    cuda_devices = [device.index or 0] if device.type == "cuda" else []
    keys = []
    try:
        with torch.random.fork_rng(devices=cuda_devices), torch.no_grad(), autocast_context(models, device):
            for index, prompt in enumerate(prompts):
                generator = torch.Generator(device=device).manual_seed(previews.seed + index)
                image = models.pipeline(
                    prompt=prompt,
                    negative_prompt=previews.negative_prompt or None,
                    num_inference_steps=previews.inference_steps,
                    guidance_scale=previews.guidance_scale,
                    height=resolution,
                    width=resolution,
                    generator=generator,
                ).images[0]
                buffer = io.BytesIO()
                image.save(buffer, format="PNG")
                key = preview_key(step, index)
                store.put_bytes(key, buffer.getvalue(), content_type="image/png")
                keys.append(key)
    finally:
        unet.train(modes[0])
        text_encoder.train(modes[1])
    return keys


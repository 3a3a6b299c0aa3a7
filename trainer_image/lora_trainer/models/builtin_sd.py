"""builtin://tiny-sd: a tiny, randomly initialised Stable Diffusion 1.x pipeline built in code.

It has the architecture of SD 1.x (UNet with cross-attention, VAE with a scale factor of 8,
CLIP text encoder) at a few hundred thousand parameters, so every code path runs in seconds
on a CPU. Its weights are random: it produces noise, and it exists for wiring checks, demos
and tests only. The same version always builds the same weights.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path

import torch

from lora_trainer.models.cache_dir import cache_root
from lora_trainer.models.tiny_tokenizer import build_byte_tokenizer, byte_vocab_size

# Bump when the architecture or the seed changes, so cached copies are rebuilt.
TINY_SD_VERSION = "1"
TEXT_HIDDEN_SIZE = 32


def tiny_sd_path() -> Path:
    """Return the folder of builtin://tiny-sd in diffusers format, building it on first use."""
    folder = cache_root() / "builtin" / f"tiny-sd-v{TINY_SD_VERSION}"
    if (folder / "model_index.json").is_file():
        return folder
    folder.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(dir=folder.parent, prefix=".tiny-sd-"))
    try:
        build_tiny_sd_pipeline().save_pretrained(staging)
        # A concurrent builder may have won the race; both built identical weights.
        if not folder.exists():
            os.replace(staging, folder)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return folder


def build_tiny_sd_pipeline():  # noqa: ANN201 - diffusers pipeline type
    """Build the tiny pipeline with fixed seeds."""
    from diffusers import AutoencoderKL, DDPMScheduler, StableDiffusionPipeline, UNet2DConditionModel
    from transformers import CLIPTextConfig, CLIPTextModel

    torch.manual_seed(0)
    unet = UNet2DConditionModel(
        sample_size=8,
        in_channels=4,
        out_channels=4,
        layers_per_block=1,
        block_out_channels=(32, 64),
        down_block_types=("CrossAttnDownBlock2D", "DownBlock2D"),
        up_block_types=("UpBlock2D", "CrossAttnUpBlock2D"),
        cross_attention_dim=TEXT_HIDDEN_SIZE,
        attention_head_dim=8,
        norm_num_groups=32,
    )
    torch.manual_seed(1)
    vae = AutoencoderKL(
        in_channels=3,
        out_channels=3,
        down_block_types=("DownEncoderBlock2D",) * 4,
        up_block_types=("UpDecoderBlock2D",) * 4,
        block_out_channels=(16, 16, 32, 32),
        layers_per_block=1,
        latent_channels=4,
        norm_num_groups=16,
        sample_size=64,
    )
    torch.manual_seed(2)
    text_encoder = CLIPTextModel(
        CLIPTextConfig(
            vocab_size=byte_vocab_size(),
            hidden_size=TEXT_HIDDEN_SIZE,
            intermediate_size=64,
            num_hidden_layers=2,
            num_attention_heads=4,
            max_position_embeddings=77,
            projection_dim=TEXT_HIDDEN_SIZE,
            bos_token_id=byte_vocab_size() - 2,
            eos_token_id=byte_vocab_size() - 1,
            pad_token_id=byte_vocab_size() - 1,
        )
    )
    tokenizer = build_byte_tokenizer(max_length=77)
    scheduler = DDPMScheduler(
        num_train_timesteps=1000,
        beta_start=0.00085,
        beta_end=0.012,
        beta_schedule="scaled_linear",
        clip_sample=False,
        steps_offset=1,
    )
    pipeline = StableDiffusionPipeline(
        vae=vae,
        text_encoder=text_encoder,
        tokenizer=tokenizer,
        unet=unet,
        scheduler=scheduler,
        safety_checker=None,
        feature_extractor=None,
        requires_safety_checker=False,
    )
    return pipeline

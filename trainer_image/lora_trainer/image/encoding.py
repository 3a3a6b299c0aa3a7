"""Image and caption encoders of SD 1.x: pixels to VAE posteriors, captions to CLIP embeddings."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from PIL import Image

from lora_trainer.errors import InvalidInputError


def load_pixels(path: Path, *, bucket: tuple[int, int]) -> torch.Tensor:
    """Read an RGB image of exactly ``bucket`` (width, height) as a (3, H, W) float tensor in [-1, 1]."""
    with Image.open(path) as image:
        if image.size != tuple(bucket):
            raise InvalidInputError(
                f"prepared image {path} is {image.size[0]}x{image.size[1]} but its record's bucket is "
                f"{bucket[0]}x{bucket[1]}: data preparation must resize each image to its bucket"
            )
        array = np.asarray(image.convert("RGB"), dtype=np.float32)
    return torch.from_numpy(array).permute(2, 0, 1) / 127.5 - 1.0


@torch.no_grad()
def encode_posterior(vae: torch.nn.Module, pixels: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Return the mean and standard deviation of the VAE posterior of ``pixels`` (N, 3, H, W), unscaled."""
    distribution = vae.encode(pixels.to(device=vae.device, dtype=vae.dtype)).latent_dist
    return distribution.mean.float(), distribution.std.float()


def sample_latents(
    mean: torch.Tensor, std: torch.Tensor, *, scaling_factor: float, generator: torch.Generator
) -> torch.Tensor:
    """Draw latents from the posterior and scale them for the UNet.

    This repeats the arithmetic of diffusers' DiagonalGaussianDistribution.sample (mean plus
    std times one normal draw of the mean's shape), so cached and per-step encoding
    consume the generator the same way.
    """
    draw = torch.randn(mean.shape, generator=generator, device=generator.device, dtype=mean.dtype)
    return (mean + std * draw.to(mean.device)) * scaling_factor


def tokenize(tokenizer, captions: list[str]) -> torch.Tensor:  # noqa: ANN001 - a transformers tokenizer
    """Return (N, max_length) token ids, padded and truncated to the tokenizer's max length."""
    return tokenizer(
        captions,
        padding="max_length",
        max_length=tokenizer.model_max_length,
        truncation=True,
        return_tensors="pt",
    ).input_ids


def encode_text(text_encoder: torch.nn.Module, input_ids: torch.Tensor) -> torch.Tensor:
    """Return the last hidden states that condition the UNet; gradients flow when the encoder trains."""
    return text_encoder(input_ids.to(text_encoder.device), return_dict=False)[0]

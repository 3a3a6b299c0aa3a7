"""The denoising objective: noised latents, the regression target and the min-SNR weighted MSE."""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from diffusers import DDPMScheduler
from diffusers.training_utils import compute_snr

from lora_trainer.errors import InvalidInputError

SUPPORTED_PREDICTION_TYPES = ("epsilon", "v_prediction")


@dataclass
class NoisedBatch:
    noisy_latents: torch.Tensor
    timesteps: torch.Tensor
    target: torch.Tensor


def check_prediction_type(scheduler: DDPMScheduler) -> str:
    prediction_type = scheduler.config.prediction_type
    if prediction_type not in SUPPORTED_PREDICTION_TYPES:
        raise InvalidInputError(
            f"the base model's scheduler predicts {prediction_type!r}; this trainer supports "
            f"{', '.join(SUPPORTED_PREDICTION_TYPES)}: use an SD 1.x or 2.x model"
        )
    return prediction_type


def add_training_noise(
    latents: torch.Tensor, *, scheduler: DDPMScheduler, generator: torch.Generator, noise_offset: float
) -> NoisedBatch:
    """Noise ``latents`` at uniformly drawn timesteps; every draw comes from ``generator``.

    Offset noise adds one extra normal value per sample and channel, scaled by
    ``noise_offset``, so the model can also learn to shift the mean brightness.
    """
    batch, channels = latents.shape[:2]
    device = generator.device
    noise = torch.randn(latents.shape, generator=generator, device=device, dtype=latents.dtype)
    if noise_offset:
        offset = torch.randn((batch, channels, 1, 1), generator=generator, device=device, dtype=latents.dtype)
        noise = noise + noise_offset * offset
    timesteps = torch.randint(0, scheduler.config.num_train_timesteps, (batch,), generator=generator, device=device)
    noise = noise.to(latents.device)
    timesteps = timesteps.to(latents.device)

    noisy = scheduler.add_noise(latents, noise, timesteps)
    if check_prediction_type(scheduler) == "v_prediction":
        target = scheduler.get_velocity(latents, noise, timesteps)
    else:
        target = noise
    return NoisedBatch(noisy_latents=noisy, timesteps=timesteps, target=target)


def diffusion_loss(
    prediction: torch.Tensor,
    target: torch.Tensor,
    *,
    timesteps: torch.Tensor,
    scheduler: DDPMScheduler,
    min_snr_gamma: float | None,
) -> torch.Tensor:
    """Return the batch-mean MSE, per sample weighted by min-SNR when ``min_snr_gamma`` is set.

    Min-SNR-gamma (Hang et al. 2023, "Efficient Diffusion Training via Min-SNR Weighting
    Strategy") weights each sample by min(SNR(t), gamma) / SNR(t) for epsilon prediction and
    min(SNR(t), gamma) / (SNR(t) + 1) for v-prediction, which caps the weight of
    low-noise timesteps.
    """
    per_sample = F.mse_loss(prediction.float(), target.float(), reduction="none").mean(dim=(1, 2, 3))
    if min_snr_gamma is None:
        return per_sample.mean()
    snr = compute_snr(scheduler, timesteps)
    clipped = torch.clamp(snr, max=min_snr_gamma)
    if scheduler.config.prediction_type == "v_prediction":
        weights = clipped / (snr + 1)
    else:
        weights = clipped / snr
    return (per_sample * weights).mean()

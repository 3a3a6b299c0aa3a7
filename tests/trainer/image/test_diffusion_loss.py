"""The denoising loss: min-SNR weights, v-prediction targets and seeded noise."""

from __future__ import annotations

import pytest
import torch
from diffusers import DDPMScheduler

from lora_trainer.errors import InvalidInputError
from lora_trainer.image.loss import add_training_noise, diffusion_loss

pytestmark = pytest.mark.trainer


def scheduler(prediction_type: str = "epsilon") -> DDPMScheduler:
    return DDPMScheduler(beta_schedule="scaled_linear", beta_start=0.00085, beta_end=0.012, prediction_type=prediction_type)


def test_min_snr_caps_epsilon_weights() -> None:
    noise_scheduler = scheduler()
    timesteps = torch.tensor([10, 900])
    alphas = noise_scheduler.alphas_cumprod[timesteps]
    snr = alphas / (1 - alphas)
    prediction, target = torch.ones(2, 4, 2, 2), torch.zeros(2, 4, 2, 2)
    loss = diffusion_loss(prediction, target, timesteps=timesteps, scheduler=noise_scheduler, min_snr_gamma=5.0)
    expected = (torch.clamp(snr, max=5.0) / snr).mean()
    assert snr[0] > 5.0 > snr[1]
    assert loss.item() == pytest.approx(expected.item(), rel=1e-5)


def test_min_snr_weights_v_prediction() -> None:
    noise_scheduler = scheduler("v_prediction")
    timesteps = torch.tensor([10, 900])
    alphas = noise_scheduler.alphas_cumprod[timesteps]
    snr = alphas / (1 - alphas)
    prediction, target = torch.ones(2, 4, 2, 2), torch.zeros(2, 4, 2, 2)
    loss = diffusion_loss(prediction, target, timesteps=timesteps, scheduler=noise_scheduler, min_snr_gamma=5.0)
    assert loss.item() == pytest.approx((torch.clamp(snr, max=5.0) / (snr + 1)).mean().item(), rel=1e-5)


def test_unweighted_loss_is_plain_mse() -> None:
    prediction, target = torch.full((3, 4, 2, 2), 2.0), torch.zeros(3, 4, 2, 2)
    loss = diffusion_loss(prediction, target, timesteps=torch.tensor([1, 2, 3]), scheduler=scheduler(), min_snr_gamma=None)
    assert loss.item() == pytest.approx(4.0)


def test_v_prediction_target_is_velocity() -> None:
    noise_scheduler = scheduler("v_prediction")
    latents = torch.randn(2, 4, 8, 8, generator=torch.Generator().manual_seed(0))
    batch = add_training_noise(latents, scheduler=noise_scheduler, generator=torch.Generator().manual_seed(1), noise_offset=0.0)
    generator = torch.Generator().manual_seed(1)
    noise = torch.randn(latents.shape, generator=generator)
    timesteps = torch.randint(0, 1000, (2,), generator=generator)
    assert torch.equal(batch.timesteps, timesteps)
    assert torch.allclose(batch.target, noise_scheduler.get_velocity(latents, noise, timesteps))


def test_same_seed_same_noise() -> None:
    latents = torch.zeros(2, 4, 8, 8)
    first = add_training_noise(latents, scheduler=scheduler(), generator=torch.Generator().manual_seed(5), noise_offset=0.1)
    second = add_training_noise(latents, scheduler=scheduler(), generator=torch.Generator().manual_seed(5), noise_offset=0.1)
    assert torch.equal(first.noisy_latents, second.noisy_latents)
    assert torch.equal(first.timesteps, second.timesteps)


def test_sample_prediction_rejected() -> None:
    with pytest.raises(InvalidInputError, match="predicts 'sample'"):
        add_training_noise(torch.zeros(1, 4, 8, 8), scheduler=scheduler("sample"), generator=torch.Generator(), noise_offset=0.0)

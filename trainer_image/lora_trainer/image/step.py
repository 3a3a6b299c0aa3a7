"""One optimiser step: forward and backward over its micro-batches, clipping, AdamW and the schedule."""

from __future__ import annotations

import math

import torch

from lora_operator.api.training_spec import TrainingSpec
from lora_trainer.distributed import SINGLE_PROCESS, Processes
from lora_trainer.errors import NonFiniteLossError
from lora_trainer.image.dataset import TrainingData
from lora_trainer.image.loss import add_training_noise, diffusion_loss
from lora_trainer.image.models import TrainingModels, autocast_context
from lora_trainer.image.optim import Optimisation, apply_update
from lora_trainer.image.plan import MicroBatch
from lora_trainer.image.seeding import DROPOUT, NOISE, derive_seed


def run_optimisation_step(
    micro_batches: list[MicroBatch],
    *,
    step: int,
    models: TrainingModels,
    data: TrainingData,
    optimisation: Optimisation,
    training: TrainingSpec,
    device: torch.device,
    processes: Processes = SINGLE_PROCESS,
) -> float:
    """Train one optimiser step (``step`` counts from 1) and return its mean micro-batch loss.

    Every random draw of a micro-batch is seeded from (seed, epoch, batch index): the
    noise, timesteps and VAE posterior sample come from a fresh generator, and the global
    generator that LoRA dropout draws from is reseeded. A run resumed at any step therefore
    repeats the uninterrupted run's draws exactly. Each of several ``processes`` trains its
    share of ``micro_batches``, and the gradients are summed across them, so N processes
    with gradient accumulation A train the same step as one process with accumulation N*A.
    Raises NonFiniteLossError before the optimiser touches the weights when the loss or
    the gradient norm is NaN or infinite.
    """
    scaler = optimisation.grad_scaler
    total = 0.0
    non_finite: float | None = None
    for micro_batch in processes.own_share(micro_batches):
        position = (micro_batch.epoch, micro_batch.batch_index)
        torch.manual_seed(derive_seed(training.seed, DROPOUT, *position))
        generator = torch.Generator(device=device).manual_seed(derive_seed(training.seed, NOISE, *position))

        latents = data.latents(micro_batch.sample_ids, generator=generator)
        with autocast_context(models, device):
            embeddings = data.text_embeddings_for(micro_batch.sample_ids)
            noised = add_training_noise(
                latents, scheduler=models.noise_scheduler, generator=generator, noise_offset=training.noise_offset
            )
            prediction = models.unet(noised.noisy_latents, noised.timesteps, embeddings, return_dict=False)[0]
        loss = diffusion_loss(
            prediction,
            noised.target,
            timesteps=noised.timesteps,
            scheduler=models.noise_scheduler,
            min_snr_gamma=training.min_snr_gamma,
        )
        value = loss.item()
        if not math.isfinite(value):
            non_finite = value
            break
        scaled = loss / len(micro_batches)
        (scaler.scale(scaled) if scaler is not None else scaled).backward()
        total += value

    # Every process learns of a NaN loss on any of them, so all stop at this step together.
    total, failed = processes.sum_values([total, 0.0 if non_finite is None else 1.0])
    if failed:
        problem = f"the loss is {non_finite}" if non_finite is not None else "the loss is not finite in another training process"
        raise NonFiniteLossError(non_finite_message(problem, step=step, optimisation=optimisation, training=training))
    processes.sum_gradients(optimisation.parameters)
    apply_update(optimisation, training=training, step=step, describe=non_finite_message)
    return total / len(micro_batches)


def non_finite_message(problem: str, *, step: int, optimisation: Optimisation, training: TrainingSpec) -> str:
    """Build the NonFiniteLossError message: the step, the learning rate and the fixes that apply."""
    learning_rate = optimisation.optimizer.param_groups[0]["lr"]
    fixes = [f"lower training.learningRate (now {training.learning_rate:g}; try {training.learning_rate / 10:g})"]
    if training.warmup_steps == 0:
        fixes.append("add training.warmupSteps (for example 100)")
    if training.min_snr_gamma is None:
        fixes.append("enable training.minSnrGamma (5 is typical)")
    if training.mixed_precision == "fp16":
        fixes.append("use training.mixedPrecision bf16 instead of fp16")
    return (
        f"{problem} at step {step} (learning rate {learning_rate:.3g}); training stopped and no weights or checkpoint "
        f"were written from this state. To fix it: {'; '.join(fixes)}"
    )


"""One optimiser step of the text LoRA: token-weighted loss over its micro-batches, clipping, AdamW, schedule."""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch

from lora_operator.api.training_spec import TrainingSpec
from lora_trainer.distributed import SINGLE_PROCESS, Processes
from lora_trainer.errors import NonFiniteLossError
from lora_trainer.image.optim import Optimisation, apply_update
from lora_trainer.image.plan import MicroBatch
from lora_trainer.image.seeding import DROPOUT, derive_seed
from lora_trainer.text.batches import collate, count_targets, forward_inputs, token_loss_sum
from lora_trainer.text.models import TextModels, autocast_context
from lora_trainer.text.tokenize import TokenSample


@dataclass(frozen=True)
class StepResult:
    loss: float
    """Mean cross-entropy per trained token of the step."""
    tokens: int
    """Tokens in the step's batches, padding excluded."""


def run_text_step(
    micro_batches: list[MicroBatch],
    *,
    step: int,
    models: TextModels,
    samples: list[TokenSample],
    optimisation: Optimisation,
    training: TrainingSpec,
    device: torch.device,
    processes: Processes = SINGLE_PROCESS,
) -> StepResult:
    """Train one optimiser step (``step`` counts from 1).

    The loss is summed over every trained token of the step's micro-batches and divided by
    their total, so each token weighs the same whatever batch it is in. The global generator
    that LoRA dropout draws from is reseeded from (seed, epoch, batch index) before each
    micro-batch, so a resumed run repeats an uninterrupted run's draws. Each of several
    ``processes`` trains its share of ``micro_batches`` and the gradients are summed across
    them, which trains the same step as one process with all the micro-batches. Raises
    NonFiniteLossError before the optimiser touches the weights when the loss or the
    gradient norm is NaN or infinite.
    """
    scaler = optimisation.grad_scaler
    own = processes.own_share(micro_batches)
    batches = [collate([samples[index] for index in batch.sample_ids], pad_token_id=models.pad_token_id, device=device)
               for batch in own]
    # Every process divides by the trained tokens of the whole step, summed over all processes.
    (targets,) = processes.sum_values([sum(count_targets(batch["labels"]) for batch in batches)])
    total, tokens = 0.0, 0
    non_finite: float | None = None
    for micro_batch, batch in zip(own, batches):
        torch.manual_seed(derive_seed(training.seed, DROPOUT, micro_batch.epoch, micro_batch.batch_index))
        with autocast_context(models, device):
            logits = models.model(**forward_inputs(batch), use_cache=False).logits
        loss_sum = token_loss_sum(logits, batch["labels"])
        value = loss_sum.item()
        if not math.isfinite(value):
            non_finite = value
            break
        scaled = loss_sum / targets
        (scaler.scale(scaled) if scaler is not None else scaled).backward()
        total += value
        tokens += int(batch["attention_mask"].sum().item())

    # Every process learns of a NaN loss on any of them, so all stop at this step together.
    total, tokens, failed = processes.sum_values([total, tokens, 0.0 if non_finite is None else 1.0])
    if failed:
        problem = f"the loss is {non_finite}" if non_finite is not None else "the loss is not finite in another training process"
        raise NonFiniteLossError(_non_finite_message(problem, step=step, optimisation=optimisation, training=training))
    processes.sum_gradients(optimisation.parameters)
    apply_update(optimisation, training=training, step=step, describe=_non_finite_message)
    return StepResult(loss=total / targets, tokens=int(tokens))


def _non_finite_message(what: str, *, step: int, optimisation: Optimisation, training: TrainingSpec) -> str:
    learning_rate = optimisation.optimizer.param_groups[0]["lr"]
    fixes = [f"lower training.learningRate (now {training.learning_rate:g}; try {training.learning_rate / 10:g})"]
    if training.warmup_steps == 0:
        fixes.append("add training.warmupSteps (for example 20)")
    if training.mixed_precision == "fp16":
        fixes.append("use training.mixedPrecision bf16 instead of fp16")
    return (
        f"{what} at step {step} (learning rate {learning_rate:.3g}); training stopped and no weights or checkpoint "
        f"were written from this state. To fix it: {'; '.join(fixes)}"
    )

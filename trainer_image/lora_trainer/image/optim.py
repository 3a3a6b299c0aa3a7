"""AdamW over the LoRA parameters, the learning-rate schedule and the fp16 gradient scaler."""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import torch
from diffusers.optimization import get_scheduler

from lora_operator.api.training_spec import TrainingSpec
from lora_trainer.errors import NonFiniteLossError
from lora_trainer.image.models import TrainingModels, lora_parameters


@dataclass
class Optimisation:
    optimizer: torch.optim.AdamW
    lr_scheduler: torch.optim.lr_scheduler.LRScheduler
    grad_scaler: torch.amp.GradScaler | None
    """Set for fp16 only: bf16 has fp32's exponent range and needs no loss scaling."""
    parameters: list[torch.nn.Parameter]

    def state_dicts(self) -> dict[str, dict]:
        states = {"optimizer": self.optimizer.state_dict(), "lr_scheduler": self.lr_scheduler.state_dict()}
        if self.grad_scaler is not None:
            states["grad_scaler"] = self.grad_scaler.state_dict()
        return states

    def load_state_dicts(self, states: dict[str, dict]) -> None:
        # The optimiser's param_groups carry the current learning rate, so it is restored first.
        self.optimizer.load_state_dict(states["optimizer"])
        self.lr_scheduler.load_state_dict(states["lr_scheduler"])
        if self.grad_scaler is not None and "grad_scaler" in states:
            self.grad_scaler.load_state_dict(states["grad_scaler"])


def build_optimisation(*, models: TrainingModels, training: TrainingSpec, total_steps: int) -> Optimisation:
    """Create AdamW with one parameter group per trained module, and the warm-up schedule."""
    groups = [{"params": lora_parameters(models.unet), "lr": training.learning_rate}]
    if models.train_text_encoder:
        text_encoder_lr = training.text_encoder_learning_rate or training.learning_rate
        groups.append({"params": lora_parameters(models.text_encoder), "lr": text_encoder_lr})
    optimizer = torch.optim.AdamW(groups, weight_decay=training.weight_decay)
    lr_scheduler = get_scheduler(
        training.scheduler,
        optimizer=optimizer,
        num_warmup_steps=training.warmup_steps,
        num_training_steps=max(total_steps, 1),
    )
    grad_scaler = None
    if models.weight_dtype == torch.float16:
        grad_scaler = torch.amp.GradScaler("cuda")
    parameters = [parameter for group in groups for parameter in group["params"]]
    return Optimisation(optimizer=optimizer, lr_scheduler=lr_scheduler, grad_scaler=grad_scaler, parameters=parameters)


def apply_update(
    optimisation: Optimisation,
    *,
    training: TrainingSpec,
    step: int,
    describe: Callable[..., str],
) -> None:
    """Clip the accumulated gradients, step the optimiser and the schedule, and clear the gradients.

    Raises NonFiniteLossError, with the message ``describe`` builds, before the weights change
    when the gradient norm is NaN or infinite (without a gradient scaler, which handles that itself).
    """
    optimizer, scaler = optimisation.optimizer, optimisation.grad_scaler
    if scaler is not None:
        scaler.unscale_(optimizer)
    grad_norm = torch.nn.utils.clip_grad_norm_(optimisation.parameters, training.max_grad_norm)
    if scaler is None and not math.isfinite(grad_norm.item()):
        problem = f"the gradient norm is {grad_norm.item()}"
        raise NonFiniteLossError(describe(problem, step=step, optimisation=optimisation, training=training))
    if scaler is not None:
        # The scaler skips the update when fp16 gradients overflowed, and lowers its scale.
        scaler.step(optimizer)
        scaler.update()
    else:
        optimizer.step()
    optimisation.lr_scheduler.step()
    optimizer.zero_grad(set_to_none=True)

"""AdamW over the trainable tensors of the text LoRA, the learning-rate schedule and the fp16 gradient scaler."""

from __future__ import annotations

import torch
from transformers import get_scheduler

from lora_operator.api.training_spec import TrainingSpec
from lora_trainer.image.optim import Optimisation
from lora_trainer.text.models import TextModels


def build_text_optimisation(*, models: TextModels, training: TrainingSpec, total_steps: int) -> Optimisation:
    """Create AdamW over every trainable parameter and the warm-up schedule of training.scheduler."""
    parameters = [parameter for parameter in models.model.parameters() if parameter.requires_grad]
    optimizer = torch.optim.AdamW([{"params": parameters, "lr": training.learning_rate}], weight_decay=training.weight_decay)
    lr_scheduler = get_scheduler(
        training.scheduler, optimizer=optimizer, num_warmup_steps=training.warmup_steps, num_training_steps=max(total_steps, 1)
    )
    grad_scaler = torch.amp.GradScaler("cuda") if models.weight_dtype == torch.float16 else None
    return Optimisation(optimizer=optimizer, lr_scheduler=lr_scheduler, grad_scaler=grad_scaler, parameters=parameters)

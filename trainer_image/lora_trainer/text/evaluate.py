"""Eval loss and perplexity of the model being trained on the held-out samples."""

from __future__ import annotations

import math

import torch

from lora_trainer.distributed import SINGLE_PROCESS, Processes
from lora_trainer.text.batches import collate, count_targets, forward_inputs, token_loss_sum
from lora_trainer.text.models import TextModels, autocast_context
from lora_trainer.text.tokenize import TokenSample


def evaluate(
    models: TextModels,
    samples: list[TokenSample],
    *,
    batch_size: int,
    device: torch.device,
    processes: Processes = SINGLE_PROCESS,
) -> dict[str, float | None]:
    """Return the mean cross-entropy per trained token (loss), its exp (perplexity) and the token count.

    Each of several ``processes`` evaluates its share of ``samples``, and the sums of loss
    and tokens are added across them, so every process returns the result of all samples.

    Perplexity is None when exp overflows a float (a loss above 700), which JSON cannot carry.

    Runs in eval mode (no dropout), so it draws no random numbers; the model's training
    mode is restored afterwards.
    """
    model = models.model
    was_training = model.training
    model.eval()
    loss_sum, targets = 0.0, 0
    try:
        with torch.no_grad(), autocast_context(models, device):
            own = processes.own_share(samples)
            for start in range(0, len(own), batch_size):
                batch = collate(own[start:start + batch_size], pad_token_id=models.pad_token_id, device=device)
                logits = model(**forward_inputs(batch), use_cache=False).logits
                loss_sum += token_loss_sum(logits, batch["labels"]).item()
                targets += count_targets(batch["labels"])
    finally:
        model.train(was_training)
    loss_sum, targets = processes.sum_values([loss_sum, targets])
    targets = int(targets)
    loss = loss_sum / max(targets, 1)
    perplexity = math.exp(loss) if loss < 700 else None
    return {"loss": loss, "perplexity": perplexity, "tokens": targets}

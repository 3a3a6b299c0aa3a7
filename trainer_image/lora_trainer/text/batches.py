"""Padding token samples into batches, and the length buckets that keep padding low."""

from __future__ import annotations

import torch

from lora_trainer.text.tokenize import IGNORE_INDEX, TokenSample

# Samples are grouped by their length rounded up to a power of two, at least this long.
MIN_BUCKET_LENGTH = 16


def length_buckets(samples: list[TokenSample]) -> list[tuple[int, int]]:
    """Return each sample's bucket for BucketBatchSampler: (length rounded up to a power of two, 0)."""
    buckets = []
    for sample in samples:
        length = max(len(sample.input_ids), MIN_BUCKET_LENGTH)
        buckets.append((1 << (length - 1).bit_length(), 0))
    return buckets


def collate(samples: list[TokenSample], *, pad_token_id: int, device: torch.device) -> dict[str, torch.Tensor]:
    """Right-pad ``samples`` to the longest one: input_ids, attention_mask, labels and position_ids tensors."""
    width = max(len(sample.input_ids) for sample in samples)
    input_ids, attention, labels, positions = [], [], [], []
    for sample in samples:
        padding = width - len(sample.input_ids)
        input_ids.append(sample.input_ids + [pad_token_id] * padding)
        attention.append([1] * len(sample.input_ids) + [0] * padding)
        labels.append(sample.labels + [IGNORE_INDEX] * padding)
        sample_positions = sample.position_ids or list(range(len(sample.input_ids)))
        positions.append(sample_positions + [0] * padding)
    return {
        "input_ids": torch.tensor(input_ids, dtype=torch.long, device=device),
        "attention_mask": torch.tensor(attention, dtype=torch.long, device=device),
        "labels": torch.tensor(labels, dtype=torch.long, device=device),
        "position_ids": torch.tensor(positions, dtype=torch.long, device=device),
    }


def forward_inputs(batch: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Return the model's keyword inputs for a collated batch.

    A batch with packed samples goes without attention_mask. The causal mask of transformers
    (masking_utils.find_packed_sequence_indices, from 4.54 on) then finds the samples from the
    restarts of position_ids, so no token attends to another sample of its sequence.
    Padding needs no mask there, because it comes last and every padding position is 0.
    """
    # NOTE: a model whose remote code builds its mask without create_causal_mask lets packed
    # samples attend to each other. The packing test covers the Llama architecture only.
    inputs = {"input_ids": batch["input_ids"], "position_ids": batch["position_ids"]}
    if not has_packed_samples(batch):
        inputs["attention_mask"] = batch["attention_mask"]
    return inputs


def has_packed_samples(batch: dict[str, torch.Tensor]) -> bool:
    """Return whether a row of the batch contains several samples, because its positions restart inside its tokens."""
    restarts = (batch["position_ids"][:, 1:] == 0) & (batch["attention_mask"][:, 1:] == 1)
    return bool(restarts.any())


def token_loss_sum(logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """Return the summed cross-entropy of every labelled next token, in fp32."""
    shifted_logits = logits[:, :-1, :].reshape(-1, logits.shape[-1]).float()
    shifted_labels = labels[:, 1:].reshape(-1)
    return torch.nn.functional.cross_entropy(shifted_logits, shifted_labels, ignore_index=IGNORE_INDEX, reduction="sum")


def count_targets(labels: torch.Tensor) -> int:
    return int((labels[:, 1:] != IGNORE_INDEX).sum().item())

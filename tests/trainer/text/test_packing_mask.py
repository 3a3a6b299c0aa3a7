"""Packed samples do not attend to each other: each gives the logits it gives alone."""

from __future__ import annotations

import pytest
import torch
from transformers import AutoModelForCausalLM

from lora_trainer.models.builtin_llama import tiny_llama_path
from lora_trainer.text.batches import collate, forward_inputs, has_packed_samples
from lora_trainer.text.tokenize import IGNORE_INDEX, TokenSample, pack_samples

pytestmark = pytest.mark.trainer

TOLERANCE = 1e-5


def sample(token_ids: list[int]) -> TokenSample:
    return TokenSample(input_ids=token_ids, labels=list(token_ids))


@pytest.fixture(scope="module")
def model() -> torch.nn.Module:
    torch.manual_seed(0)
    return AutoModelForCausalLM.from_pretrained(tiny_llama_path()).eval()


@pytest.fixture(scope="module")
def samples() -> list[TokenSample]:
    generator = torch.Generator().manual_seed(3)
    return [sample(torch.randint(5, 500, (length,), generator=generator).tolist()) for length in (12, 9, 6)]


def logits_of(model: torch.nn.Module, batch: dict[str, torch.Tensor]) -> torch.Tensor:
    with torch.no_grad():
        return model(**forward_inputs(batch), use_cache=False).logits


def alone(model: torch.nn.Module, item: TokenSample) -> torch.Tensor:
    return logits_of(model, collate([item], pad_token_id=0, device=torch.device("cpu")))[0]


def test_packed_samples_match_alone(model: torch.nn.Module, samples: list[TokenSample]) -> None:
    (packed,) = pack_samples(samples, max_length=64)
    batch = collate([packed], pad_token_id=0, device=torch.device("cpu"))

    logits = logits_of(model, batch)[0]

    offset = 0
    for item in sorted(samples, key=lambda entry: -len(entry.input_ids)):
        length = len(item.input_ids)
        difference = (logits[offset : offset + length] - alone(model, item)).abs().max().item()
        assert difference < TOLERANCE, f"sample at offset {offset} differs by {difference}"
        offset += length


def test_packed_row_beside_padded_row(model: torch.nn.Module, samples: list[TokenSample]) -> None:
    (packed,) = pack_samples(samples[1:], max_length=64)
    batch = collate([packed, samples[0]], pad_token_id=0, device=torch.device("cpu"))

    logits = logits_of(model, batch)

    assert has_packed_samples(batch)
    first, second = sorted(samples[1:], key=lambda entry: -len(entry.input_ids))
    assert (logits[0, : len(first.input_ids)] - alone(model, first)).abs().max().item() < TOLERANCE
    assert (logits[0, len(first.input_ids) : len(packed.input_ids)] - alone(model, second)).abs().max().item() < TOLERANCE
    assert (logits[1, : len(samples[0].input_ids)] - alone(model, samples[0])).abs().max().item() < TOLERANCE


def test_mask_matters_for_packed_rows(model: torch.nn.Module, samples: list[TokenSample]) -> None:
    # With the padding mask alone, the later samples see the earlier ones, so the check above can fail.
    (packed,) = pack_samples(samples, max_length=64)
    batch = collate([packed], pad_token_id=0, device=torch.device("cpu"))
    with torch.no_grad():
        leaky = model(**batch_without_labels(batch), use_cache=False).logits[0]

    second_start = len(samples[0].input_ids)
    second = sorted(samples, key=lambda entry: -len(entry.input_ids))[1]
    difference = (leaky[second_start : second_start + len(second.input_ids)] - alone(model, second)).abs().max().item()
    assert difference > 1e-3


def batch_without_labels(batch: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    return {key: value for key, value in batch.items() if key != "labels"}


def test_unpacked_batch_keeps_padding_mask() -> None:
    batch = collate([sample([5, 6, 7]), sample([8, 9])], pad_token_id=0, device=torch.device("cpu"))

    assert not has_packed_samples(batch)
    assert "attention_mask" in forward_inputs(batch)
    assert batch["labels"][1, -1].item() == IGNORE_INDEX

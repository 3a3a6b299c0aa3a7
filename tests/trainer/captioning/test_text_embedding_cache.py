"""The vocabulary's text embeddings are encoded once per model, device and vocabulary."""

from __future__ import annotations

import pytest
import torch

from lora_trainer.captioning.clip_loader import load_clip
from lora_trainer.captioning.tagging import tag_probabilities, tag_text_embeddings

pytestmark = pytest.mark.trainer


def test_same_vocabulary_reuses_embeddings():
    clip = load_clip("builtin://tiny-clip")

    first = tag_text_embeddings(clip.model, clip.tokenizer, ["red", "blue"], model_key=clip.key, device="cpu")
    second = tag_text_embeddings(clip.model, clip.tokenizer, ["red", "blue"], model_key=clip.key, device="cpu")

    assert second is first


def test_other_vocabulary_encoded_anew():
    clip = load_clip("builtin://tiny-clip")

    first = tag_text_embeddings(clip.model, clip.tokenizer, ["red", "blue"], model_key=clip.key, device="cpu")
    other = tag_text_embeddings(clip.model, clip.tokenizer, ["red", "green"], model_key=clip.key, device="cpu")

    assert other is not first
    assert torch.equal(other[0], first[0])
    assert not torch.equal(other[1], first[1])


def test_embeddings_have_unit_length():
    clip = load_clip("builtin://tiny-clip")

    embeddings = tag_text_embeddings(clip.model, clip.tokenizer, ["red", "blue"], model_key=clip.key, device="cpu")

    assert embeddings.shape == (3, 32)
    assert torch.allclose(embeddings.norm(dim=1), torch.ones(3), atol=1e-5)


def test_probability_compares_with_neutral():
    # Image 0 matches tag 0 exactly; image 1 matches the neutral prompt (the last row).
    text = torch.eye(3)
    images = torch.eye(3)[[0, 2]]

    probabilities = tag_probabilities(images, text, logit_scale=10.0)

    assert probabilities.shape == (2, 2)
    assert probabilities[0, 0].item() == pytest.approx(torch.sigmoid(torch.tensor(10.0)).item())
    assert probabilities[0, 1].item() == pytest.approx(0.5)
    assert probabilities[1, 0].item() == pytest.approx(torch.sigmoid(torch.tensor(-10.0)).item())

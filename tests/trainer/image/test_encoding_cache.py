"""Latents and caption embeddings are encoded once when cached, and at every step when not."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pytest
import torch
from diffusers.models.autoencoders.vae import Encoder
from transformers import CLIPTextModel

from lora_trainer.data.records import ImageRecord

from .builders import build_records, make_config, make_trainer

pytestmark = pytest.mark.trainer

# 6 steps of batch 2 over 5 records (batches of 1, 2 and 2) are exactly 2 epochs: 10 samples.
STEPS = 6
SAMPLES_TRAINED = 10


@pytest.fixture(scope="module")
def records(tmp_path_factory: pytest.TempPathFactory) -> list[ImageRecord]:
    return build_records(tmp_path_factory.mktemp("records"))


@pytest.fixture
def encoded() -> Iterator[Counter]:
    """Count the images through the VAE encoder and the captions through the text encoder."""
    counts: Counter = Counter()

    def count(module: torch.nn.Module, _args: tuple, output: object) -> None:
        if isinstance(module, Encoder):
            counts["images"] += output.shape[0]
        elif isinstance(module, CLIPTextModel):
            counts["captions"] += output[0].shape[0]

    handle = torch.nn.modules.module.register_module_forward_hook(count)
    yield counts
    handle.remove()


def test_cold_cache_encodes_once(records: list[ImageRecord], encoded: Counter, tmp_path: Path) -> None:
    config = make_config(tmp_path / "run", training={"maxSteps": STEPS})
    result = make_trainer(config, records, run_dir=tmp_path / "run", work_dir=tmp_path / "work").run()
    assert result.global_step == STEPS
    assert encoded["images"] == len(records)
    assert encoded["captions"] == len(records)


def test_warm_cache_encodes_nothing(records: list[ImageRecord], encoded: Counter, tmp_path: Path) -> None:
    config = make_config(tmp_path / "run-1", training={"maxSteps": STEPS})
    make_trainer(config, records, run_dir=tmp_path / "run-1", work_dir=tmp_path / "work").run()
    encoded.clear()

    config = make_config(tmp_path / "run-2", training={"maxSteps": STEPS})
    make_trainer(config, records, run_dir=tmp_path / "run-2", work_dir=tmp_path / "work").run()
    assert encoded["images"] == 0
    assert encoded["captions"] == 0


def test_uncached_run_encodes_every_step(records: list[ImageRecord], encoded: Counter, tmp_path: Path) -> None:
    config = make_config(tmp_path / "run", training={"maxSteps": STEPS, "cacheLatents": False})
    make_trainer(config, records, run_dir=tmp_path / "run", work_dir=tmp_path / "work").run()
    assert encoded["images"] == SAMPLES_TRAINED
    assert encoded["captions"] == SAMPLES_TRAINED


def test_trained_text_encoder_encodes_per_step(records: list[ImageRecord], encoded: Counter, tmp_path: Path) -> None:
    config = make_config(tmp_path / "run", training={"maxSteps": STEPS}, lora={"trainTextEncoder": True})
    trainer = make_trainer(config, records, run_dir=tmp_path / "run", work_dir=tmp_path / "work")
    trainer.prepare()
    initial = {name: p.detach().clone() for name, p in trainer.models.text_encoder.named_parameters() if p.requires_grad}
    trainer.run()
    trained = dict(trainer.models.text_encoder.named_parameters())

    assert encoded["images"] == len(records)
    assert encoded["captions"] == SAMPLES_TRAINED
    assert initial, "the text encoder has no LoRA parameters"
    assert any(not torch.equal(initial[name], trained[name]) for name in initial)

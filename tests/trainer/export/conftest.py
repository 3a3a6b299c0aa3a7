"""Fixtures of the export tests: tiny pipelines, run metadata and one exported run."""

from __future__ import annotations

import pytest
from lora_operator.api.training_spec import LoraSpec

from lora_trainer.export import ExportMetadata
from lora_trainer.models.builtin_sd import tiny_sd_path

from .tiny_pipelines import ExportedRun, TinyPipelines, export_trained


@pytest.fixture(scope="session")
def pipelines() -> TinyPipelines:
    return TinyPipelines(tiny_sd_path())


@pytest.fixture(scope="session")
def export_metadata() -> ExportMetadata:
    return ExportMetadata(
        title="Tiny cat LoRA",
        base_model="builtin://tiny-sd",
        trigger_word="zwx",
        resolution=(64, 64),
        dataset_hash="sha256:" + "ab" * 32,
        num_train_images=3,
        steps=12,
        epochs=4,
        learning_rate=2e-4,
        seed=7,
        tag_frequency={"cat": 3, "sofa": 1},
        training_config={"learningRate": 2e-4, "maxSteps": 12, "scheduler": "constant"},
        software_versions={"diffusers": "0.42.1", "peft": "0.21.2"},
        description="A test adapter.",
        dataset_name="cats",
    )


@pytest.fixture(scope="session")
def text_encoder_run(
    pipelines: TinyPipelines, export_metadata: ExportMetadata, tmp_path_factory: pytest.TempPathFactory
) -> ExportedRun:
    """UNet and text-encoder adapters (attention and MLP) with alpha = 2 x rank.

    A loader that assumed alpha = rank would scale the updates by half.
    """
    lora = LoraSpec(
        rank=4,
        alpha=8.0,
        dropout=0.1,
        train_text_encoder=True,
        text_encoder_target_modules=["q_proj", "k_proj", "v_proj", "out_proj", "fc1", "fc2"],
    )
    return export_trained(pipelines, lora, export_metadata, tmp_path_factory.mktemp("text-encoder-run"))


"""Exports that must fail with a clear error and write nothing."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest
import torch
from diffusers import StableDiffusionPipeline
from lora_operator.api.training_spec import LoraSpec

from lora_trainer.errors import InvalidInputError, NonFiniteLossError, TrainerError
from lora_trainer.export import ExportMetadata, NonFiniteWeightError, export_image_lora

from .tiny_pipelines import TinyPipelines

pytestmark = pytest.mark.trainer

LORA = LoraSpec(rank=4, alpha=8.0, dropout=0.0)


def export(
    pipe: StableDiffusionPipeline, lora: LoraSpec, metadata: ExportMetadata, out_dir: Path, **overrides: object
) -> dict[str, Path]:
    """Export `pipe` in both formats; `overrides` replace single arguments of export_image_lora."""
    arguments = {
        "unet": pipe.unet,
        "text_encoder": pipe.text_encoder,
        "lora": lora,
        "out_dir": out_dir,
        "name": "cat-lora",
        "formats": ["kohya", "diffusers"],
        "metadata": metadata,
    }
    return export_image_lora(**(arguments | overrides))


def written_files(out_dir: Path) -> list[str]:
    return sorted(str(path.relative_to(out_dir)) for path in out_dir.rglob("*") if path.is_file())


def test_unet_without_adapter_fails(
    pipelines: TinyPipelines, export_metadata: ExportMetadata, tmp_path: Path
) -> None:
    with pytest.raises(InvalidInputError, match=r"target_modules \['to_q', 'to_k', 'to_v', 'to_out.0'\]"):
        export(pipelines.base(), LORA, export_metadata, tmp_path)


def test_empty_adapter_message_names_fix(
    pipelines: TinyPipelines, export_metadata: ExportMetadata, tmp_path: Path
) -> None:
    with pytest.raises(InvalidInputError, match="Set targetModules"):
        export(pipelines.base(), LORA, export_metadata, tmp_path)


def test_text_encoder_without_adapter_fails(
    pipelines: TinyPipelines, export_metadata: ExportMetadata, tmp_path: Path
) -> None:
    unet_only = pipelines.trained(LORA)
    lora = LORA.model_copy(update={"train_text_encoder": True})
    with pytest.raises(InvalidInputError, match=r"text_encoder has no LoRA weights.*'q_proj'"):
        export(unet_only, lora, export_metadata, tmp_path)


def test_missing_text_encoder_fails(
    pipelines: TinyPipelines, export_metadata: ExportMetadata, tmp_path: Path
) -> None:
    lora = LORA.model_copy(update={"train_text_encoder": True})
    trained = pipelines.trained(lora)
    with pytest.raises(InvalidInputError, match="no text encoder was passed"):
        export(trained, lora, export_metadata, tmp_path, text_encoder=None)


@pytest.mark.parametrize("bad_value", [float("nan"), float("inf")])
def test_non_finite_weights_rejected(
    pipelines: TinyPipelines, export_metadata: ExportMetadata, tmp_path: Path, bad_value: float
) -> None:
    trained = pipelines.trained(LORA)
    lora_a = next(parameter for name, parameter in trained.unet.named_parameters() if ".lora_A." in name)
    with torch.no_grad():
        lora_a[0, 0] = bad_value
    with pytest.raises(NonFiniteWeightError, match="NaN or infinite"):
        export(trained, LORA, export_metadata, tmp_path)


def test_non_finite_weights_write_nothing(
    pipelines: TinyPipelines, export_metadata: ExportMetadata, tmp_path: Path
) -> None:
    trained = pipelines.trained(LORA)
    lora_b = next(parameter for name, parameter in trained.unet.named_parameters() if ".lora_B." in name)
    with torch.no_grad():
        lora_b.fill_(float("nan"))
    with pytest.raises(NonFiniteWeightError):
        export(trained, LORA, export_metadata, tmp_path)
    assert written_files(tmp_path) == []


def test_non_finite_error_is_loss_error() -> None:
    assert issubclass(NonFiniteWeightError, NonFiniteLossError)


def test_unknown_format_rejected(pipelines: TinyPipelines, export_metadata: ExportMetadata, tmp_path: Path) -> None:
    with pytest.raises(InvalidInputError, match="'ckpt'"):
        export(pipelines.trained(LORA), LORA, export_metadata, tmp_path, formats=["kohya", "ckpt"])


def test_empty_format_list_rejected(
    pipelines: TinyPipelines, export_metadata: ExportMetadata, tmp_path: Path
) -> None:
    with pytest.raises(InvalidInputError, match="choose one or more"):
        export(pipelines.trained(LORA), LORA, export_metadata, tmp_path, formats=[])


@pytest.mark.parametrize("name", ["", "../escape", "has space", ".hidden"])
def test_invalid_name_rejected(
    pipelines: TinyPipelines, export_metadata: ExportMetadata, tmp_path: Path, name: str
) -> None:
    with pytest.raises(InvalidInputError, match="Invalid output name"):
        export(pipelines.trained(LORA), LORA, export_metadata, tmp_path, name=name)


def test_spec_rank_mismatch_rejected(
    pipelines: TinyPipelines, export_metadata: ExportMetadata, tmp_path: Path
) -> None:
    trained = pipelines.trained(LORA)
    with pytest.raises(TrainerError, match="rank=8"):
        export(trained, LORA.model_copy(update={"rank": 8}), export_metadata, tmp_path)


def test_single_format_writes_one_file(
    pipelines: TinyPipelines, export_metadata: ExportMetadata, tmp_path: Path
) -> None:
    export(pipelines.trained(LORA), LORA, export_metadata, tmp_path, formats=["kohya"])
    assert written_files(tmp_path) == ["cat-lora.safetensors"]


def test_zero_resolution_rejected(export_metadata: ExportMetadata) -> None:
    with pytest.raises(InvalidInputError, match=r"resolution \(0, 64\)"):
        replace(export_metadata, resolution=(0, 64))


def test_negative_steps_rejected(export_metadata: ExportMetadata) -> None:
    with pytest.raises(InvalidInputError, match="steps=-1"):
        replace(export_metadata, steps=-1)

"""Each exported file, loaded with diffusers' load_lora_weights, reproduces the trained model."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pytest
import torch
from lora_operator.api.training_spec import LoraSpec

from lora_trainer.export import SUPPORTED_FORMATS, ExportMetadata

from .tiny_pipelines import ExportedRun, TinyPipelines, export_trained

pytestmark = pytest.mark.trainer

# fp32 on the CPU: loading copies the exact weights, so only summation order can differ.
OUTPUT_TOLERANCE = 1e-5
# The random up weights move the outputs by 1 or more, and a LoRA that did nothing stays below this.
MIN_LORA_EFFECT = 1e-2
# diffusers 0.42 logs this for every UNet-only LoRA, and it names no key.
NO_TEXT_ENCODER_KEYS = "No LoRA keys associated to CLIPTextModel found"


@dataclass(frozen=True)
class LoadedFile:
    outputs: tuple[torch.Tensor, torch.Tensor]
    warnings: list[str]
    tensor_count: int


def load_each_format(pipelines: TinyPipelines, run: ExportedRun) -> dict[str, LoadedFile]:
    loaded = {}
    for export_format, path in run.files.items():
        pipe, messages = pipelines.load(path)
        loaded[export_format] = LoadedFile(pipelines.outputs(pipe), messages, pipelines.count_lora_tensors(pipe))
    return loaded


def max_difference(left: torch.Tensor, right: torch.Tensor) -> float:
    return (left - right).abs().max().item()


@pytest.fixture(scope="module")
def text_encoder_loaded(pipelines: TinyPipelines, text_encoder_run: ExportedRun) -> dict[str, LoadedFile]:
    return load_each_format(pipelines, text_encoder_run)


@pytest.fixture(scope="module")
def unet_only_run(
    pipelines: TinyPipelines, export_metadata: ExportMetadata, tmp_path_factory: pytest.TempPathFactory
) -> ExportedRun:
    # Linear and Conv2d targets in attention, feed-forward and ResNet blocks, so the kohya
    # key conversion meets every kind of UNet module name.
    lora = LoraSpec(
        rank=4,
        alpha=2.0,
        dropout=0.0,
        target_modules=["to_q", "to_k", "to_v", "to_out.0", "proj_in", "proj_out", "ff.net.0.proj", "ff.net.2",
                        "conv1", "conv2", "conv_shortcut", "time_emb_proj"],
    )
    return export_trained(pipelines, lora, export_metadata, tmp_path_factory.mktemp("unet-only-run"))


@pytest.fixture(scope="module")
def unet_only_loaded(pipelines: TinyPipelines, unet_only_run: ExportedRun) -> dict[str, LoadedFile]:
    return load_each_format(pipelines, unet_only_run)


def test_export_writes_both_formats(text_encoder_run: ExportedRun) -> None:
    assert sorted(text_encoder_run.files) == sorted(SUPPORTED_FORMATS)


def test_export_uses_documented_paths(text_encoder_run: ExportedRun) -> None:
    kohya_path = text_encoder_run.files["kohya"]
    diffusers_path = text_encoder_run.files["diffusers"]
    assert kohya_path.name == "cat-lora.safetensors"
    assert diffusers_path == kohya_path.parent / "diffusers" / "pytorch_lora_weights.safetensors"


def test_export_leaves_no_staging_files(text_encoder_run: ExportedRun) -> None:
    out_dir = text_encoder_run.files["kohya"].parent
    leftovers = [path.name for path in out_dir.rglob(".*")]
    assert leftovers == []


def test_trained_lora_changes_unet(text_encoder_run: ExportedRun) -> None:
    assert max_difference(text_encoder_run.trained_outputs[1], text_encoder_run.base_outputs[1]) > MIN_LORA_EFFECT


def test_trained_lora_changes_text_encoder(text_encoder_run: ExportedRun) -> None:
    assert max_difference(text_encoder_run.trained_outputs[0], text_encoder_run.base_outputs[0]) > MIN_LORA_EFFECT


@pytest.mark.parametrize("export_format", SUPPORTED_FORMATS)
def test_load_logs_no_warnings(text_encoder_loaded: dict[str, LoadedFile], export_format: str) -> None:
    assert text_encoder_loaded[export_format].warnings == []


@pytest.mark.parametrize("export_format", SUPPORTED_FORMATS)
def test_load_uses_every_tensor(
    text_encoder_run: ExportedRun, text_encoder_loaded: dict[str, LoadedFile], export_format: str
) -> None:
    assert text_encoder_loaded[export_format].tensor_count == text_encoder_run.trained_tensor_count


@pytest.mark.parametrize("export_format", SUPPORTED_FORMATS)
def test_loaded_unet_matches_trained(
    text_encoder_run: ExportedRun, text_encoder_loaded: dict[str, LoadedFile], export_format: str
) -> None:
    loaded = text_encoder_loaded[export_format].outputs[1]
    assert max_difference(loaded, text_encoder_run.trained_outputs[1]) < OUTPUT_TOLERANCE


@pytest.mark.parametrize("export_format", SUPPORTED_FORMATS)
def test_loaded_text_encoder_matches_trained(
    text_encoder_run: ExportedRun, text_encoder_loaded: dict[str, LoadedFile], export_format: str
) -> None:
    loaded = text_encoder_loaded[export_format].outputs[0]
    assert max_difference(loaded, text_encoder_run.trained_outputs[0]) < OUTPUT_TOLERANCE


def test_formats_change_unet_equally(text_encoder_loaded: dict[str, LoadedFile]) -> None:
    kohya = text_encoder_loaded["kohya"].outputs[1]
    diffusers = text_encoder_loaded["diffusers"].outputs[1]
    assert max_difference(kohya, diffusers) < OUTPUT_TOLERANCE


def test_formats_change_text_encoder_equally(text_encoder_loaded: dict[str, LoadedFile]) -> None:
    kohya = text_encoder_loaded["kohya"].outputs[0]
    diffusers = text_encoder_loaded["diffusers"].outputs[0]
    assert max_difference(kohya, diffusers) < OUTPUT_TOLERANCE


@pytest.mark.parametrize("export_format", SUPPORTED_FORMATS)
def test_warning_capture_sees_diffusers(unet_only_loaded: dict[str, LoadedFile], export_format: str) -> None:
    # The known warning of a UNet-only load proves that the empty lists above mean something.
    assert any(NO_TEXT_ENCODER_KEYS in text for text in unet_only_loaded[export_format].warnings)


@pytest.mark.parametrize("export_format", SUPPORTED_FORMATS)
def test_unet_only_load_warns_nothing(unet_only_loaded: dict[str, LoadedFile], export_format: str) -> None:
    messages = [text for text in unet_only_loaded[export_format].warnings if NO_TEXT_ENCODER_KEYS not in text]
    assert messages == []


@pytest.mark.parametrize("export_format", SUPPORTED_FORMATS)
def test_unet_only_load_uses_every_tensor(
    unet_only_run: ExportedRun, unet_only_loaded: dict[str, LoadedFile], export_format: str
) -> None:
    assert unet_only_loaded[export_format].tensor_count == unet_only_run.trained_tensor_count


@pytest.mark.parametrize("export_format", SUPPORTED_FORMATS)
def test_unet_only_output_matches_trained(
    unet_only_run: ExportedRun, unet_only_loaded: dict[str, LoadedFile], export_format: str
) -> None:
    loaded = unet_only_loaded[export_format].outputs[1]
    assert max_difference(loaded, unet_only_run.trained_outputs[1]) < OUTPUT_TOLERANCE


@pytest.mark.parametrize("export_format", SUPPORTED_FORMATS)
def test_unet_only_keeps_text_encoder(
    unet_only_run: ExportedRun, unet_only_loaded: dict[str, LoadedFile], export_format: str
) -> None:
    loaded = unet_only_loaded[export_format].outputs[0]
    assert max_difference(loaded, unet_only_run.base_outputs[0]) == 0.0


@pytest.mark.parametrize("alpha", [1.0, 16.0])
@pytest.mark.parametrize("export_format", SUPPORTED_FORMATS)
def test_alpha_round_trips(
    pipelines: TinyPipelines,
    export_metadata: ExportMetadata,
    tmp_path: Path,
    alpha: float,
    export_format: str,
) -> None:
    # Rank 4 with alpha 1 or 16 scales the update by 1/4 or 4, so a loader that assumed
    # alpha = rank would be off by that factor.
    run = export_trained(pipelines, LoraSpec(rank=4, alpha=alpha, dropout=0.0), export_metadata, tmp_path)
    pipe, _ = pipelines.load(run.files[export_format])
    loaded = pipelines.outputs(pipe)[1]
    assert max_difference(loaded, run.trained_outputs[1]) < OUTPUT_TOLERANCE

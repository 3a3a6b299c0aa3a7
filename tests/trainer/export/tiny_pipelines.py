"""LoRA-wrapped builtin://tiny-sd pipelines for the export tests, and their outputs."""

from __future__ import annotations

import logging
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import torch
from diffusers import StableDiffusionPipeline
from lora_operator.api.training_spec import LoraSpec
from peft import LoraConfig

from lora_trainer.export import SUPPORTED_FORMATS, ExportMetadata, export_image_lora

# 64 px images give 8x8 latents with the VAE's scale factor of 8.
LATENT_SHAPE = (1, 4, 8, 8)
TIMESTEP = 500
PROMPT = "zwx a photo of a cat"
LIBRARY_LOGGERS = ("diffusers", "transformers", "peft")


class _RecordingHandler(logging.Handler):
    def __init__(self) -> None:
        super().__init__(level=logging.WARNING)
        self.messages: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.messages.append(f"{record.name}: {record.getMessage()}")


@contextmanager
def _library_warnings() -> Iterator[list[str]]:
    # diffusers' loggers do not propagate to the root logger, so caplog would miss them.
    handler = _RecordingHandler()
    loggers = [logging.getLogger(name) for name in LIBRARY_LOGGERS]
    for logger in loggers:
        logger.addHandler(handler)
    try:
        with warnings.catch_warnings(record=True) as raised:
            warnings.simplefilter("always")
            yield handler.messages
        # The garbage collector may finalise a socket that an earlier test left open at any moment,
        # and its ResourceWarning is not about the load under test.
        handler.messages.extend(
            f"warning: {item.message}" for item in raised if not issubclass(item.category, ResourceWarning)
        )
    finally:
        for logger in loggers:
            logger.removeHandler(handler)


class TinyPipelines:
    """Builds, loads and runs builtin://tiny-sd pipelines on the CPU."""

    def __init__(self, base_path: Path) -> None:
        self.base_path = base_path

    def base(self) -> StableDiffusionPipeline:
        pipe = StableDiffusionPipeline.from_pretrained(self.base_path)
        pipe.set_progress_bar_config(disable=True)
        return pipe

    def trained(self, lora: LoraSpec, *, seed: int = 0) -> StableDiffusionPipeline:
        """Wrap a base pipeline with LoRA adapters whose up weights are random, as after training."""
        pipe = self.base()
        pipe.unet.add_adapter(_lora_config(lora, lora.target_modules))
        if lora.train_text_encoder:
            pipe.text_encoder.add_adapter(_lora_config(lora, lora.text_encoder_target_modules))

        # lora_B starts at zero, which would make the adapter a no-op.
        generator = torch.Generator().manual_seed(seed)
        for model in (pipe.unet, pipe.text_encoder):
            for name, parameter in model.named_parameters():
                if ".lora_B." in name:
                    with torch.no_grad():
                        parameter.copy_(torch.randn(parameter.shape, generator=generator) * 0.5)

        # add_adapter() creates the dropout modules in training mode, even in an eval-mode model.
        pipe.unet.eval()
        pipe.text_encoder.eval()
        return pipe

    def load(self, weights: Path) -> tuple[StableDiffusionPipeline, list[str]]:
        """Load an exported file into a fresh base pipeline and return the pipeline with the load's warnings."""
        pipe = self.base()
        with _library_warnings() as messages:
            pipe.load_lora_weights(str(weights))
        return pipe, messages

    @staticmethod
    def outputs(pipe: StableDiffusionPipeline) -> tuple[torch.Tensor, torch.Tensor]:
        """Return (text embeddings, UNet noise prediction) for a fixed prompt, latents and timestep."""
        token_ids = pipe.tokenizer(
            [PROMPT], padding="max_length", max_length=pipe.tokenizer.model_max_length, return_tensors="pt"
        ).input_ids
        latents = torch.randn(LATENT_SHAPE, generator=torch.Generator().manual_seed(1))
        with torch.no_grad():
            embeddings = pipe.text_encoder(token_ids)[0]
            noise_prediction = pipe.unet(latents, TIMESTEP, encoder_hidden_states=embeddings).sample
        return embeddings, noise_prediction

    @staticmethod
    def count_lora_tensors(pipe: StableDiffusionPipeline) -> int:
        """Count the lora_A / lora_B weights in the pipeline's UNet and text encoder."""
        return sum(
            1
            for model in (pipe.unet, pipe.text_encoder)
            for name, _ in model.named_parameters()
            if ".lora_A." in name or ".lora_B." in name
        )


def _lora_config(lora: LoraSpec, target_modules: list[str]) -> LoraConfig:
    return LoraConfig(
        r=lora.rank,
        lora_alpha=lora.alpha,
        lora_dropout=lora.dropout,
        target_modules=target_modules,
        init_lora_weights="gaussian",
    )




@dataclass(frozen=True)
class ExportedRun:
    """A trained pipeline exported in both formats, with the outputs to compare against."""

    lora: LoraSpec
    files: dict[str, Path]
    trained_outputs: tuple[torch.Tensor, torch.Tensor]
    base_outputs: tuple[torch.Tensor, torch.Tensor]
    trained_tensor_count: int
    """lora_A and lora_B weights of the trained UNet and text encoder."""


def export_trained(
    pipelines: TinyPipelines, lora: LoraSpec, metadata: ExportMetadata, out_dir: Path
) -> ExportedRun:
    """Wrap a pipeline with random-weight adapters for `lora`, export it in every format and record the outputs."""
    trained = pipelines.trained(lora)
    files = export_image_lora(
        unet=trained.unet,
        text_encoder=trained.text_encoder,
        lora=lora,
        out_dir=out_dir,
        name="cat-lora",
        formats=list(SUPPORTED_FORMATS),
        metadata=metadata,
    )
    return ExportedRun(
        lora=lora,
        files=files,
        trained_outputs=pipelines.outputs(trained),
        base_outputs=pipelines.outputs(pipelines.base()),
        trained_tensor_count=pipelines.count_lora_tensors(trained),
    )

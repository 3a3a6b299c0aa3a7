"""Mixed precision casts the frozen weights only: LoRA parameters stay fp32; the CPU ignores it."""

from __future__ import annotations

import logging

import pytest
import torch
from diffusers import StableDiffusionPipeline

from lora_operator.api.training_spec import LoraSpec
from lora_trainer.image.models import add_lora_adapters, cast_frozen_weights, select_weight_dtype
from lora_trainer.models.builtin_sd import tiny_sd_path

pytestmark = pytest.mark.trainer


def test_lora_params_stay_fp32() -> None:
    pipeline = StableDiffusionPipeline.from_pretrained(tiny_sd_path(), safety_checker=None)
    pipeline.unet.requires_grad_(False)
    add_lora_adapters(pipeline, lora=LoraSpec(rank=4))
    cast_frozen_weights([pipeline.unet], weight_dtype=torch.bfloat16)

    trainable = {name: p.dtype for name, p in pipeline.unet.named_parameters() if p.requires_grad}
    frozen = {name: p.dtype for name, p in pipeline.unet.named_parameters() if not p.requires_grad}
    assert trainable
    assert all("lora_" in name for name in trainable)
    assert set(trainable.values()) == {torch.float32}
    assert set(frozen.values()) == {torch.bfloat16}


def test_cpu_ignores_mixed_precision(caplog: pytest.LogCaptureFixture) -> None:
    log = logging.getLogger("test.mixed_precision")
    with caplog.at_level(logging.INFO, logger=log.name):
        dtype = select_weight_dtype("bf16", device=torch.device("cpu"), log=log)
    assert dtype == torch.float32
    assert "training.mixedPrecision=bf16 is ignored on cpu" in caplog.text


def test_cuda_uses_requested_dtype() -> None:
    log = logging.getLogger("test.mixed_precision")
    assert select_weight_dtype("fp16", device=torch.device("cuda"), log=log) == torch.float16
    assert select_weight_dtype("no", device=torch.device("cuda"), log=log) == torch.float32

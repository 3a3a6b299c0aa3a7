"""QLoRA: the frozen base model in 4-bit NF4 with bitsandbytes, on NVIDIA GPUs only."""

from __future__ import annotations

import importlib.util
import logging

import torch

from lora_trainer.errors import InvalidInputError


def four_bit_config(quantization: str, *, device: torch.device, compute_dtype: torch.dtype, log: logging.Logger):  # noqa: ANN201
    """Return a BitsAndBytesConfig for text.quantization 4bit, or None for none.

    Raises InvalidInputError before any model is loaded when no CUDA GPU is in use or
    bitsandbytes is not installed, since neither can be fixed by a retry.
    """
    if quantization == "none":
        return None
    if device.type != "cuda":
        raise InvalidInputError(
            f"text.quantization 4bit (QLoRA) needs an NVIDIA GPU with CUDA, and this trainer runs on {device.type}: "
            "set text.quantization to none, or run the training on a GPU node (resources.gpus 1 or more)"
        )
    if importlib.util.find_spec("bitsandbytes") is None:
        raise InvalidInputError(
            "text.quantization 4bit (QLoRA) needs the bitsandbytes package, which is not installed in this trainer: "
            "install bitsandbytes into the trainer image, or set text.quantization to none"
        )
    from transformers import BitsAndBytesConfig

    # NF4 with double quantisation, as in the QLoRA paper (Dettmers et al. 2023); compute runs in
    # bf16 unless training.mixedPrecision picks fp16, since fp32 compute gives up the speed-up.
    dtype = compute_dtype if compute_dtype != torch.float32 else torch.bfloat16
    log.info("loading the base model in 4-bit NF4 (compute dtype %s)", dtype)
    # NOTE: this path has not run in this repository's tests, which have no GPU.
    return BitsAndBytesConfig(
        load_in_4bit=True, bnb_4bit_quant_type="nf4", bnb_4bit_use_double_quant=True, bnb_4bit_compute_dtype=dtype
    )

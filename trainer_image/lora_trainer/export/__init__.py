"""Export of trained image LoRA adapters in the kohya / WebUI and diffusers layouts."""

from lora_trainer.export.exporter import (
    DIFFUSERS_SUBDIR,
    FORMAT_DIFFUSERS,
    FORMAT_KOHYA,
    SUPPORTED_FORMATS,
    export_image_lora,
)
from lora_trainer.export.lora_layers import NonFiniteWeightError
from lora_trainer.export.metadata import ExportMetadata, installed_versions

__all__ = [
    "DIFFUSERS_SUBDIR",
    "FORMAT_DIFFUSERS",
    "FORMAT_KOHYA",
    "SUPPORTED_FORMATS",
    "ExportMetadata",
    "NonFiniteWeightError",
    "export_image_lora",
    "installed_versions",
]

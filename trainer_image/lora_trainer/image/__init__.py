"""The image task: LoRA training of Stable Diffusion 1.x with diffusers and peft."""

from lora_trainer.image.trainer import ImageLoraTrainer, ImageTrainResult

__all__ = ["ImageLoraTrainer", "ImageTrainResult"]

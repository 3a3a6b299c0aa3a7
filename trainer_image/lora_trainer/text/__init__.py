"""The text task: LoRA training of causal language models with transformers and peft."""

from lora_trainer.text.trainer import TextLoraTrainer, TextTrainResult

__all__ = ["TextLoraTrainer", "TextTrainResult"]

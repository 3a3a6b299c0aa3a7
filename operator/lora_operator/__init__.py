"""lora-operator: turns LoRATraining resources into trainer Jobs and mirrors their status."""

__version__ = "0.1.0"

"""API models of lora-operator.io/v1alpha1. Importing them never imports torch."""

from lora_operator.api.base import API_GROUP, API_VERSION
from lora_operator.api.training import LoRATraining, LoRATrainingStatus
from lora_operator.api.training_spec import LoRATrainingSpec
from lora_operator.api.trainer_config import RunIdentity, TrainerConfig

__all__ = [
    "API_GROUP",
    "API_VERSION",
    "LoRATraining",
    "LoRATrainingSpec",
    "LoRATrainingStatus",
    "RunIdentity",
    "TrainerConfig",
]

"""Automatic captions: sidecar captions kept, other images tagged zero-shot by an open_clip model."""

from lora_trainer.captioning.captioner import CaptioningStats, caption_records
from lora_trainer.captioning.vocabulary import default_vocabulary, default_vocabulary_categories

__all__ = ["CaptioningStats", "caption_records", "default_vocabulary", "default_vocabulary_categories"]

"""The captioning stage: sidecar captions kept, the other images tagged by an open_clip model."""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from pathlib import Path

import torch

from lora_operator.api.training_spec import CaptioningSpec
from lora_trainer.captioning.captions import compose_caption, with_trigger_word
from lora_trainer.captioning.clip_loader import load_clip
from lora_trainer.captioning.image_batches import iterate_image_batches
from lora_trainer.captioning.tagging import model_logit_scale, select_tags, tag_probabilities, tag_text_embeddings
from lora_trainer.captioning.vocabulary import resolve_vocabulary
from lora_trainer.data.records import ImageRecord

# Digits kept of each tag probability in the records (and so in the manifest).
PROBABILITY_DIGITS = 4
# Short side of the copy of each image that data preparation writes for captioning. Captioning
# reads the copy for models whose input is at most this size (ViT-B-32 takes 224 pixels).
CAPTION_IMAGE_SIDE = 256


@dataclass
class CaptioningStats:
    """Counts and timings of one captioning stage."""

    captioned: int = 0
    """Images that got generated tags."""
    kept_sidecar: int = 0
    """Images whose sidecar caption was kept."""
    uncaptioned: int = 0
    """Images left without tags because captioning is disabled and they have no sidecar caption."""
    failed: int = 0
    """Images that could not be read for captioning; each record carries a warning."""
    seconds: float = 0.0
    """Wall time of the whole stage, model loading included."""
    tagging_seconds: float = 0.0
    """Wall time of reading, preprocessing, encoding and tagging the images."""
    images_per_second: float | None = None
    """captioned / tagging_seconds; None when no image was tagged."""


def caption_records(
    records: list[ImageRecord],
    spec: CaptioningSpec,
    *,
    device: str = "cpu",
    base_dir: Path | None = None,
    s3_endpoint: str = "",
    s3_secure: bool = True,
    log: logging.Logger | None = None,
    num_workers: int | None = None,
) -> CaptioningStats:
    """Set caption, caption_source and tags on each accepted record, in place.

    A record with a non-blank sidecar caption keeps it unless ``spec.overwrite`` is set. The
    trigger word is put first when a kept caption does not contain it. The other records get
    zero-shot tags from ``spec.model`` (see captioning.tagging). With ``spec.enabled`` false
    no model is loaded, and records without a sidecar get just the trigger word.
    ``num_workers`` sets the DataLoader workers that read images (None picks a default).
    """
    log = log or logging.getLogger(__name__)
    started = time.perf_counter()
    stats = CaptioningStats()
    pending: list[ImageRecord] = []
    for record in records:
        if not record.accepted or record.image_path is None:
            continue
        has_sidecar = record.caption_source == "sidecar" and bool(record.caption.strip())
        if has_sidecar and (not spec.overwrite or not spec.enabled):
            record.caption = with_trigger_word(record.caption, spec.trigger_word)
            stats.kept_sidecar += 1
        elif not spec.enabled:
            _leave_untagged(record, spec.trigger_word)
            stats.uncaptioned += 1
        else:
            pending.append(record)
    if pending:
        _tag_records(pending, spec, stats=stats, device=device, base_dir=base_dir,
                     s3_endpoint=s3_endpoint, s3_secure=s3_secure, log=log, num_workers=num_workers)
    stats.seconds = time.perf_counter() - started
    log.info(
        "captioning: %d tagged, %d sidecar captions kept, %d untagged, %d failed in %.1f s (%s images/s)",
        stats.captioned, stats.kept_sidecar, stats.uncaptioned, stats.failed, stats.seconds,
        f"{stats.images_per_second:.1f}" if stats.images_per_second is not None else "-",
    )
    return stats


def _tag_records(
    pending: list[ImageRecord],
    spec: CaptioningSpec,
    *,
    stats: CaptioningStats,
    device: str,
    base_dir: Path | None,
    s3_endpoint: str,
    s3_secure: bool,
    log: logging.Logger,
    num_workers: int | None,
) -> None:
    vocabulary = resolve_vocabulary(spec.vocabulary, trigger_word=spec.trigger_word)
    log.info("captioning %d images with %s and %d candidate tags", len(pending), spec.model, len(vocabulary))
    clip = load_clip(spec.model, device=device, base_dir=base_dir, s3_endpoint=s3_endpoint, s3_secure=s3_secure)
    text_embeddings = tag_text_embeddings(clip.model, clip.tokenizer, vocabulary, model_key=clip.key, device=device)
    logit_scale = model_logit_scale(clip.model)

    input_side = model_input_side(clip.model)
    tagging_started = time.perf_counter()
    batches = iterate_image_batches(
        [caption_input_path(record, input_side) for record in pending], clip.preprocess, batch_size=spec.batch_size,
        num_workers=num_workers, device=device,
    )
    for batch in batches:
        for position, message in batch.failures:
            _record_failure(pending[position], message, trigger_word=spec.trigger_word, log=log)
            stats.failed += 1
        if batch.pixels is None:
            continue
        with torch.inference_mode():
            image_embeddings = clip.model.encode_image(batch.pixels.to(device, non_blocking=True), normalize=True)
        probabilities = tag_probabilities(image_embeddings, text_embeddings, logit_scale=logit_scale)
        selections = select_tags(probabilities, vocabulary, top_k=spec.top_k, threshold=spec.threshold)
        for position, tags in zip(batch.positions, selections):
            record = pending[position]
            record.tags = [(tag, round(probability, PROBABILITY_DIGITS)) for tag, probability in tags]
            record.caption = compose_caption([tag for tag, _ in tags], trigger_word=spec.trigger_word)
            record.caption_source = "generated"
            stats.captioned += 1
    stats.tagging_seconds = time.perf_counter() - tagging_started
    if stats.captioned:
        stats.images_per_second = stats.captioned / stats.tagging_seconds


def model_input_side(model: torch.nn.Module) -> int | None:
    """Return the larger side in pixels of the images the open_clip model encodes, or None when unknown."""
    size = getattr(getattr(model, "visual", None), "image_size", None)
    if isinstance(size, int):
        return size
    if isinstance(size, (tuple, list)) and size:
        return max(size)
    return None


def caption_input_path(record: ImageRecord, input_side: int | None) -> Path:
    """Return the captioning copy of the record's image when it is large enough for the model, else the image."""
    fits = input_side is not None and input_side <= CAPTION_IMAGE_SIDE
    return record.caption_image_path if fits and record.caption_image_path is not None else record.image_path


def _leave_untagged(record: ImageRecord, trigger_word: str) -> None:
    record.tags = []
    record.caption = compose_caption([], trigger_word=trigger_word)
    record.caption_source = "none"


def _record_failure(record: ImageRecord, message: str, *, trigger_word: str, log: logging.Logger) -> None:
    """Keep a sidecar caption that was to be overwritten; otherwise leave the record with the trigger word only."""
    log.warning("captioning: %s: %s", record.name, message)
    record.warnings.append(message)
    if record.caption_source == "sidecar" and record.caption.strip():
        record.caption = with_trigger_word(record.caption, trigger_word)
    else:
        _leave_untagged(record, trigger_word)

"""Training samples: the accepted records, their cached encodings, and batch assembly."""

from __future__ import annotations

import hashlib
import logging

import torch

from lora_trainer.data.records import ImageRecord
from lora_trainer.errors import InvalidInputError
from lora_trainer.image.encoding import encode_posterior, encode_text, load_pixels, sample_latents, tokenize
from lora_trainer.image.latent_cache import EncodingCache, pixel_sha256
from lora_trainer.image.models import TrainingModels

VAE_SCALE = 8


def validate_records(records: list[ImageRecord]) -> tuple[list[ImageRecord], list[str]]:
    """Return the accepted records and the pixel sha256 of each prepared image, sorted by that sha256.

    The order depends only on the image contents, like the dataset fingerprint, so sample
    ids in a checkpoint mean the same images to every attempt. Raises InvalidInputError
    when a record cannot be trained on.
    """
    accepted = [record for record in records if record.accepted]
    if not accepted:
        raise InvalidInputError("the dataset has no accepted images to train on: add images or check the skip reasons in the manifest")
    for record in accepted:
        if record.image_path is None or record.bucket is None:
            raise InvalidInputError(f"record {record.name!r} is accepted but has no prepared image or bucket")
        width, height = record.bucket
        if width % VAE_SCALE or height % VAE_SCALE:
            raise InvalidInputError(
                f"record {record.name!r} has bucket {width}x{height}; SD buckets must be multiples of {VAE_SCALE} pixels"
            )
    pairs = sorted(((pixel_sha256(record.image_path), record) for record in accepted), key=lambda pair: (pair[0], pair[1].name))
    return [record for _, record in pairs], [sha for sha, _ in pairs]


def dataset_fingerprint(records: list[ImageRecord], image_sha256: list[str]) -> str:
    """Return a sha256 over the prepared images, captions and buckets, independent of record order."""
    digest = hashlib.sha256()
    entries = sorted(
        f"{sha}\t{record.bucket[0]}x{record.bucket[1]}\t{record.caption}"
        for sha, record in zip(image_sha256, records, strict=True)
    )
    for entry in entries:
        digest.update(entry.encode("utf-8") + b"\n")
    return digest.hexdigest()


class TrainingData:
    """Samples (records repeated ``repeats`` times) and the tensors a training batch needs.

    With ``cached`` true, VAE posteriors and (for a frozen text encoder) caption embeddings
    are computed once and kept on ``device``: a batch is then only stacked and sampled.
    With ``cached`` false, every batch reads its PNGs and runs the VAE and text encoder.
    """

    def __init__(
        self,
        *,
        records: list[ImageRecord],
        image_sha256: list[str],
        models: TrainingModels,
        repeats: int,
        cached: bool,
        device: torch.device,
    ) -> None:
        self.records = records
        self.image_sha256 = image_sha256
        self.models = models
        self.device = device
        self.cached = cached
        self.repeats = repeats
        self.token_ids = tokenize(models.pipeline.tokenizer, [record.caption for record in records])
        self.latent_mean: list[torch.Tensor] = []
        self.latent_std: list[torch.Tensor] = []
        self.text_embeddings: list[torch.Tensor] = []

    @property
    def sample_buckets(self) -> list[tuple[int, int]]:
        return [tuple(self.records[i % len(self.records)].bucket) for i in range(len(self.records) * self.repeats)]

    def latents(self, sample_ids: list[int], *, generator: torch.Generator) -> torch.Tensor:
        """Return scaled latents (N, 4, H/8, W/8) for one batch, drawn from the posterior with ``generator``."""
        indexes = [sample_id % len(self.records) for sample_id in sample_ids]
        if self.cached:
            mean = torch.stack([self.latent_mean[i] for i in indexes])
            std = torch.stack([self.latent_std[i] for i in indexes])
        else:
            records = [self.records[i] for i in indexes]
            pixels = torch.stack([load_pixels(record.image_path, bucket=record.bucket) for record in records])
            mean, std = encode_posterior(self.models.vae, pixels.to(self.device))
        scaling_factor = self.models.vae.config.scaling_factor
        return sample_latents(mean, std, scaling_factor=scaling_factor, generator=generator)

    def text_embeddings_for(self, sample_ids: list[int]) -> torch.Tensor:
        """Return the caption embeddings (N, tokens, hidden) for one batch."""
        indexes = [sample_id % len(self.records) for sample_id in sample_ids]
        if self.text_embeddings:
            return torch.stack([self.text_embeddings[i] for i in indexes])
        input_ids = self.token_ids[indexes].to(self.device)
        if self.models.train_text_encoder:
            return encode_text(self.models.text_encoder, input_ids)
        with torch.no_grad():
            return encode_text(self.models.text_encoder, input_ids)

    def encode_all(self, cache: EncodingCache, *, log: logging.Logger) -> None:
        """Fill the in-memory tensors from ``cache``, encoding what it does not have yet."""
        for record, sha in zip(self.records, self.image_sha256, strict=True):
            mean, std = cache.posterior(image_path=record.image_path, image_sha256=sha, bucket=tuple(record.bucket))
            self.latent_mean.append(mean.to(self.device))
            self.latent_std.append(std.to(self.device))
        if not self.models.train_text_encoder:
            for record in self.records:
                self.text_embeddings.append(cache.text_embedding(record.caption).to(self.device))
        log.info(
            "encoding cache: %d entries reused, %d encoded (%d images, text embeddings %s)",
            cache.hits, cache.misses, len(self.records),
            "per step: the text encoder trains" if self.models.train_text_encoder else "cached",
        )

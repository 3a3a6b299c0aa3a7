"""On-disk cache of VAE posteriors and caption embeddings, so each is computed once per machine.

Entries are keyed by the sha256 of the prepared image's pixels (or of the caption), its
bucket, and a model key that covers the base model and the dtype of the frozen weights. A resumed
attempt with the same work_dir therefore skips encoding altogether. Each image and each
caption is encoded alone, so an entry does not depend on which other entries were
already cached (batching can change the last bits of a convolution's output).
"""

from __future__ import annotations

import hashlib
import logging
import os
from pathlib import Path

import torch
from PIL import Image
from safetensors.torch import load_file, save_file

from lora_trainer.image.encoding import encode_posterior, encode_text, load_pixels, tokenize
from lora_trainer.image.models import TrainingModels

CACHE_FOLDER = "latent-cache"


def model_cache_key(*, base_model: str, revision: str, model_path: Path, weight_dtype: torch.dtype) -> str:
    """Return a short key for the encoders: base model URI, revision, local path and frozen dtype."""
    text = "\n".join([base_model, revision, str(model_path), str(weight_dtype)])
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:20]


def pixel_sha256(path: Path) -> str:
    """Return the sha256 of an image's size and RGB pixels.

    File bytes would not do: PNG chunks such as an ICC profile with its creation time
    change between two preparations of the same image, while the pixels that training
    reads stay the same.
    """
    with Image.open(path) as image:
        rgb = image.convert("RGB")
    digest = hashlib.sha256(f"{rgb.width}x{rgb.height}\n".encode("ascii"))
    digest.update(rgb.tobytes())
    return digest.hexdigest()


class EncodingCache:
    """Encoder of images and captions with the frozen VAE and text encoder, backed by the disk cache."""

    def __init__(self, *, models: TrainingModels, folder: Path, log: logging.Logger) -> None:
        self.models = models
        self.folder = folder
        self.log = log
        self.folder.mkdir(parents=True, exist_ok=True)
        self.hits = 0
        self.misses = 0

    def posterior(self, *, image_path: Path, image_sha256: str, bucket: tuple[int, int]) -> tuple[torch.Tensor, torch.Tensor]:
        """Return the (mean, std) of one image's VAE posterior, shape (4, H/8, W/8), fp32, unscaled."""
        path = self.folder / f"latents-{image_sha256}-{bucket[0]}x{bucket[1]}.safetensors"
        cached = self._read(path)
        if cached is not None:
            return cached["mean"], cached["std"]
        pixels = load_pixels(image_path, bucket=bucket).unsqueeze(0)
        mean, std = encode_posterior(self.models.vae, pixels)
        self._write(path, {"mean": mean[0], "std": std[0]})
        return mean[0].cpu(), std[0].cpu()

    def text_embedding(self, caption: str) -> torch.Tensor:
        """Return the (tokens, hidden) embedding of one caption from the frozen text encoder."""
        digest = hashlib.sha256(caption.encode("utf-8")).hexdigest()
        path = self.folder / f"text-{digest}.safetensors"
        cached = self._read(path)
        if cached is not None:
            return cached["embedding"]
        input_ids = tokenize(self.models.pipeline.tokenizer, [caption])
        with torch.no_grad():
            embedding = encode_text(self.models.text_encoder, input_ids)[0]
        self._write(path, {"embedding": embedding})
        return embedding.cpu()

    def _read(self, path: Path) -> dict[str, torch.Tensor] | None:
        if not path.is_file():
            self.misses += 1
            return None
        try:
            tensors = load_file(path)
        except (OSError, ValueError, RuntimeError) as error:
            # A damaged entry (for example a full disk) costs one encode, not the run.
            self.log.warning("ignoring damaged cache entry %s: %s", path, error)
            self.misses += 1
            return None
        self.hits += 1
        return tensors

    def _write(self, path: Path, tensors: dict[str, torch.Tensor]) -> None:
        temporary = path.with_name(f".{path.name}.{os.getpid()}.partial")
        save_file({name: tensor.detach().cpu().contiguous() for name, tensor in tensors.items()}, temporary)
        os.replace(temporary, path)

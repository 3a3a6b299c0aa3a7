"""Batches of preprocessed images, read and preprocessed in DataLoader workers while the model encodes."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import torch
from PIL import Image, UnidentifiedImageError
from torch.utils.data import DataLoader, Dataset

# Batches that each worker prepares ahead of the one being encoded.
PREFETCH_BATCHES = 2


@dataclass
class ImageBatch:
    """Preprocessed images of one batch, and the images of that batch that could not be read."""

    positions: list[int]
    """Index of each row of ``pixels`` in the list of paths."""
    pixels: torch.Tensor | None
    failures: list[tuple[int, str]]
    """(index in the list of paths, error message) for each image that could not be read."""

    def pin_memory(self) -> ImageBatch:
        """Return the batch with its pixels in page-locked memory; DataLoader calls this when pin_memory is set."""
        pixels = self.pixels.pin_memory() if self.pixels is not None else None
        return ImageBatch(positions=self.positions, pixels=pixels, failures=self.failures)


class _PreprocessedImages(Dataset):
    def __init__(self, paths: list[Path], preprocess: Callable) -> None:
        self.paths = paths
        self.preprocess = preprocess

    def __len__(self) -> int:
        return len(self.paths)

    def __getitem__(self, index: int) -> tuple[int, torch.Tensor | None, str]:
        path = self.paths[index]
        try:
            with Image.open(path) as image:
                pixels = self.preprocess(image.convert("RGB"))
        except (OSError, UnidentifiedImageError, ValueError) as error:
            return index, None, f"failed to read {path.name} for captioning: {error}"
        return index, pixels, ""


def _collate(items: list[tuple[int, torch.Tensor | None, str]]) -> ImageBatch:
    loaded = [(index, pixels) for index, pixels, _ in items if pixels is not None]
    failures = [(index, message) for index, pixels, message in items if pixels is None]
    pixels = torch.stack([tensor for _, tensor in loaded]) if loaded else None
    return ImageBatch(positions=[index for index, _ in loaded], pixels=pixels, failures=failures)


def _limit_worker_threads(_worker_id: int) -> None:
    # Each worker decodes one image at a time; more intra-op threads would only compete with the encoder.
    torch.set_num_threads(1)


def default_worker_count(device: str) -> int:
    """Return the DataLoader workers to use: none on the CPU, else half the CPUs, at least 1 and at most 4.

    On the CPU the encoder already runs on every core, so a worker process only takes cores
    from it. The bench_captioning benchmark measured 0.93x of the bare encoder with no worker
    and 0.82x with one (ViT-B-32, 2 cores).
    """
    if not device.startswith("cuda"):
        return 0
    return max(1, min(4, (os.cpu_count() or 2) // 2))


def iterate_image_batches(
    paths: list[Path],
    preprocess: Callable,
    *,
    batch_size: int,
    num_workers: int | None = None,
    device: str = "cpu",
) -> Iterator[ImageBatch]:
    """Yield the images at ``paths`` preprocessed, in order, ``batch_size`` at a time.

    Worker processes (by default only when ``device`` is a GPU) read and preprocess the next
    batches while the caller encodes the current one. A single batch is always read in this
    process, because starting workers would cost more than it saves. Batches are pinned for
    a CUDA ``device``.
    """
    workers = default_worker_count(device) if num_workers is None else num_workers
    if len(paths) <= batch_size:
        workers = 0
    loader = DataLoader(
        _PreprocessedImages(paths, preprocess),
        batch_size=batch_size,
        shuffle=False,
        num_workers=workers,
        collate_fn=_collate,
        pin_memory=device.startswith("cuda"),
        worker_init_fn=_limit_worker_threads if workers else None,
        prefetch_factor=PREFETCH_BATCHES if workers else None,
    )
    yield from loader

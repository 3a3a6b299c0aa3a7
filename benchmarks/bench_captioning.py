"""Images per second of the captioning stage against a bare batched encode_image (the floor).

The stage covers reading the images, preprocessing, encoding and tagging (caption_records'
tagging_seconds; model loading is excluded). As in a run, it reads the smaller captioning
copies that data preparation writes, unless --no-caption-copies makes it read the PNGs. The floor encodes the same images, preprocessed
in memory beforehand, in batches of the same size. A ratio near 1 means reading and
preprocessing are hidden behind encoding.

    python benchmarks/bench_captioning.py [--photos DIR] [--count 128] [--batch-size 32]
        [--resolution 512] [--rounds 3] [--workers 0 1 2] [--device cpu] [--arch ViT-B-32]
        [--no-caption-copies]

Inputs are the sample photos that the tests use (tests/datasets.py), converted to RGB PNGs
with a short side of --resolution pixels and repeated up to --count files, as the data
preparation stage writes them. The model is builtin://tiny-clip, or with --arch a randomly
initialised open_clip architecture saved as a checkpoint folder (no download), whose
encoder costs like the pretrained model of that architecture.
"""

from __future__ import annotations

import argparse
import logging
import os
import platform
import shlex
import statistics
import sys
import tempfile
import time
from pathlib import Path

import torch
from PIL import Image

from lora_operator.api.training_spec import CaptioningSpec
from lora_trainer.captioning import caption_records
from lora_trainer.captioning.captioner import CAPTION_IMAGE_SIDE
from lora_trainer.captioning.clip_loader import load_clip
from lora_trainer.captioning.image_batches import default_worker_count
from lora_trainer.data.images import write_caption_image
from lora_trainer.data.records import ImageRecord

REPO_ROOT = Path(__file__).resolve().parents[1]
IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".webp"}


def default_photos_dir() -> Path:
    sys.path.insert(0, str(REPO_ROOT))
    from tests.datasets import PHOTOS_DIR

    return PHOTOS_DIR


def prepare_pngs(photos: Path, folder: Path, *, count: int, resolution: int) -> list[Path]:
    """Write ``count`` RGB PNGs with a short side of ``resolution`` pixels, cycling through the photos.

    Each PNG gets the captioning copy that data preparation writes, as NAME.caption.ppm.
    """
    sources = sorted(path for path in photos.iterdir() if path.suffix.lower() in IMAGE_SUFFIXES)
    paths = []
    for index in range(count):
        with Image.open(sources[index % len(sources)]) as image:
            rgb = image.convert("RGB")
        scale = resolution / min(rgb.size)
        resized = rgb.resize((round(rgb.width * scale), round(rgb.height * scale)), Image.Resampling.LANCZOS)
        path = folder / f"image-{index:04d}.png"
        resized.save(path)
        if min(resized.size) > CAPTION_IMAGE_SIDE:
            write_caption_image(resized, caption_copy(path), side=CAPTION_IMAGE_SIDE)
        paths.append(path)
    return paths


def caption_copy(path: Path) -> Path:
    return path.with_suffix(".caption.ppm")


def random_arch_uri(arch: str, folder: Path) -> str:
    """Save ``arch`` with random weights as an open_clip checkpoint folder and return its file:// URI."""
    import open_clip

    from lora_trainer.models.builtin_clip import TINY_CLIP_PREPROCESS_CONFIG, save_open_clip_checkpoint

    model = open_clip.create_model(arch, pretrained=None)
    save_open_clip_checkpoint(
        model, folder, model_config=open_clip.get_model_config(arch), preprocess_config=TINY_CLIP_PREPROCESS_CONFIG
    )
    return folder.as_uri()


def stage_rate(
    paths: list[Path], spec: CaptioningSpec, *, workers: int | None, device: str, caption_copies: bool
) -> float:
    """Return the images per second of caption_records' tagging in one run."""
    quiet = logging.getLogger("bench_captioning.quiet")
    quiet.setLevel(logging.ERROR)
    records = []
    for path in paths:
        copy = caption_copy(path) if caption_copies and caption_copy(path).is_file() else None
        records.append(ImageRecord(name=path.name, source_uri=path.as_uri(), image_path=path, caption_image_path=copy))
    stats = caption_records(records, spec, device=device, num_workers=workers, log=quiet)
    return stats.images_per_second


class Floor:
    """Batched encode_image on tensors preprocessed and moved to the device beforehand."""

    def __init__(self, paths: list[Path], spec: CaptioningSpec, *, device: str) -> None:
        self.clip = load_clip(spec.model, device=device)
        self.device = device
        self.count = len(paths)
        self.batches = []
        for start in range(0, len(paths), spec.batch_size):
            tensors = []
            for path in paths[start:start + spec.batch_size]:
                with Image.open(path) as image:
                    tensors.append(self.clip.preprocess(image.convert("RGB")))
            self.batches.append(torch.stack(tensors).to(device))
        self.rate()  # warm-up

    def rate(self) -> float:
        """Return the images per second of one pass over all batches."""
        with torch.inference_mode():
            started = time.perf_counter()
            for batch in self.batches:
                self.clip.model.encode_image(batch, normalize=True)
            if self.device.startswith("cuda"):
                torch.cuda.synchronize()
            return self.count / (time.perf_counter() - started)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--photos", type=Path, default=None, help="Folder of source images (default: the sample photos).")
    parser.add_argument("--count", type=int, default=128, help="Images per captioning run (default 128).")
    parser.add_argument("--batch-size", type=int, default=32, help="Images encoded per batch (default 32).")
    parser.add_argument("--resolution", type=int, default=512, help="Short side of the prepared PNGs in pixels (default 512).")
    parser.add_argument("--rounds", type=int, default=3, help="Runs per configuration; the median is reported (default 3).")
    parser.add_argument("--workers", type=int, nargs="+", default=None,
                        help="DataLoader worker counts to compare (default: 0 and the captioning default).")
    parser.add_argument("--device", default="cpu", help="Torch device for both measurements (default cpu).")
    parser.add_argument("--arch", default="", help="Random-weight open_clip architecture instead of builtin://tiny-clip.")
    parser.add_argument("--no-caption-copies", action="store_true",
                        help="Read the prepared PNGs instead of the smaller captioning copies.")
    arguments = parser.parse_args()

    photos = (arguments.photos or default_photos_dir()).resolve()
    print(f"command: {shlex.join([Path(sys.executable).name, *sys.argv])}")
    print(f"machine: {platform.machine()}, {os.cpu_count()} CPUs, {torch.get_num_threads()} torch threads, "
          f"Python {platform.python_version()}, torch {torch.__version__}, {platform.system()}, device {arguments.device}")
    print(f"load average (1, 5, 15 min) at the start: {', '.join(f'{value:.1f}' for value in os.getloadavg())}")
    with tempfile.TemporaryDirectory(prefix="bench-captioning-") as scratch:
        folder = Path(scratch)
        (folder / "images").mkdir()
        paths = prepare_pngs(photos, folder / "images", count=arguments.count, resolution=arguments.resolution)
        model = random_arch_uri(arguments.arch, folder / "model") if arguments.arch else "builtin://tiny-clip"
        spec = CaptioningSpec(model=model, batch_size=arguments.batch_size)
        print(f"model: {arguments.arch + ' (random weights)' if arguments.arch else model}, {len(paths)} PNGs "
              f"with a {arguments.resolution}-px short side, batch {arguments.batch_size}, "
              f"median of {arguments.rounds} rounds, reading the "
              f"{'PNGs' if arguments.no_caption_copies else 'captioning copies'}")

        worker_counts = arguments.workers or sorted({0, default_worker_count(arguments.device)})
        floor = Floor(paths, spec, device=arguments.device)
        floor_rates: list[float] = []
        stage_rates: dict[int, list[float]] = {workers: [] for workers in worker_counts}
        # Rounds alternate floor and stage, so a change in machine load affects both alike.
        for _ in range(arguments.rounds):
            floor_rates.append(floor.rate())
            for workers in worker_counts:
                stage_rates[workers].append(stage_rate(
                    paths, spec, workers=workers, device=arguments.device, caption_copies=not arguments.no_caption_copies
                ))

        floor_median = statistics.median(floor_rates)
        print(f"floor (encode_image on preprocessed tensors): {floor_median:8.1f} images/s")
        for workers, rates in stage_rates.items():
            rate = statistics.median(rates)
            print(f"stage, {workers} worker(s): {rate:8.1f} images/s, {rate / floor_median:.2f}x of the floor")
    print(f"load average (1, 5, 15 min) at the end: {', '.join(f'{value:.1f}' for value in os.getloadavg())}")


if __name__ == "__main__":
    main()

"""Seconds per optimiser step of the image trainer against a bare training loop, on the CPU.

Three variants train the same LoRA (tiny-sd, rank 8, 64 px, batch 4), each in its own
process so that each peak RSS is its own:

- floor: forward, backward and AdamW of the LoRA-wrapped UNet on latents and text
  embeddings computed before the loop; nothing else.
- cached: ImageLoraTrainer with training.cacheLatents true.
- uncached: ImageLoraTrainer with training.cacheLatents false (PNG decode, VAE and text
  encoder at every step).

A step's time is the interval between two progress reports (trainer) or one loop
iteration (floor). Each process reports the median after its warm-up steps, and the
fastest of ``--repeats`` processes counts, which filters out load from other programs.

Run from the repository root:
    .venv/bin/python benchmarks/bench_train_step.py [--steps 40] [--warmup 5] [--threads 1]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

REPO_ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO_ROOT))

BATCH_SIZE = 4
RESOLUTION = 64
IMAGES = 8
LORA = {"rank": 8, "alpha": 8, "dropout": 0.1}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=40, help="measured optimiser steps per variant")
    parser.add_argument("--warmup", type=int, default=5, help="optimiser steps left out of the median")
    parser.add_argument("--threads", type=int, default=1, help="torch CPU threads (the trainer's resources.cpu)")
    parser.add_argument("--repeats", type=int, default=5, help="processes per variant, run in turn; the fastest counts")
    parser.add_argument("--variant", choices=["floor", "cached", "uncached"], help=argparse.SUPPRESS)
    arguments = parser.parse_args()
    if arguments.variant:
        print(json.dumps(measure(arguments.variant, steps=arguments.steps, warmup=arguments.warmup, threads=arguments.threads)))
        return 0

    # Variants take turns, so a burst of load from other processes hits all of them alike.
    runs: dict[str, list[dict[str, Any]]] = {"floor": [], "cached": [], "uncached": []}
    for _ in range(arguments.repeats):
        for variant, figures in runs.items():
            command = [sys.executable, __file__, "--variant", variant, "--steps", str(arguments.steps),
                       "--warmup", str(arguments.warmup), "--threads", str(arguments.threads)]
            completed = subprocess.run(command, capture_output=True, text=True, check=True, cwd=REPO_ROOT)
            figures.append(json.loads(completed.stdout.strip().splitlines()[-1]))
    results = {variant: min(figures, key=lambda f: f["secondsPerStep"]) for variant, figures in runs.items()}
    report(results, arguments)
    return 0


def measure(variant: str, *, steps: int, warmup: int, threads: int) -> dict[str, Any]:
    import torch

    torch.set_num_threads(threads)
    with tempfile.TemporaryDirectory(prefix="bench-train-step-") as folder:
        step_seconds = floor_steps(Path(folder), steps + warmup) if variant == "floor" else trainer_steps(
            Path(folder), steps + warmup, cache_latents=variant == "cached", threads=threads
        )
    measured = step_seconds[warmup:]
    median = statistics.median(measured)
    return {
        "secondsPerStep": median,
        "samplesPerSecond": BATCH_SIZE / median,
        "peakRssMiB": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
        "threads": torch.get_num_threads(),
    }


def build_records(folder: Path) -> list:
    from PIL import Image

    from lora_trainer.data.records import ImageRecord
    from tests.datasets import PHOTOS_DIR

    photos = sorted(path for path in PHOTOS_DIR.iterdir() if path.suffix.lower() in {".png", ".jpg"})[:IMAGES]
    records = []
    for photo in photos:
        path = folder / f"{photo.stem}.png"
        with Image.open(photo) as image:
            image.convert("RGB").resize((RESOLUTION, RESOLUTION)).save(path)
        records.append(ImageRecord(name=photo.name, source_uri=photo.as_uri(), bucket=(RESOLUTION, RESOLUTION),
                                   image_path=path, caption=f"zwx, a photo of {photo.stem}"))
    return records


def trainer_steps(folder: Path, steps: int, *, cache_latents: bool, threads: int) -> list[float]:
    import torch

    from lora_operator.api.trainer_config import OutputLocation, RunIdentity, TrainerConfig
    from lora_operator.api.training_spec import LoRATrainingSpec
    from lora_trainer.image import ImageLoraTrainer
    from lora_trainer.progress import ProgressReporter
    from lora_trainer.storage import LocalStore

    class StepClock(ProgressReporter):
        def __init__(self, store: LocalStore) -> None:
            super().__init__(store, attempt=1)
            self.stamps: list[float] = []

        def update(self, *, force: bool = False, **fields: Any) -> None:
            if fields.get("phase") == "training" and "step" in fields:
                self.stamps.append(time.perf_counter())
            super().update(force=force, **fields)

    spec = LoRATrainingSpec.model_validate({
        "baseModel": "builtin://tiny-sd",
        "dataset": {"sources": [{"uri": "file:///bench"}], "resolution": RESOLUTION},
        "lora": LORA,
        "training": {"maxSteps": steps + 1, "batchSize": BATCH_SIZE, "cacheLatents": cache_latents,
                     "checkpointEvery": 1_000_000, "learningRate": 1e-4},
        "previews": {"count": 0},
        "resources": {"cpu": str(threads)},
    })
    config = TrainerConfig(run=RunIdentity(name="bench", uid="bench"),
                           output=OutputLocation(uri=(folder / "run").as_uri()), spec=spec)
    store = LocalStore(folder / "run")
    clock = StepClock(store)
    trainer = ImageLoraTrainer(config=config, records=build_records(folder), store=store, progress=clock,
                               work_dir=folder / "work", device=torch.device("cpu"), stop_event=threading.Event())
    trainer.run()
    return [later - earlier for earlier, later in zip(clock.stamps, clock.stamps[1:])]


def floor_steps(folder: Path, steps: int) -> list[float]:
    import torch
    import torch.nn.functional as F
    from diffusers import StableDiffusionPipeline
    from peft import LoraConfig

    from lora_trainer.models.builtin_sd import tiny_sd_path

    pipeline = StableDiffusionPipeline.from_pretrained(tiny_sd_path(), safety_checker=None)
    unet = pipeline.unet
    unet.requires_grad_(False)
    unet.add_adapter(LoraConfig(r=LORA["rank"], lora_alpha=LORA["alpha"], lora_dropout=LORA["dropout"],
                                target_modules=["to_q", "to_k", "to_v", "to_out.0"], init_lora_weights="gaussian"))
    unet.train()

    # Real inputs, encoded once: the first batch's VAE latents and caption embeddings, noised at fixed timesteps.
    from lora_trainer.image.encoding import encode_text, load_pixels, tokenize

    records = build_records(folder)[:BATCH_SIZE]
    pixels = torch.stack([load_pixels(record.image_path, bucket=record.bucket) for record in records])
    generator = torch.Generator().manual_seed(0)
    with torch.no_grad():
        clean = pipeline.vae.encode(pixels).latent_dist.mean * pipeline.vae.config.scaling_factor
        embeddings = encode_text(pipeline.text_encoder, tokenize(pipeline.tokenizer, [r.caption for r in records]))
    noise = torch.randn(clean.shape, generator=generator)
    timesteps = torch.randint(0, 1000, (BATCH_SIZE,), generator=generator)
    latents = pipeline.scheduler.add_noise(clean, noise, timesteps)
    optimizer = torch.optim.AdamW([p for p in unet.parameters() if p.requires_grad], lr=1e-4)

    seconds = []
    for _ in range(steps):
        started = time.perf_counter()
        prediction = unet(latents, timesteps, embeddings, return_dict=False)[0]
        F.mse_loss(prediction, noise).backward()
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        seconds.append(time.perf_counter() - started)
    return seconds


def report(results: dict[str, dict[str, Any]], arguments: argparse.Namespace) -> None:
    import torch

    floor = results["floor"]["secondsPerStep"]
    print(f"command: {' '.join([Path(sys.executable).name, *sys.argv])}")
    print(f"machine: {cpu_model()}, {os.cpu_count()} CPUs, {platform.system()} {platform.release()}, "
          f"torch {torch.__version__}, load average {os.getloadavg()[0]:.1f}")
    print(f"setup: tiny-sd, LoRA rank {LORA['rank']}, {RESOLUTION} px, batch {BATCH_SIZE}, "
          f"{arguments.threads} thread(s), median of {arguments.steps} steps after {arguments.warmup} warm-up steps, "
          f"best of {arguments.repeats} processes")
    print(f"{'variant':<10} {'s/step':>9} {'x floor':>8} {'samples/s':>10} {'peak RSS MiB':>13}")
    for variant, figures in results.items():
        print(f"{variant:<10} {figures['secondsPerStep']:>9.4f} {figures['secondsPerStep'] / floor:>8.2f} "
              f"{figures['samplesPerSecond']:>10.1f} {figures['peakRssMiB']:>13.0f}")


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text(encoding="utf-8").splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown CPU"


if __name__ == "__main__":
    sys.exit(main())

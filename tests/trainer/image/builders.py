"""Records, configs and trainers for the image trainer tests: tiny-sd, 64-pixel photos, one CPU thread."""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

import torch
from PIL import Image

from lora_operator.api.trainer_config import OutputLocation, RunIdentity, TrainerConfig
from lora_operator.api.training_spec import LoRATrainingSpec
from lora_trainer.checkpoint import CheckpointStore
from lora_trainer.data.records import ImageRecord
from lora_trainer.image import ImageLoraTrainer
from lora_trainer.progress import ProgressReporter
from lora_trainer.storage import ArtifactStore, LocalStore

from tests.datasets import PHOTOS_DIR

PHOTO_NAMES = ("astronaut.png", "chelsea.png", "coffee.png", "rocket.jpg", "horse.png")
TALL_BUCKET = (64, 128)
SQUARE_BUCKET = (64, 64)

# 5 records at batch size 2: one tall batch and two square ones, so an epoch has 3 batches.
DEFAULT_TRAINING: dict[str, Any] = {
    "maxSteps": 8,
    "batchSize": 2,
    "learningRate": 1e-3,
    "checkpointEvery": 100,
    "keepCheckpoints": 20,
    "seed": 7,
}
DEFAULT_LORA: dict[str, Any] = {"rank": 4, "alpha": 4, "dropout": 0.1}
NO_PREVIEWS: dict[str, Any] = {"count": 0}


def build_records(folder: Path) -> list[ImageRecord]:
    """Resize a few photos to their buckets (the first one tall, the rest square) as prepared PNGs."""
    folder.mkdir(parents=True, exist_ok=True)
    records = []
    for index, name in enumerate(PHOTO_NAMES):
        bucket = TALL_BUCKET if index == 0 else SQUARE_BUCKET
        path = folder / f"{Path(name).stem}.png"
        with Image.open(PHOTOS_DIR / name) as image:
            image.convert("RGB").resize(bucket, Image.Resampling.BICUBIC).save(path)
        records.append(
            ImageRecord(
                name=name, source_uri=f"file:///photos/{name}", bucket=bucket, image_path=path,
                caption=f"zwx, a photo of {Path(name).stem}", caption_source="sidecar",
            )
        )
    return records


def make_config(
    run_dir: Path,
    *,
    training: dict[str, Any] | None = None,
    lora: dict[str, Any] | None = None,
    previews: dict[str, Any] | None = None,
) -> TrainerConfig:
    spec = LoRATrainingSpec.model_validate(
        {
            "baseModel": "builtin://tiny-sd",
            "dataset": {"sources": [{"uri": "file:///photos"}], "resolution": 64},
            "captioning": {"triggerWord": "zwx"},
            "lora": {**DEFAULT_LORA, **(lora or {})},
            "training": {**DEFAULT_TRAINING, **(training or {})},
            "previews": {**NO_PREVIEWS, **(previews or {})} if previews is not None else NO_PREVIEWS,
            "resources": {"cpu": "1"},
        }
    )
    return TrainerConfig(
        run=RunIdentity(name="tiny", uid="uid-1"),
        output=OutputLocation(uri=run_dir.resolve().as_uri()),
        spec=spec,
    )


class StopAtStep(ProgressReporter):
    """A progress reporter that sets ``stop_event`` once training reports step ``stop_at``."""

    def __init__(self, store: ArtifactStore, *, stop_at: int, stop_event: threading.Event) -> None:
        super().__init__(store, attempt=1, interval_seconds=0.0)
        self.stop_at = stop_at
        self.stop_event = stop_event

    def update(self, *, force: bool = False, **fields: Any) -> None:
        super().update(force=force, **fields)
        if fields.get("phase") == "training" and fields.get("step") == self.stop_at:
            self.stop_event.set()


def make_trainer(
    config: TrainerConfig,
    records: list[ImageRecord],
    *,
    run_dir: Path,
    work_dir: Path,
    stop_at: int | None = None,
    store: ArtifactStore | None = None,
) -> ImageLoraTrainer:
    """Build a CPU trainer on ``store`` (default: a LocalStore at ``run_dir``) that stops after step ``stop_at``."""
    store = store or LocalStore(run_dir)
    stop_event = threading.Event()
    if stop_at is None:
        progress = ProgressReporter(store, attempt=1, interval_seconds=0.0)
    else:
        progress = StopAtStep(store, stop_at=stop_at, stop_event=stop_event)
    return ImageLoraTrainer(
        config=config, records=records, store=store, progress=progress,
        work_dir=work_dir, device=torch.device("cpu"), stop_event=stop_event,
    )


def final_adapter(run_dir: Path) -> dict[str, torch.Tensor]:
    """Return the LoRA tensors of the newest complete checkpoint of ``run_dir``."""
    checkpoint = CheckpointStore(LocalStore(run_dir), keep=100).load_latest()
    assert checkpoint is not None, f"no complete checkpoint in {run_dir}"
    return checkpoint.adapter


def differing_tensors(expected: dict[str, torch.Tensor], actual: dict[str, torch.Tensor]) -> list[str]:
    """Return the names whose tensors are not bit-identical (torch.equal), missing ones included."""
    names = sorted(set(expected) | set(actual))
    return [name for name in names if name not in expected or name not in actual or not torch.equal(expected[name], actual[name])]

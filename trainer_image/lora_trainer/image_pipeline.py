"""The stages of an image run, in order: prepare, caption, manifest, train, export, summarise."""

from __future__ import annotations

import hashlib
import logging
import tempfile
import threading
from collections import Counter
from pathlib import Path
from typing import Any

import torch

from lora_operator.api.trainer_config import TrainerConfig
from lora_trainer.captioning import caption_records
from lora_trainer.captioning.captioner import CAPTION_IMAGE_SIDE
from lora_trainer.data.manifest import dataset_hash, write_manifest
from lora_trainer.data.prepare import NoUsableImagesError, prepare_image_dataset
from lora_trainer.data.records import ImageRecord
from lora_trainer.distributed import SINGLE_PROCESS, Processes
from lora_trainer.export import ExportMetadata, export_image_lora
from lora_trainer.image import ImageLoraTrainer
from lora_trainer.lossplot import write_loss_plot
from lora_trainer.progress import ProgressReporter
from lora_trainer.storage import ArtifactStore
from lora_trainer.versions import software_versions


def run_image_task(
    config: TrainerConfig,
    *,
    store: ArtifactStore,
    progress: ProgressReporter,
    work_dir: Path,
    base_dir: Path,
    device: torch.device,
    log: logging.Logger,
    stop_event: threading.Event | None,
    processes: Processes = SINGLE_PROCESS,
) -> dict[str, Any] | None:
    """Run every stage; return the run summary, or None when stopped early after a checkpoint.

    Only the main process prepares, captions and exports. The others train their share
    and return an empty summary.
    """
    spec = config.spec
    records, captioning_stats = processes.share(
        lambda: _prepare_and_caption(config, store=store, progress=progress, work_dir=work_dir, base_dir=base_dir,
                                     device=device, log=log)
    )
    accepted = [record for record in records if record.accepted]

    progress.update(phase="training", message="training", force=True)
    trainer = ImageLoraTrainer(
        config=config, records=accepted, store=store, progress=progress,
        work_dir=work_dir, device=device, log=log, stop_event=stop_event, processes=processes,
    )
    result = trainer.run()
    if not processes.is_main:
        return None if result.stopped_early else {}
    write_loss_plot(result.losses, store)
    if result.stopped_early:
        return None

    progress.update(phase="exporting", message="exporting weights", force=True)
    weights = _export(config, records=accepted, result=result, store=store, work_dir=work_dir)
    return {
        "schemaVersion": 1,
        "run": config.run.to_wire(),
        "task": "image",
        "baseModel": spec.base_model,
        "metrics": {
            "globalStep": result.global_step,
            "epoch": result.epoch,
            "finalLoss": result.losses[-1][1] if result.losses else None,
            "samplesPerSecond": result.samples_per_second,
            "trainSeconds": result.seconds,
            "captioningImagesPerSecond": getattr(captioning_stats, "images_per_second", None),
        },
        "dataset": {
            "hash": dataset_hash(records),
            "accepted": len(accepted),
            "skipped": len(records) - len(accepted),
            "skipReasons": dict(Counter(record.reason.split(":")[-1].strip() for record in records if not record.accepted)),
        },
        "artifacts": {
            "weights": weights,
            "previews": result.preview_keys,
            "lossPlot": "loss.png",
            "config": "config.yaml",
            "manifest": "dataset/manifest.jsonl",
        },
        "resumedFromStep": result.resumed_from,
        "versions": software_versions(),
    }


def _prepare_and_caption(
    config: TrainerConfig,
    *,
    store: ArtifactStore,
    progress: ProgressReporter,
    work_dir: Path,
    base_dir: Path,
    device: torch.device,
    log: logging.Logger,
) -> tuple[list[ImageRecord], Any]:
    """Check, convert and caption every input file; write the manifest; return every record and the captioning stats."""
    spec = config.spec
    output = config.output
    # Preparation and captioning are cheap next to training, so a resumed attempt redoes them
    # and gets the same records from the same inputs.
    progress.update(phase="preparing", message="checking and converting images", force=True)
    try:
        records = prepare_image_dataset(
            spec.dataset, work_dir=work_dir / "prepared", base_dir=base_dir,
            s3_endpoint=output.s3_endpoint, s3_secure=output.s3_secure, s3_region=output.s3_region, log=log,
            caption_image_side=CAPTION_IMAGE_SIDE if spec.captioning.enabled else None,
        )
    except NoUsableImagesError as error:
        # The manifest shows why each file was skipped, which is what the user needs to fix the data.
        write_manifest(error.records, store)
        raise
    accepted = [record for record in records if record.accepted]
    log.info("dataset: %d accepted, %d skipped", len(accepted), len(records) - len(accepted))

    progress.update(phase="captioning", message=f"captioning {len(accepted)} images", force=True)
    captioning_stats = caption_records(
        accepted, spec.captioning, device=str(device), base_dir=base_dir,
        s3_endpoint=output.s3_endpoint, s3_secure=output.s3_secure, log=log,
    )
    write_manifest(records, store)
    return records, captioning_stats


def _export(
    config: TrainerConfig,
    *,
    records: list[ImageRecord],
    result: Any,
    store: ArtifactStore,
    work_dir: Path,
) -> dict[str, dict[str, str]]:
    """Export every requested format, upload it, and return key and sha256 per format."""
    spec = config.spec
    name = spec.output.name or config.run.name
    tag_frequency = Counter(tag for record in records for tag, _ in record.tags)
    metadata = ExportMetadata(
        title=name,
        base_model=spec.base_model,
        trigger_word=spec.captioning.trigger_word,
        resolution=(spec.dataset.resolution, spec.dataset.resolution),
        dataset_hash=dataset_hash(records),
        num_train_images=len(records),
        steps=result.global_step,
        epochs=result.epoch,
        learning_rate=spec.training.learning_rate,
        seed=spec.training.seed,
        tag_frequency=dict(tag_frequency),
        training_config=config.to_wire(),
        software_versions=software_versions(),
    )
    pipeline = result.pipeline
    text_encoder = pipeline.text_encoder if spec.lora.train_text_encoder else None
    with tempfile.TemporaryDirectory(dir=work_dir, prefix="export-") as folder:
        out_dir = Path(folder)
        written = export_image_lora(
            unet=pipeline.unet, text_encoder=text_encoder, lora=spec.lora, out_dir=out_dir,
            name=name, formats=list(spec.output.formats), metadata=metadata,
        )
        weights: dict[str, dict[str, str]] = {}
        for format_name, path in written.items():
            key = "weights/" + path.relative_to(out_dir).as_posix()
            store.put_file(key, path)
            weights[format_name] = {"key": key, "sha256": _sha256(path)}
            # The diffusers format is a folder: carry its other files (for example the adapter config) too.
            if path.parent != out_dir:
                for sibling in path.parent.iterdir():
                    if sibling != path and sibling.is_file():
                        store.put_file("weights/" + sibling.relative_to(out_dir).as_posix(), sibling)
    return weights


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()

"""One training run from a TrainerConfig: prepare, caption, train, export, summarise.

The run is idempotent per run folder: a finished run (run.json present) is not trained
again, and an interrupted one resumes from its newest complete checkpoint.
"""

from __future__ import annotations

import json
import logging
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path

import torch
import yaml

from lora_operator.api.trainer_config import TrainerConfig
from lora_trainer.attempts import AttemptLog
from lora_trainer.distributed import SINGLE_PROCESS, Processes
from lora_trainer.errors import InvalidInputError
from lora_trainer.image_pipeline import run_image_task
from lora_trainer.progress import ProgressReporter
from lora_trainer.storage import ArtifactStore, open_store

RUN_SUMMARY_KEY = "run.json"
CONFIG_KEY = "config.yaml"


@dataclass
class RunOutcome:
    """The end state of a run: done, already done before, or stopped early to be resumed."""

    status: str  # "done", "already-done" or "stopped"
    summary: dict
    store: ArtifactStore


def pick_device(requested: str) -> torch.device:
    """Return CUDA when requested or available under "auto", else the CPU."""
    if requested == "cuda" and not torch.cuda.is_available():
        raise InvalidInputError("device 'cuda' was requested but no CUDA GPU is visible; use device 'auto' or 'cpu'")
    if requested == "cpu" or not torch.cuda.is_available():
        return torch.device("cpu")
    return torch.device("cuda")


def run_training(
    config: TrainerConfig,
    *,
    base_dir: Path,
    log: logging.Logger,
    stop_event: threading.Event | None = None,
    processes: Processes = SINGLE_PROCESS,
) -> RunOutcome:
    """Run (or resume, or skip when finished) the training that ``config`` describes.

    Under several ``processes`` every process trains, and the main one alone writes to the run folder.
    """
    output = config.output
    store = open_store(output.uri, endpoint=output.s3_endpoint, secure=output.s3_secure, region=output.s3_region)

    # A finished run is final: report it instead of training again.
    existing = store.get_bytes(RUN_SUMMARY_KEY)
    if existing is not None:
        return RunOutcome(status="already-done", summary=json.loads(existing), store=store)
    if not processes.is_main:
        return _run_worker(config, store=store, base_dir=base_dir, log=log, stop_event=stop_event, processes=processes)

    store.put_bytes(CONFIG_KEY, yaml.safe_dump(config.to_wire(), sort_keys=False, allow_unicode=True).encode())
    attempts = AttemptLog(store)
    attempts.start(config.run.attempt)
    progress = ProgressReporter(store, attempt=config.run.attempt)
    started = time.monotonic()
    try:
        summary = _run_task(
            config, store=store, progress=progress, base_dir=base_dir, log=log, stop_event=stop_event, processes=processes
        )
    except Exception as error:
        attempts.finish(config.run.attempt, outcome="failed", message=str(error))
        progress.update(phase="failed", message=str(error)[:2000], force=True)
        raise

    if summary is None:
        attempts.finish(config.run.attempt, outcome="stopped", message="stopped after a checkpoint")
        progress.update(message="stopped after a checkpoint; the next attempt resumes from it", force=True)
        return RunOutcome(status="stopped", summary={}, store=store)

    attempts.finish(config.run.attempt, outcome="succeeded")
    summary["durationSeconds"] = round(time.monotonic() - started, 3)
    summary["attempts"] = attempts.entries()
    store.put_bytes(RUN_SUMMARY_KEY, json.dumps(summary, indent=2, ensure_ascii=False).encode("utf-8"),
                    content_type="application/json")
    progress.update(phase="done", message="finished", force=True)
    return RunOutcome(status="done", summary=summary, store=store)


def _run_worker(
    config: TrainerConfig,
    *,
    store: ArtifactStore,
    base_dir: Path,
    log: logging.Logger,
    stop_event: threading.Event | None,
    processes: Processes,
) -> RunOutcome:
    """Train this process's share of every step; the main process writes the run folder."""
    progress = ProgressReporter(store, attempt=config.run.attempt, enabled=False)
    summary = _run_task(
        config, store=store, progress=progress, base_dir=base_dir, log=log, stop_event=stop_event, processes=processes
    )
    return RunOutcome(status="stopped" if summary is None else "done", summary={}, store=store)


def _run_task(
    config: TrainerConfig,
    *,
    store: ArtifactStore,
    progress: ProgressReporter,
    base_dir: Path,
    log: logging.Logger,
    stop_event: threading.Event | None,
    processes: Processes,
) -> dict | None:
    device = processes.device(pick_device(config.device))
    if device.type == "cuda" and device.index is not None and device.index >= torch.cuda.device_count():
        raise InvalidInputError(
            f"{processes.world_size} training processes need {processes.world_size} GPUs, but only "
            f"{torch.cuda.device_count()} are visible: set resources.gpus to at most {torch.cuda.device_count()}"
        )
    # Every process reads the prepared data and the encoding cache from the main process's folder.
    if config.work_dir:
        work_dir = Path(config.work_dir)
    else:
        work_dir = processes.share(lambda: Path(tempfile.mkdtemp(prefix="lora-train-")))
    work_dir.mkdir(parents=True, exist_ok=True)
    if config.spec.task == "text":
        # Imported here so that image runs do not load transformers' causal LM stack.
        from lora_trainer.text_pipeline import run_text_task

        return run_text_task(
            config, store=store, progress=progress, work_dir=work_dir, base_dir=base_dir,
            device=device, log=log, stop_event=stop_event, processes=processes,
        )
    if config.spec.task != "image":
        raise InvalidInputError(f"task {config.spec.task!r} is not supported by this trainer version; use task: image or text")
    return run_image_task(
        config,
        store=store,
        progress=progress,
        work_dir=work_dir,
        base_dir=base_dir,
        device=device,
        log=log,
        stop_event=stop_event,
        processes=processes,
    )

"""ImageLoraTrainer: trains a LoRA on a Stable Diffusion 1.x model, resuming from checkpoints exactly."""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import torch
from diffusers import StableDiffusionPipeline

from lora_operator.api.trainer_config import TrainerConfig
from lora_trainer.checkpoint import Checkpoint, CheckpointStore, check_run_identity, restore_rng_state, step_folder
from lora_trainer.data.records import ImageRecord
from lora_trainer.distributed import SINGLE_PROCESS, Processes
from lora_trainer.image.cpu_threads import checkpoint_thread_count, cpu_thread_count
from lora_trainer.image.dataset import TrainingData, dataset_fingerprint, validate_records
from lora_trainer.image.latent_cache import CACHE_FOLDER, EncodingCache, model_cache_key
from lora_trainer.image.loop import LoopState, TrainingLoop, stop_signal
from lora_trainer.image.models import TrainingModels, load_lora_state_dict, load_training_models
from lora_trainer.image.optim import build_optimisation
from lora_trainer.image.plan import DataPosition, total_steps
from lora_trainer.image.resume import IDENTITY_SUMMARIES, batch_settings, run_identity, warn_changed_batch_settings
from lora_trainer.image.sampler import BucketBatchSampler
from lora_trainer.progress import ProgressReporter
from lora_trainer.storage import ArtifactStore


@dataclass
class ImageTrainResult:
    """Outcome of a finished or stopped training, returned to the orchestrator."""

    pipeline: StableDiffusionPipeline
    """The base pipeline with the peft-wrapped UNet (and text encoder), left in eval mode."""
    global_step: int
    epoch: int
    """Epochs trained on, counting a partly trained last one."""
    losses: list[tuple[int, float]]
    """(step, loss) every training.logEvery steps, earlier attempts included."""
    resumed_from: int | None
    stopped_early: bool
    """True when a stop request (SIGTERM or stop_event) ended the run after a checkpoint."""
    seconds: float
    samples_per_second: float | None
    """Samples per second of the optimiser steps of this attempt; None when it trained none."""
    preview_keys: list[str]
    timings: dict[str, float] = field(default_factory=dict)
    """Seconds per phase of this attempt: loadModels, encode, train, checkpoints, previews."""


class ImageLoraTrainer:
    """Trains the LoRA described by ``config.spec`` on ``records``; see run()."""

    def __init__(
        self,
        *,
        config: TrainerConfig,
        records: list[ImageRecord],
        store: ArtifactStore,
        progress: ProgressReporter,
        work_dir: Path,
        device: torch.device,
        log: logging.Logger | None = None,
        stop_event: threading.Event | None = None,
        processes: Processes = SINGLE_PROCESS,
    ) -> None:
        self.config = config
        self.processes = processes
        self.records = records
        self.store = store
        self.progress = progress
        self.work_dir = Path(work_dir)
        self.device = device
        self.log = log or logging.getLogger(__name__)
        self.stop_event = stop_event
        self.checkpoints = CheckpointStore(store, keep=config.spec.training.keep_checkpoints, log=self.log)
        self.models: TrainingModels | None = None
        self.data: TrainingData | None = None
        self.checkpoint: Checkpoint | None = None
        self.cpu_threads: int | None = None
        self.timings: dict[str, float] = {}
        self._identity: dict | None = None
        self._threads_before: int | None = None

    def prepare(self) -> None:
        """Check a checkpoint against the config, load the models and encode the dataset; run() calls it."""
        if self.models is not None:
            return
        started = time.perf_counter()
        records, image_sha256 = validate_records(self.records)
        self._identity = run_identity(self.config, dataset_fingerprint=dataset_fingerprint(records, image_sha256))
        self.checkpoint = self.checkpoints.load_latest()
        if self.checkpoint is not None:
            uri = self.store.uri(step_folder(self.checkpoint.step))
            check_run_identity(
                self.checkpoint.metadata.get("runIdentity", {}), self._identity,
                checkpoint_uri=uri, summaries=IDENTITY_SUMMARIES,
            )
        self._set_cpu_threads()

        training = self.config.spec.training
        # The main process fills the model cache first, so the others read it instead of downloading too.
        with self.processes.main_first():
            models = load_training_models(config=self.config, device=self.device, log=self.log, seed=training.seed)
        self.timings["loadModels"] = time.perf_counter() - started
        started = time.perf_counter()
        data = TrainingData(
            records=records, image_sha256=image_sha256, models=models, repeats=self.config.spec.dataset.repeats,
            cached=training.cache_latents, device=self.device,
        )
        if training.cache_latents:
            # The main process fills the cache in the shared work folder; the others then read it.
            with self.processes.main_first():
                data.encode_all(EncodingCache(models=models, folder=self._cache_folder(models), log=self.log), log=self.log)
        else:
            self.log.info("training.cacheLatents is false: images and captions are encoded at every step")
        self.timings["encode"] = time.perf_counter() - started
        self.models, self.data = models, data

    def run(self) -> ImageTrainResult:
        """Train until the planned step count or a stop request, resuming from the newest complete checkpoint.

        Raises InvalidInputError for unusable records, models or a checkpoint of another run,
        and NonFiniteLossError (with no weights written from that state) when the loss diverges.
        """
        started = time.perf_counter()
        try:
            with stop_signal(self.stop_event, log=self.log) as stop_event:
                self.prepare()
                loop = self._build_loop()
                stopped = loop.train(stop_event)
                if not stopped:
                    loop.finish()
                self.models.unet.eval()
                self.models.text_encoder.eval()
        finally:
            self._restore_cpu_threads()
        self.timings.update(loop.timings)
        return ImageTrainResult(
            pipeline=self.models.pipeline,
            global_step=loop.state.global_step,
            epoch=loop.state.position.epochs_begun(),
            losses=list(loop.state.losses),
            resumed_from=self.checkpoint.step if self.checkpoint else None,
            stopped_early=stopped,
            seconds=time.perf_counter() - started,
            samples_per_second=loop.throughput.samples_per_second(),
            preview_keys=loop.all_preview_keys(),
            timings=dict(self.timings),
        )

    def _build_loop(self) -> TrainingLoop:
        training = self.config.spec.training
        sample_buckets = self.data.sample_buckets
        sampler = BucketBatchSampler(sample_buckets, batch_size=training.batch_size, seed=training.seed)
        state = self._initial_state(sampler, sample_buckets)
        total = total_steps(
            global_step=state.global_step, position=state.position, sampler=sampler,
            accumulation=training.gradient_accumulation * self.processes.world_size,
            max_steps=training.max_steps, epochs=training.epochs,
        )
        optimisation = build_optimisation(models=self.models, training=training, total_steps=total)
        if self.checkpoint is not None:
            optimisation.load_state_dicts(self.checkpoint.states)
            restore_rng_state(self.checkpoint.states["rng"])
        return TrainingLoop(
            config=self.config, models=self.models, data=self.data, optimisation=optimisation, sampler=sampler,
            state=state, total_steps=total, checkpoints=self.checkpoints, store=self.store, progress=self.progress,
            device=self.device, log=self.log, checkpoint_metadata=self._checkpoint_metadata, processes=self.processes,
        )

    def _initial_state(self, sampler: BucketBatchSampler, sample_buckets: list[tuple[int, int]]) -> LoopState:
        if self.checkpoint is None:
            return LoopState(global_step=0, position=DataPosition.start(sampler))
        metadata = self.checkpoint.metadata
        load_lora_state_dict(self.models, self.checkpoint.adapter)
        state = LoopState.from_json(metadata["loop"], step=self.checkpoint.step)
        saved_settings = metadata["batchSettings"]
        warn_changed_batch_settings(
            saved_settings, batch_settings(self.config, processes=self.processes.world_size),
            step=self.checkpoint.step, log=self.log,
        )
        if saved_settings["batchSize"] != sampler.batch_size:
            state.position = state.position.rebatched(sampler=sampler, sample_buckets=sample_buckets)
        self.log.info("resuming from step %d (epoch %d, batch %d)", state.global_step, state.position.epoch, state.position.batch_index)
        return state

    def _checkpoint_metadata(self) -> dict:
        return {
            "runIdentity": self._identity,
            "batchSettings": batch_settings(self.config, processes=self.processes.world_size),
            "cpuThreads": self.cpu_threads,
        }

    def _cache_folder(self, models: TrainingModels) -> Path:
        spec = self.config.spec
        key = model_cache_key(
            base_model=spec.base_model, revision=spec.base_model_revision,
            model_path=models.model_path, weight_dtype=models.weight_dtype,
        )
        return self.work_dir / CACHE_FOLDER / key

    def _set_cpu_threads(self) -> None:
        if self.device.type != "cpu":
            return
        processes = self.processes.world_size
        saved = checkpoint_thread_count(self.checkpoint.metadata, processes=processes) if self.checkpoint else None
        count = saved or cpu_thread_count(self.config.spec.resources.cpu, processes=processes)
        self._threads_before = torch.get_num_threads()
        torch.set_num_threads(count)
        self.cpu_threads = count
        # CPU float reductions split work by thread, so the thread count changes the last bits of the results.
        source = "the checkpoint's count, so the resumed steps repeat exactly" if saved else "from resources.cpu"
        self.log.info("training on %d CPU thread(s) (%s)", count, source)

    def _restore_cpu_threads(self) -> None:
        if self._threads_before is not None:
            torch.set_num_threads(self._threads_before)
            self._threads_before = None

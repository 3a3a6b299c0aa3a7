"""TextLoraTrainer: trains a LoRA on a causal language model, resuming from checkpoints exactly."""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass, field

import torch

from lora_operator.api.trainer_config import TrainerConfig
from lora_trainer.checkpoint import Checkpoint, CheckpointStore, check_run_identity, restore_rng_state, step_folder
from lora_trainer.distributed import SINGLE_PROCESS, Processes
from lora_trainer.image.cpu_threads import checkpoint_thread_count, cpu_thread_count
from lora_trainer.image.loop import stop_signal
from lora_trainer.image.plan import DataPosition, total_steps
from lora_trainer.image.resume import batch_settings, warn_changed_batch_settings
from lora_trainer.image.sampler import BucketBatchSampler
from lora_trainer.progress import ProgressReporter
from lora_trainer.storage import ArtifactStore
from lora_trainer.text.batches import length_buckets
from lora_trainer.text.loop import LoopParts, TextLoopState, TextTrainingLoop
from lora_trainer.text.models import TextModels, load_trainable_state_dict
from lora_trainer.text.optim import build_text_optimisation
from lora_trainer.text.resume import IDENTITY_SUMMARIES, text_run_identity
from lora_trainer.text.samples import TokenizedDataset


@dataclass
class TextTrainResult:
    """Outcome of a finished or stopped training, for the orchestrator."""

    models: TextModels
    """The peft model, in eval mode, with the trained adapter."""
    global_step: int
    epoch: int
    losses: list[tuple[int, float]]
    """(step, loss) every training.logEvery steps, earlier attempts included."""
    evals: list[dict]
    """{"step", "loss", "perplexity", "tokens"} per evaluation, earlier attempts included."""
    resumed_from: int | None
    stopped_early: bool
    seconds: float
    samples_per_second: float | None
    tokens_per_second: float | None
    preview_keys: list[str]
    timings: dict[str, float] = field(default_factory=dict)


class TextLoraTrainer:
    """Trains the LoRA of ``config.spec`` on tokenised data with loaded models; see run()."""

    def __init__(
        self,
        *,
        config: TrainerConfig,
        models: TextModels,
        data: TokenizedDataset,
        prompts: list[str],
        chat_previews: bool,
        store: ArtifactStore,
        progress: ProgressReporter,
        device: torch.device,
        log: logging.Logger | None = None,
        stop_event: threading.Event | None = None,
        processes: Processes = SINGLE_PROCESS,
    ) -> None:
        self.config, self.models, self.data = config, models, data
        self.processes = processes
        self.prompts, self.chat_previews = prompts, chat_previews
        self.store, self.progress, self.device = store, progress, device
        self.log = log or logging.getLogger(__name__)
        self.stop_event = stop_event
        self.checkpoints = CheckpointStore(store, keep=config.spec.training.keep_checkpoints, log=self.log)
        self.identity = text_run_identity(config, data_fingerprint=data.fingerprint())
        self.cpu_threads: int | None = None

    def run(self) -> TextTrainResult:
        """Train until the planned step count or a stop request, resuming from the newest complete checkpoint.

        Raises InvalidInputError for a checkpoint of another run, and NonFiniteLossError
        (with no weights written from that state) when the loss diverges.
        """
        started = time.perf_counter()
        checkpoint = self.checkpoints.load_latest()
        if checkpoint is not None:
            uri = self.store.uri(step_folder(checkpoint.step))
            check_run_identity(
                checkpoint.metadata["runIdentity"], self.identity, checkpoint_uri=uri, summaries=IDENTITY_SUMMARIES
            )
        threads_before = self._set_cpu_threads(checkpoint)
        try:
            with stop_signal(self.stop_event, log=self.log) as stop_event:
                loop = self._build_loop(checkpoint)
                stopped = loop.train(stop_event)
                if not stopped:
                    loop.finish()
        finally:
            if threads_before is not None:
                torch.set_num_threads(threads_before)
        state = loop.state
        return TextTrainResult(
            models=self.models, global_step=state.global_step, epoch=state.position.epochs_begun(),
            losses=list(state.losses), evals=list(state.evals),
            resumed_from=checkpoint.step if checkpoint else None, stopped_early=stopped,
            seconds=time.perf_counter() - started, samples_per_second=loop.throughput.samples_per_second(),
            tokens_per_second=loop.tokens_per_second(), preview_keys=list(state.preview_keys), timings=dict(loop.timings),
        )

    def _build_loop(self, checkpoint: Checkpoint | None) -> TextTrainingLoop:
        training = self.config.spec.training
        buckets = length_buckets(self.data.train)
        sampler = BucketBatchSampler(buckets, batch_size=training.batch_size, seed=training.seed)
        state = self._initial_state(checkpoint, sampler=sampler, buckets=buckets)
        total = total_steps(
            global_step=state.global_step, position=state.position, sampler=sampler,
            accumulation=training.gradient_accumulation * self.processes.world_size,
            max_steps=training.max_steps, epochs=training.epochs,
        )
        optimisation = build_text_optimisation(models=self.models, training=training, total_steps=total)
        if checkpoint is not None:
            optimisation.load_state_dicts(checkpoint.states)
            restore_rng_state(checkpoint.states["rng"])
        parts = LoopParts(models=self.models, data=self.data, optimisation=optimisation, sampler=sampler,
                          prompts=self.prompts, chat_previews=self.chat_previews)
        return TextTrainingLoop(
            config=self.config, parts=parts, state=state, total_steps=total, checkpoints=self.checkpoints,
            store=self.store, progress=self.progress, device=self.device, log=self.log,
            checkpoint_metadata=self._checkpoint_metadata, processes=self.processes,
        )

    def _initial_state(self, checkpoint: Checkpoint | None, *, sampler: BucketBatchSampler, buckets: list) -> TextLoopState:
        if checkpoint is None:
            return TextLoopState(global_step=0, position=DataPosition.start(sampler))
        load_trainable_state_dict(self.models.model, checkpoint.adapter)
        state = TextLoopState.from_json(checkpoint.metadata["loop"], step=checkpoint.step)
        saved_settings = checkpoint.metadata["batchSettings"]
        current_settings = batch_settings(self.config, processes=self.processes.world_size)
        warn_changed_batch_settings(saved_settings, current_settings, step=checkpoint.step, log=self.log)
        if saved_settings["batchSize"] != sampler.batch_size:
            state.position = state.position.rebatched(sampler=sampler, sample_buckets=buckets)
        self.log.info("resuming from step %d (epoch %d, batch %d)", state.global_step, state.position.epoch, state.position.batch_index)
        return state

    def _checkpoint_metadata(self) -> dict:
        return {
            "runIdentity": self.identity,
            "batchSettings": batch_settings(self.config, processes=self.processes.world_size),
            "cpuThreads": self.cpu_threads,
        }

    def _set_cpu_threads(self, checkpoint: Checkpoint | None) -> int | None:
        """Fix the CPU thread count (the checkpoint's when resuming); return the count to restore afterwards."""
        if self.device.type != "cpu":
            return None
        processes = self.processes.world_size
        saved = checkpoint_thread_count(checkpoint.metadata, processes=processes) if checkpoint else None
        count = saved or cpu_thread_count(self.config.spec.resources.cpu, processes=processes)
        before = torch.get_num_threads()
        torch.set_num_threads(count)
        self.cpu_threads = count
        # CPU float reductions split work by thread, so the thread count changes the last bits of the results.
        self.log.info("training on %d CPU thread(s) (%s)", count, "the checkpoint's count" if saved else "from resources.cpu")
        return before

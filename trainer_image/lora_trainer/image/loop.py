"""The training loop: optimiser steps, progress, checkpoints, previews and stop requests."""

from __future__ import annotations

import contextlib
import logging
import signal
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import torch

from lora_operator.api.trainer_config import TrainerConfig
from lora_trainer.checkpoint import Checkpoint, CheckpointStore, capture_rng_state
from lora_trainer.distributed import SINGLE_PROCESS, Processes
from lora_trainer.image.dataset import TrainingData
from lora_trainer.loop_state import LoopProgress
from lora_trainer.image.metrics import Throughput
from lora_trainer.image.models import TrainingModels, lora_state_dict
from lora_trainer.image.optim import Optimisation
from lora_trainer.image.previews import PREVIEWS_PREFIX, preview_prompts, render_previews
from lora_trainer.image.sampler import BucketBatchSampler
from lora_trainer.image.step import run_optimisation_step
from lora_trainer.lossplot import write_loss_plot
from lora_trainer.progress import ProgressReporter
from lora_trainer.storage import ArtifactStore


@dataclass
class LoopState(LoopProgress):
    """Everything about the image loop's progress that a checkpoint must carry."""

    last_preview_step: int | None = None

    def to_json(self) -> dict[str, Any]:
        return {**super().to_json(), "lastPreviewStep": self.last_preview_step}

    @classmethod
    def from_json(cls, data: dict[str, Any], *, step: int) -> LoopState:
        return cls(**LoopProgress.fields_from_json(data, step=step), last_preview_step=data["lastPreviewStep"])


class TrainingLoop:
    """Optimiser steps from ``state`` to ``total_steps``, with progress reports, checkpoints and previews on the way."""

    def __init__(
        self,
        *,
        config: TrainerConfig,
        models: TrainingModels,
        data: TrainingData,
        optimisation: Optimisation,
        sampler: BucketBatchSampler,
        state: LoopState,
        total_steps: int,
        checkpoints: CheckpointStore,
        store: ArtifactStore,
        progress: ProgressReporter,
        device: torch.device,
        log: logging.Logger,
        checkpoint_metadata: Callable[[], dict[str, Any]],
        processes: Processes = SINGLE_PROCESS,
    ) -> None:
        self.spec = config.spec
        self.training = config.spec.training
        self.models, self.data, self.optimisation, self.sampler = models, data, optimisation, sampler
        self.state, self.total_steps = state, total_steps
        self.checkpoints, self.store, self.progress = checkpoints, store, progress
        self.device, self.log = device, log
        self.checkpoint_metadata = checkpoint_metadata
        self.processes = processes
        # Each optimiser step trains accumulation micro-batches in every process.
        self.micro_batches_per_step = self.training.gradient_accumulation * processes.world_size
        self.throughput = Throughput()
        self.timings = {"train": 0.0, "checkpoints": 0.0, "previews": 0.0}
        captions = [record.caption for record in data.records]
        self.prompts = preview_prompts(self.spec.previews, trigger_word=self.spec.captioning.trigger_word, captions=captions)

    def train(self, stop_event: threading.Event) -> bool:
        """Run steps until the total; return True when a stop request ended them early.

        A stop request is honoured between optimiser steps, after a checkpoint of the last
        finished step. No checkpoint is written when no step has been trained yet. A stop
        request to any training process stops all of them at the same step.
        """
        state = self.state
        self.models.unet.train()
        self.models.text_encoder.train(self.models.train_text_encoder)
        self.log.info("training steps %d to %d", state.global_step + 1, self.total_steps)
        self.progress.update(
            phase="training", step=state.global_step, totalSteps=self.total_steps,
            epoch=state.position.epochs_begun(), force=True,
        )
        while state.global_step < self.total_steps:
            if self.processes.any(stop_event.is_set()):
                if state.global_step == 0:
                    self.log.warning("stop requested before the first step: stopping with nothing to checkpoint")
                    return True
                if self.processes.is_main:
                    self.log.warning("stop requested: checkpointing at step %d and stopping", state.global_step)
                self.save_checkpoint()
                return True
            self._step()
            if state.global_step % self.training.checkpoint_every == 0:
                self.save_checkpoint()
            if self.prompts and state.global_step % self.spec.previews.every == 0:
                self.render_previews()
        return False

    def finish(self) -> None:
        """Write the final checkpoint and previews unless this step already has them."""
        if self.state.global_step > 0:
            self.save_checkpoint()
            if self.prompts:
                self.render_previews()

    def save_checkpoint(self) -> None:
        state = self.state
        if state.last_checkpoint_step == state.global_step or not self.processes.is_main:
            return
        started = time.perf_counter()
        metadata = {**self.checkpoint_metadata(), "loop": state.to_json()}
        states = {**self.optimisation.state_dicts(), "rng": capture_rng_state()}
        checkpoint = Checkpoint(step=state.global_step, adapter=lora_state_dict(self.models), states=states, metadata=metadata)
        folder = self.checkpoints.save(checkpoint)
        write_loss_plot(state.losses, self.store)
        state.last_checkpoint_step = state.global_step
        self.timings["checkpoints"] += time.perf_counter() - started
        self.log.info("checkpoint written: %s", self.store.uri(folder))

    def render_previews(self) -> None:
        state = self.state
        if state.last_preview_step == state.global_step or not self.processes.is_main:
            return
        started = time.perf_counter()
        keys = render_previews(
            models=self.models, prompts=self.prompts, previews=self.spec.previews, step=state.global_step,
            resolution=self.spec.dataset.resolution, store=self.store, device=self.device,
        )
        state.last_preview_step = state.global_step
        self.timings["previews"] += time.perf_counter() - started
        self.progress.update(previews=keys)
        self.log.info("previews written: %s", ", ".join(keys))

    def all_preview_keys(self) -> list[str]:
        """Return every preview of the run in the store, earlier attempts included."""
        return [key for key in self.store.list_keys(f"{PREVIEWS_PREFIX}/") if key.endswith(".png")]

    def _step(self) -> None:
        state = self.state
        micro_batches = state.position.next_micro_batches(self.micro_batches_per_step)
        started = time.perf_counter()
        loss = run_optimisation_step(
            micro_batches, step=state.global_step + 1, models=self.models, data=self.data,
            optimisation=self.optimisation, training=self.training, device=self.device, processes=self.processes,
        )
        seconds = time.perf_counter() - started
        self.timings["train"] += seconds
        self.throughput.add(samples=sum(len(batch.sample_ids) for batch in micro_batches), seconds=seconds)

        state.global_step += 1
        state.position.advance(len(micro_batches), sampler=self.sampler)
        ema = state.loss_ema.update(loss)
        learning_rate = self.optimisation.optimizer.param_groups[0]["lr"]

        if state.global_step % self.training.log_every == 0:
            state.losses.append((state.global_step, loss))
            self.log.info(
                "step %d/%d epoch %d loss %.5f ema %.5f lr %.3g",
                state.global_step, self.total_steps, state.position.epochs_begun(), loss, ema, learning_rate,
            )

        self.progress.update(
            phase="training",
            step=state.global_step,
            totalSteps=self.total_steps,
            epoch=state.position.epochs_begun(),
            loss=loss,
            lossEma=ema,
            learningRate=learning_rate,
            samplesPerSecond=self.throughput.samples_per_second(),
            etaSeconds=self.throughput.eta_seconds(self.total_steps - state.global_step),
        )


@contextlib.contextmanager
def stop_signal(stop_event: threading.Event | None, *, log: logging.Logger) -> Iterator[threading.Event]:
    """Yield the event that requests a stop.

    A caller that passes ``stop_event`` owns signal handling. Without one, SIGTERM sets a
    fresh event while the context is open, when running in the main thread (Python
    delivers signals there only).
    """
    if stop_event is not None:
        yield stop_event
        return
    event = threading.Event()
    if threading.current_thread() is not threading.main_thread():
        yield event
        return

    def request_stop(signum: int, _frame: object) -> None:
        log.warning("received %s: finishing the current step, then checkpointing", signal.Signals(signum).name)
        event.set()

    previous = signal.signal(signal.SIGTERM, request_stop)
    try:
        yield event
    finally:
        signal.signal(signal.SIGTERM, previous)

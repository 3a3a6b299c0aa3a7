"""The text training loop: optimiser steps, progress, evaluation, checkpoints, previews and stop requests."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import torch

from lora_operator.api.trainer_config import TrainerConfig
from lora_trainer.checkpoint import Checkpoint, CheckpointStore, capture_rng_state
from lora_trainer.distributed import SINGLE_PROCESS, Processes
from lora_trainer.image.metrics import Throughput
from lora_trainer.image.optim import Optimisation
from lora_trainer.image.sampler import BucketBatchSampler
from lora_trainer.lossplot import write_loss_plot
from lora_trainer.loop_state import LoopProgress
from lora_trainer.progress import ProgressReporter
from lora_trainer.storage import ArtifactStore
from lora_trainer.text.evaluate import evaluate
from lora_trainer.text.models import TextModels, trainable_state_dict
from lora_trainer.text.previews import render_text_previews
from lora_trainer.text.samples import TokenizedDataset
from lora_trainer.text.step import run_text_step


@dataclass
class TextLoopState(LoopProgress):
    """Everything about the text loop's progress that a checkpoint must carry."""

    evals: list[dict[str, Any]] = field(default_factory=list)
    """{"step", "loss", "perplexity", "tokens"} per evaluation."""
    preview_keys: list[str] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        return {**super().to_json(), "evals": self.evals, "previewKeys": self.preview_keys}

    @classmethod
    def from_json(cls, data: dict[str, Any], *, step: int) -> TextLoopState:
        return cls(
            **LoopProgress.fields_from_json(data, step=step),
            evals=list(data["evals"]),
            preview_keys=list(data["previewKeys"]),
        )

    def last_eval_step(self) -> int | None:
        return int(self.evals[-1]["step"]) if self.evals else None


@dataclass
class LoopParts:
    """The models, data, optimiser, sampler and preview prompts of the loop, built by the trainer."""

    models: TextModels
    data: TokenizedDataset
    optimisation: Optimisation
    sampler: BucketBatchSampler
    prompts: list[str]
    chat_previews: bool


class TextTrainingLoop:
    """Runs optimiser steps from ``state`` to ``total_steps``, evaluating, checkpointing and previewing on the way."""

    def __init__(
        self,
        *,
        config: TrainerConfig,
        parts: LoopParts,
        state: TextLoopState,
        total_steps: int,
        checkpoints: CheckpointStore,
        store: ArtifactStore,
        progress: ProgressReporter,
        device: torch.device,
        log: logging.Logger,
        checkpoint_metadata: Callable[[], dict[str, Any]],
        processes: Processes = SINGLE_PROCESS,
    ) -> None:
        self.spec, self.training = config.spec, config.spec.training
        self.processes = processes
        # Each optimiser step trains accumulation micro-batches in every process.
        self.micro_batches_per_step = self.training.gradient_accumulation * processes.world_size
        self.parts, self.state, self.total_steps = parts, state, total_steps
        self.checkpoints, self.store, self.progress = checkpoints, store, progress
        self.device, self.log = device, log
        self.checkpoint_metadata = checkpoint_metadata
        self.throughput = Throughput()
        self.tokens_seen = 0
        self.timings = {"train": 0.0, "evaluation": 0.0, "checkpoints": 0.0, "previews": 0.0}

    def train(self, stop_event: threading.Event) -> bool:
        """Run steps until the total; return True when a stop request ended it early (after a checkpoint).

        A stop request to any training process stops all of them at the same step.
        """
        state = self.state
        self.parts.models.model.train()
        self.log.info("training steps %d to %d", state.global_step + 1, self.total_steps)
        while state.global_step < self.total_steps:
            if self.processes.any(stop_event.is_set()):
                if self.processes.is_main:
                    self.log.warning("stop requested: checkpointing at step %d and stopping", state.global_step)
                if state.global_step > 0:
                    self.save_checkpoint()
                return True
            self._step()
            # Evaluation and previews come before the checkpoint, so it records them.
            if self.parts.data.eval and state.global_step % self.spec.text.eval_every == 0:
                self.run_evaluation()
            if self.parts.prompts and state.global_step % self.spec.previews.every == 0:
                self.render_previews()
            if state.global_step % self.training.checkpoint_every == 0:
                self.save_checkpoint()
        return False

    def finish(self) -> None:
        """Evaluate, preview and checkpoint the last step unless already done; leave the model in eval mode."""
        state = self.state
        if state.global_step > 0:
            if self.parts.data.eval:
                self.run_evaluation()
            if self.parts.prompts:
                self.render_previews()
            self.save_checkpoint()
        self.parts.models.model.eval()

    def run_evaluation(self) -> None:
        state = self.state
        if state.last_eval_step() == state.global_step:
            return
        started = time.perf_counter()
        result = evaluate(
            self.parts.models, self.parts.data.eval, batch_size=self.training.batch_size, device=self.device,
            processes=self.processes,
        )
        state.evals.append({"step": state.global_step, **result})
        self.timings["evaluation"] += time.perf_counter() - started
        self.progress.update(evalLoss=result["loss"], perplexity=result["perplexity"])
        self.log.info("eval at step %d: loss %.5f perplexity %s", state.global_step, result["loss"], result["perplexity"])

    def render_previews(self) -> None:
        state = self.state
        if not self.processes.is_main:
            return
        if state.preview_keys and state.preview_keys[-1].endswith(f"step-{state.global_step:06d}.jsonl"):
            return
        started = time.perf_counter()
        key = render_text_previews(
            models=self.parts.models, prompts=self.parts.prompts, previews=self.spec.previews,
            chat=self.parts.chat_previews, step=state.global_step, store=self.store, device=self.device,
        )
        state.preview_keys.append(key)
        self.timings["previews"] += time.perf_counter() - started
        self.progress.update(previews=[key])
        self.log.info("previews written: %s", key)

    def save_checkpoint(self) -> None:
        state = self.state
        if state.last_checkpoint_step == state.global_step or not self.processes.is_main:
            return
        started = time.perf_counter()
        metadata = {**self.checkpoint_metadata(), "loop": state.to_json()}
        states = {**self.parts.optimisation.state_dicts(), "rng": capture_rng_state()}
        adapter = trainable_state_dict(self.parts.models.model)
        folder = self.checkpoints.save(Checkpoint(step=state.global_step, adapter=adapter, states=states, metadata=metadata))
        write_loss_plot(state.losses, self.store)
        state.last_checkpoint_step = state.global_step
        self.timings["checkpoints"] += time.perf_counter() - started
        self.log.info("checkpoint written: %s", self.store.uri(folder))

    def _step(self) -> None:
        state = self.state
        micro_batches = state.position.next_micro_batches(self.micro_batches_per_step)
        started = time.perf_counter()
        result = run_text_step(
            micro_batches, step=state.global_step + 1, models=self.parts.models, samples=self.parts.data.train,
            optimisation=self.parts.optimisation, training=self.training, device=self.device, processes=self.processes,
        )
        seconds = time.perf_counter() - started
        self.timings["train"] += seconds
        self.tokens_seen += result.tokens
        self.throughput.add(samples=sum(len(batch.sample_ids) for batch in micro_batches), seconds=seconds)
        state.global_step += 1
        state.position.advance(len(micro_batches), sampler=self.parts.sampler)
        ema = state.loss_ema.update(result.loss)
        learning_rate = self.parts.optimisation.optimizer.param_groups[0]["lr"]
        if state.global_step % self.training.log_every == 0:
            state.losses.append((state.global_step, result.loss))
            self.log.info(
                "step %d/%d epoch %d loss %.5f ema %.5f lr %.3g",
                state.global_step, self.total_steps, state.position.epochs_begun(), result.loss, ema, learning_rate,
            )
        self.progress.update(
            phase="training",
            step=state.global_step,
            totalSteps=self.total_steps,
            epoch=state.position.epochs_begun(),
            loss=result.loss,
            lossEma=ema,
            learningRate=learning_rate,
            samplesPerSecond=self.throughput.samples_per_second(),
            tokensPerSecond=self.tokens_per_second(),
            etaSeconds=self.throughput.eta_seconds(self.total_steps - state.global_step),
        )

    def tokens_per_second(self) -> float | None:
        train_seconds = self.timings["train"]
        return self.tokens_seen / train_seconds if train_seconds > 0 else None

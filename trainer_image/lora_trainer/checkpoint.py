"""Resumable training checkpoints in an ArtifactStore, for any task.

A checkpoint is the folder ``checkpoints/step-000200/``:

- ``adapter.safetensors``: the trainable (LoRA) tensors only,
- ``<name>.pt``: one file per state object (optimiser, lr scheduler, RNG states, ...),
- ``state.json``: the trainer's own JSON state (data position, loss history, ...),
- ``complete.json``: written last; it lists every other file with its size and sha256.

A folder without ``complete.json`` is ignored, so a checkpoint never counts until all of
its files are written, on a local disk and on S3 alike.
"""

from __future__ import annotations

import hashlib
import io
import json
import logging
import random
import re
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
from safetensors.torch import load as load_safetensors
from safetensors.torch import save as save_safetensors

from lora_trainer.errors import InvalidInputError
from lora_trainer.storage import ArtifactStore

CHECKPOINTS_PREFIX = "checkpoints"
ADAPTER_FILE = "adapter.safetensors"
STATE_FILE = "state.json"
MARKER_FILE = "complete.json"
STEP_FOLDER = re.compile(r"^step-(\d{6,})$")


@dataclass
class Checkpoint:
    """Everything needed to continue a run after ``step`` optimiser steps."""

    step: int
    adapter: dict[str, torch.Tensor]
    states: dict[str, Any] = field(default_factory=dict)
    """Objects for torch.save, loadable with weights_only=True (tensors, numbers, strings, lists, dicts)."""
    metadata: dict[str, Any] = field(default_factory=dict)
    """JSON-serialisable trainer state."""


def step_folder(step: int) -> str:
    return f"{CHECKPOINTS_PREFIX}/step-{step:06d}"


class CheckpointStore:
    """Writes, lists, loads and prunes the checkpoints of one run folder."""

    def __init__(self, store: ArtifactStore, *, keep: int, log: logging.Logger | None = None) -> None:
        if keep < 1:
            raise ValueError(f"keep must be at least 1, got {keep}")
        self.store = store
        self.keep = keep
        self.log = log or logging.getLogger(__name__)

    def save(self, checkpoint: Checkpoint) -> str:
        """Write ``checkpoint``, marker last, then delete the oldest beyond ``keep``; return its folder key."""
        folder = step_folder(checkpoint.step)
        files: dict[str, bytes] = {ADAPTER_FILE: save_safetensors(_contiguous(checkpoint.adapter))}
        for name, state in checkpoint.states.items():
            buffer = io.BytesIO()
            torch.save(state, buffer)
            files[f"{name}.pt"] = buffer.getvalue()
        files[STATE_FILE] = json.dumps(checkpoint.metadata, allow_nan=False).encode("utf-8")

        # An older checkpoint of the same step loses its marker first, so a write killed
        # halfway never leaves a marker next to files it does not describe.
        self.store.delete_prefix(f"{folder}/{MARKER_FILE}")
        for name, data in files.items():
            self.store.put_bytes(f"{folder}/{name}", data)
        marker = {
            "step": checkpoint.step,
            "writtenAt": time.time(),
            "files": {name: {"size": len(data), "sha256": hashlib.sha256(data).hexdigest()} for name, data in files.items()},
        }
        self.store.put_bytes(f"{folder}/{MARKER_FILE}", json.dumps(marker).encode("utf-8"), content_type="application/json")
        self._prune()
        return folder

    def complete_steps(self) -> list[int]:
        """Return the steps of the checkpoints that have a marker, oldest first."""
        steps = set()
        for key in self.store.list_keys(f"{CHECKPOINTS_PREFIX}/"):
            parts = key.split("/")
            match = STEP_FOLDER.match(parts[1]) if len(parts) == 3 else None
            if match and parts[2] == MARKER_FILE:
                steps.add(int(match.group(1)))
        return sorted(steps)

    def load_latest(self) -> Checkpoint | None:
        """Load the newest complete checkpoint; a damaged one is logged and the next older is tried."""
        for step in reversed(self.complete_steps()):
            try:
                return self.load(step)
            except CorruptCheckpointError as error:
                self.log.warning("skipping damaged checkpoint: %s", error)
        return None

    def load(self, step: int) -> Checkpoint:
        """Load the checkpoint of ``step``, checking each file against the marker's sha256."""
        folder = step_folder(step)
        marker_bytes = self.store.get_bytes(f"{folder}/{MARKER_FILE}")
        if marker_bytes is None:
            raise CorruptCheckpointError(f"{self.store.uri(folder)} has no {MARKER_FILE}")
        try:
            marker = json.loads(marker_bytes)
        except ValueError as error:
            raise CorruptCheckpointError(f"{self.store.uri(f'{folder}/{MARKER_FILE}')} is not valid JSON: {error}") from error
        files: dict[str, bytes] = {}
        for name, expected in marker["files"].items():
            data = self.store.get_bytes(f"{folder}/{name}")
            if data is None or hashlib.sha256(data).hexdigest() != expected["sha256"]:
                raise CorruptCheckpointError(
                    f"{self.store.uri(f'{folder}/{name}')} is missing or does not match its sha256 in {MARKER_FILE}; "
                    f"delete {self.store.uri(folder)} to resume from an older checkpoint"
                )
            files[name] = data

        states = {
            name.removesuffix(".pt"): torch.load(io.BytesIO(data), map_location="cpu", weights_only=True)
            for name, data in files.items()
            if name.endswith(".pt")
        }
        return Checkpoint(
            step=step,
            adapter=load_safetensors(files[ADAPTER_FILE]),
            states=states,
            metadata=json.loads(files[STATE_FILE]),
        )

    def _prune(self) -> None:
        steps = self.complete_steps()
        newest = steps[-self.keep :]
        for step in steps[: -self.keep]:
            self.store.delete_prefix(step_folder(step) + "/")
        # Unmarked folders older than the newest kept checkpoint are leftovers of killed writes.
        for key in self.store.list_keys(f"{CHECKPOINTS_PREFIX}/"):
            parts = key.split("/")
            match = STEP_FOLDER.match(parts[1]) if len(parts) == 3 else None
            if match and int(match.group(1)) not in steps and newest and int(match.group(1)) < newest[0]:
                self.store.delete_prefix(f"{CHECKPOINTS_PREFIX}/{parts[1]}/")


class CorruptCheckpointError(RuntimeError):
    """A checkpoint file is missing or does not match the sha256 in its marker."""


def _contiguous(tensors: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    return {name: tensor.detach().to("cpu").contiguous() for name, tensor in tensors.items()}


def capture_rng_state() -> dict[str, Any]:
    """Return the states of the torch CPU, current CUDA device, Python and numpy global generators.

    Only the current GPU's state is kept: reading every GPU's state would open a CUDA context,
    with its memory, on each GPU from every training process.
    """
    numpy_state = np.random.get_state(legacy=False)
    return {
        "torch": torch.get_rng_state(),
        "cuda": [torch.cuda.get_rng_state()] if torch.cuda.is_available() else [],
        "python": random.getstate(),
        "numpy": {
            "key": numpy_state["state"]["key"].tolist(),
            "pos": numpy_state["state"]["pos"],
            "has_gauss": numpy_state["has_gauss"],
            "gauss": numpy_state["gauss"],
        },
    }


def restore_rng_state(state: dict[str, Any]) -> None:
    """Restore the generators captured by capture_rng_state.

    One CUDA state goes to the current GPU. Checkpoints that stored a state per GPU are
    restored only when the same number of GPUs is present.
    """
    torch.set_rng_state(state["torch"])
    cuda_states = state.get("cuda") or []
    if cuda_states and torch.cuda.is_available():
        if len(cuda_states) == 1:
            torch.cuda.set_rng_state(cuda_states[0])
        elif len(cuda_states) == torch.cuda.device_count():
            torch.cuda.set_rng_state_all(cuda_states)
    version, internal, gauss = state["python"]
    random.setstate((version, tuple(internal), gauss))
    numpy = state["numpy"]
    np.random.set_state(
        {
            "bit_generator": "MT19937",
            "state": {"key": np.asarray(numpy["key"], dtype=np.uint32), "pos": numpy["pos"]},
            "has_gauss": numpy["has_gauss"],
            "gauss": numpy["gauss"],
        }
    )


def check_run_identity(
    saved: dict[str, Any], current: dict[str, Any], *, checkpoint_uri: str, summaries: Mapping[str, str]
) -> None:
    """Raise InvalidInputError naming every setting that differs from the checkpoint's.

    ``summaries`` gives a fixed sentence for settings stored as fingerprints, whose raw values mean nothing to users.
    """
    changed = [name for name in sorted(set(saved) | set(current)) if saved.get(name) != current.get(name)]
    if not changed:
        return
    details = "; ".join(
        summaries.get(name) or f"{name} was {saved.get(name)!r}, the config now has {current.get(name)!r}"
        for name in changed
    )
    raise InvalidInputError(
        f"checkpoint {checkpoint_uri} belongs to a different run: {details}. Restore the previous settings to "
        "resume it, or delete the checkpoints folder of this run to train from the start"
    )

"""Checkpoints count only with their marker, verify their files, prune old ones and restore RNG states."""

from __future__ import annotations

import logging
import random
from pathlib import Path

import numpy as np
import pytest
import torch

from lora_trainer.checkpoint import Checkpoint, CheckpointStore, capture_rng_state, restore_rng_state
from lora_trainer.storage import LocalStore

pytestmark = pytest.mark.trainer


def make_checkpoint(step: int) -> Checkpoint:
    return Checkpoint(
        step=step,
        adapter={"unet.lora_A.weight": torch.full((2, 3), float(step))},
        states={"optimizer": {"state": {0: {"exp_avg": torch.ones(3) * step}}, "param_groups": [{"lr": 0.1, "betas": (0.9, 0.999)}]}},
        metadata={"loop": {"epoch": step // 2}},
    )


def test_checkpoint_round_trip(tmp_path: Path) -> None:
    checkpoints = CheckpointStore(LocalStore(tmp_path), keep=2)
    checkpoints.save(make_checkpoint(4))
    loaded = checkpoints.load_latest()
    assert loaded is not None
    assert loaded.step == 4
    assert torch.equal(loaded.adapter["unet.lora_A.weight"], torch.full((2, 3), 4.0))
    assert torch.equal(loaded.states["optimizer"]["state"][0]["exp_avg"], torch.ones(3) * 4)
    assert loaded.states["optimizer"]["param_groups"][0]["betas"] == (0.9, 0.999)
    assert loaded.metadata == {"loop": {"epoch": 2}}


def test_unmarked_folder_is_ignored(tmp_path: Path) -> None:
    store = LocalStore(tmp_path)
    checkpoints = CheckpointStore(store, keep=5)
    checkpoints.save(make_checkpoint(2))
    checkpoints.save(make_checkpoint(4))
    store.delete_prefix("checkpoints/step-000004/complete.json")
    assert checkpoints.complete_steps() == [2]
    assert checkpoints.load_latest().step == 2


def test_damaged_checkpoint_falls_back(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    store = LocalStore(tmp_path)
    checkpoints = CheckpointStore(store, keep=5)
    checkpoints.save(make_checkpoint(2))
    checkpoints.save(make_checkpoint(4))
    store.put_bytes("checkpoints/step-000004/adapter.safetensors", b"truncated")
    with caplog.at_level(logging.WARNING):
        loaded = checkpoints.load_latest()
    assert loaded.step == 2
    assert "step-000004/adapter.safetensors is missing or does not match its sha256" in caplog.text


def test_keep_prunes_oldest(tmp_path: Path) -> None:
    store = LocalStore(tmp_path)
    checkpoints = CheckpointStore(store, keep=2)
    for step in (1, 2, 3, 4):
        checkpoints.save(make_checkpoint(step))
    assert checkpoints.complete_steps() == [3, 4]
    assert store.list_keys("checkpoints/step-000001") == []


def test_prune_removes_stale_unmarked_folders(tmp_path: Path) -> None:
    store = LocalStore(tmp_path)
    store.put_bytes("checkpoints/step-000001/adapter.safetensors", b"half written")
    checkpoints = CheckpointStore(store, keep=1)
    checkpoints.save(make_checkpoint(2))
    assert store.list_keys("checkpoints/step-000001") == []


def test_rng_state_round_trip(tmp_path: Path) -> None:
    checkpoints = CheckpointStore(LocalStore(tmp_path), keep=1)
    checkpoints.save(Checkpoint(step=1, adapter={}, states={"rng": capture_rng_state()}))
    expected = (torch.rand(3), random.random(), np.random.rand(2))
    torch.rand(5), random.random(), np.random.rand(7)
    restore_rng_state(checkpoints.load(1).states["rng"])
    actual = (torch.rand(3), random.random(), np.random.rand(2))
    assert torch.equal(expected[0], actual[0])
    assert expected[1] == actual[1]
    assert np.array_equal(expected[2], actual[2])

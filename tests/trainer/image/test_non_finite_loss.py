"""A NaN loss stops training at once, names the step and the fix, and writes no checkpoint from that state."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from lora_trainer.checkpoint import CheckpointStore
from lora_trainer.errors import NonFiniteLossError
from lora_trainer.storage import LocalStore

from .builders import build_records, make_config, make_trainer

pytestmark = pytest.mark.trainer

POISONED_CALL = 3


def test_nan_loss_stops_training(tmp_path: Path) -> None:
    records = build_records(tmp_path / "records")
    config = make_config(tmp_path / "run", training={"maxSteps": 6, "checkpointEvery": 1}, previews={"count": 1, "every": 1, "inferenceSteps": 1})
    trainer = make_trainer(config, records, run_dir=tmp_path / "run", work_dir=tmp_path / "work")
    threads_before = torch.get_num_threads()
    trainer.prepare()
    calls = 0

    def poison_latents(_module: torch.nn.Module, args: tuple) -> tuple | None:
        nonlocal calls
        if not torch.is_grad_enabled():
            return None  # preview rendering
        calls += 1
        if calls == POISONED_CALL:
            return (torch.full_like(args[0], float("nan")), *args[1:])
        return None

    trainer.models.unet.register_forward_pre_hook(poison_latents)
    with pytest.raises(NonFiniteLossError) as raised:
        trainer.run()

    message = str(raised.value)
    store = LocalStore(tmp_path / "run")
    assert "the loss is nan at step 3" in message
    assert "learning rate 0.001" in message
    assert "lower training.learningRate" in message
    assert CheckpointStore(store, keep=20).complete_steps() == [1, 2]
    assert store.list_keys("checkpoints/step-000003") == []
    assert not [key for key in store.list_keys("previews") if "step-000003" in key]
    assert torch.get_num_threads() == threads_before

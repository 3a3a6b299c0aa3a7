"""Gradient checkpointing recomputes activations without changing what the step learns."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from .builders import build_records, final_adapter, make_config, make_trainer

pytestmark = pytest.mark.trainer


def test_checkpointing_matches_plain_backward(tmp_path: Path) -> None:
    records = build_records(tmp_path / "records")
    adapters = {}
    for enabled in (False, True):
        run_dir = tmp_path / f"run-{enabled}"
        config = make_config(run_dir, training={"maxSteps": 3, "gradientCheckpointing": enabled})
        trainer = make_trainer(config, records, run_dir=run_dir, work_dir=tmp_path / "work")
        trainer.run()
        assert trainer.models.unet.is_gradient_checkpointing == enabled
        adapters[enabled] = final_adapter(run_dir)

    assert adapters[False].keys() == adapters[True].keys()
    for name, tensor in adapters[False].items():
        torch.testing.assert_close(adapters[True][name], tensor, rtol=1e-5, atol=1e-6, msg=name)

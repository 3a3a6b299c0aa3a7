"""Previews: fixed seeds give identical files, and rendering leaves the training state alone."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from lora_operator.api.training_spec import PreviewSpec
from lora_trainer.image.previews import preview_prompts, render_previews
from lora_trainer.storage import LocalStore

from .builders import build_records, make_config, make_trainer

pytestmark = pytest.mark.trainer

PREVIEWS = {"count": 2, "every": 2, "inferenceSteps": 2, "seed": 11}


def test_previews_written_each_round(tmp_path: Path) -> None:
    records = build_records(tmp_path / "records")
    config = make_config(tmp_path / "run", training={"maxSteps": 3}, previews=PREVIEWS)
    result = make_trainer(config, records, run_dir=tmp_path / "run", work_dir=tmp_path / "work").run()
    expected = [
        "previews/step-000002-00.png", "previews/step-000002-01.png",
        "previews/step-000003-00.png", "previews/step-000003-01.png",
    ]
    assert result.preview_keys == expected
    assert LocalStore(tmp_path / "run").list_keys("previews") == expected


def test_same_seed_same_preview(tmp_path: Path) -> None:
    records = build_records(tmp_path / "records")
    config = make_config(tmp_path / "run", previews=PREVIEWS)
    trainer = make_trainer(config, records, run_dir=tmp_path / "run", work_dir=tmp_path / "work")
    trainer.prepare()
    trainer.models.unet.train()
    rng_before = torch.get_rng_state()
    stores = [LocalStore(tmp_path / "a"), LocalStore(tmp_path / "b")]
    rounds = [
        render_previews(
            models=trainer.models, prompts=["zwx, a photo of a cat", "zwx"], previews=config.spec.previews,
            step=5, resolution=64, store=store, device=torch.device("cpu"),
        )
        for store in stores
    ]

    assert rounds[0] == ["previews/step-000005-00.png", "previews/step-000005-01.png"]
    assert rounds[1] == rounds[0]
    for key in rounds[0]:
        assert stores[0].get_bytes(key) == stores[1].get_bytes(key), key
    assert stores[0].get_bytes(rounds[0][0]) != stores[0].get_bytes(rounds[0][1])
    assert torch.equal(torch.get_rng_state(), rng_before)
    assert trainer.models.unet.training


def test_prompts_from_trigger_and_captions() -> None:
    previews = PreviewSpec(count=3)
    prompts = preview_prompts(previews, trigger_word="zwx", captions=["a red car", "zwx, a dog"])
    assert prompts == ["zwx, a red car", "zwx, a dog", "zwx, a red car"]


def test_explicit_prompts_win() -> None:
    previews = PreviewSpec(count=3, prompts=["a castle"])
    assert preview_prompts(previews, trigger_word="zwx", captions=["a red car"]) == ["a castle"]

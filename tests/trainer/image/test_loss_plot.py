"""loss.png: a PNG of the raw loss and its EMA, with a log axis for wide ranges."""

from __future__ import annotations

import math
from pathlib import Path

import pytest
from PIL import Image

from lora_trainer.lossplot import loss_ema, use_log_scale, write_loss_plot
from lora_trainer.storage import LocalStore

pytestmark = pytest.mark.trainer


def test_plot_written_as_png(tmp_path: Path) -> None:
    store = LocalStore(tmp_path)
    losses = [(step, 1.0 / step) for step in range(1, 60)]
    assert write_loss_plot(losses, store) == "loss.png"
    with Image.open(tmp_path / "loss.png") as image:
        assert image.format == "PNG"
        assert image.size == (800, 450)


def test_empty_history_still_plots(tmp_path: Path) -> None:
    store = LocalStore(tmp_path)
    write_loss_plot([], store, key="plots/empty.png")
    assert store.get_bytes("plots/empty.png").startswith(b"\x89PNG")


def test_non_finite_points_skipped(tmp_path: Path) -> None:
    store = LocalStore(tmp_path)
    write_loss_plot([(1, 0.5), (2, math.nan), (3, math.inf), (4, 0.4)], store)
    assert store.get_bytes("loss.png").startswith(b"\x89PNG")


def test_ema_of_constant_is_constant() -> None:
    assert loss_ema([0.25] * 5) == pytest.approx([0.25] * 5)


def test_ema_lags_a_jump() -> None:
    averages = loss_ema([1.0, 1.0, 0.0])
    assert 0.0 < averages[-1] < 1.0


def test_log_scale_for_wide_range() -> None:
    assert use_log_scale([2.0, 0.05])
    assert not use_log_scale([0.2, 0.1])
    assert not use_log_scale([0.5, 0.0])

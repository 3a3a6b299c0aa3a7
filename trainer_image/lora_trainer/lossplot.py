"""loss.png: the training loss over optimiser steps, raw and smoothed, for any task."""

from __future__ import annotations

import io
import math
from collections.abc import Sequence

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402 - the backend must be chosen before pyplot loads

from lora_trainer.storage import ArtifactStore  # noqa: E402

EMA_BETA = 0.9
# A loss that spans more than this factor between its smallest and largest value gets a log axis.
LOG_SCALE_RATIO = 20.0


def loss_ema(losses: Sequence[float], *, beta: float = EMA_BETA) -> list[float]:
    """Return the bias-corrected exponential moving average of ``losses`` (as in Adam's moment estimates)."""
    averages = []
    average = 0.0
    for index, loss in enumerate(losses, start=1):
        average = beta * average + (1 - beta) * loss
        averages.append(average / (1 - beta**index))
    return averages


def use_log_scale(values: Sequence[float]) -> bool:
    """Tell whether ``values`` are all positive and span more than LOG_SCALE_RATIO."""
    if not values or min(values) <= 0:
        return False
    return max(values) / min(values) > LOG_SCALE_RATIO


def render_loss_plot(losses: Sequence[tuple[int, float]]) -> bytes:
    """Return a PNG of the loss: raw values light, their EMA bold, step on x."""
    figure, axes = plt.subplots(figsize=(8, 4.5), dpi=100)
    try:
        finite = [(step, loss) for step, loss in losses if math.isfinite(loss)]
        if finite:
            steps = [step for step, _ in finite]
            values = [loss for _, loss in finite]
            axes.plot(steps, values, color="tab:blue", alpha=0.3, linewidth=1, label="loss")
            axes.plot(steps, loss_ema(values), color="tab:blue", linewidth=2.2, label=f"EMA ({EMA_BETA})")
            if use_log_scale(values):
                axes.set_yscale("log")
            axes.legend(loc="upper right")
        else:
            axes.text(0.5, 0.5, "no loss recorded yet", ha="center", va="center", transform=axes.transAxes)
        axes.set_xlabel("optimiser step")
        axes.set_ylabel("loss")
        axes.grid(True, alpha=0.3)
        figure.tight_layout()
        buffer = io.BytesIO()
        figure.savefig(buffer, format="png")
        return buffer.getvalue()
    finally:
        plt.close(figure)


def write_loss_plot(losses: Sequence[tuple[int, float]], store: ArtifactStore, key: str = "loss.png") -> str:
    """Render the loss plot and write it to ``key`` in the store; return the key."""
    store.put_bytes(key, render_loss_plot(losses), content_type="image/png")
    return key

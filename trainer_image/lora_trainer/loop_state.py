"""The part of a training loop's state that image and text training share, as a checkpoint stores it."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from lora_trainer.image.metrics import LossEma
from lora_trainer.image.plan import DataPosition


@dataclass
class LoopProgress:
    """Step, data position and loss history: what every training loop's checkpoint must carry."""

    global_step: int
    position: DataPosition
    losses: list[tuple[int, float]] = field(default_factory=list)
    loss_ema: LossEma = field(default_factory=LossEma)
    last_checkpoint_step: int | None = None

    def to_json(self) -> dict[str, Any]:
        return {
            "position": self.position.to_json(),
            "losses": [[step, loss] for step, loss in self.losses],
            "lossEma": self.loss_ema.to_json(),
        }

    @staticmethod
    def fields_from_json(data: dict[str, Any], *, step: int) -> dict[str, Any]:
        """Return the constructor arguments of the shared fields, read from a checkpoint written at ``step``."""
        return {
            "global_step": step,
            "position": DataPosition.from_json(data["position"]),
            "losses": [(int(s), float(loss)) for s, loss in data["losses"]],
            "loss_ema": LossEma.from_json(data["lossEma"]),
            "last_checkpoint_step": step,
        }

"""The training processes of one run: one process, or one per GPU under `lora-train --processes N`.

Data-parallel training works without wrapping the models. Every process has the same
LoRA weights and optimiser state, trains its share of each step's micro-batches, and the
gradients are summed across processes before every process applies the same update.
The main process (rank 0) alone prepares the data, writes to the run folder and renders
previews. It shares what the others need through ``share``.
"""

from __future__ import annotations

import contextlib
import logging
import os
from collections import defaultdict
from collections.abc import Callable, Iterator, Sequence
from datetime import timedelta
from typing import TypeVar

import torch

from lora_trainer.errors import InvalidInputError

T = TypeVar("T")

# Work that only the main process does (previews, checkpoint uploads, export) keeps the
# others waiting at their next collective, which must not time out meanwhile.
PROCESS_GROUP_TIMEOUT = timedelta(hours=2)


class Processes:
    """The rank and world size of this process, and the collectives the training loop needs.

    With one process every collective is a no-op, so the single-process path runs
    exactly as it would without this class.
    """

    def __init__(self, *, rank: int = 0, world_size: int = 1, local_rank: int = 0) -> None:
        self.rank = rank
        self.world_size = world_size
        self.local_rank = local_rank

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @property
    def distributed(self) -> bool:
        return self.world_size > 1

    @classmethod
    def from_environment(cls, *, requested_device: str, log: logging.Logger) -> Processes:
        """Join the process group that the launcher's environment (RANK, WORLD_SIZE, MASTER_ADDR) describes.

        Returns a single process when WORLD_SIZE is unset or 1. accelerate's PartialState picks
        the backend (NCCL on GPUs, gloo on the CPU) and pins each process to its GPU.
        """
        world_size = int(os.environ.get("WORLD_SIZE", "1"))
        if world_size <= 1:
            return cls()
        from accelerate import PartialState

        state = PartialState(cpu=requested_device == "cpu" or not torch.cuda.is_available(), timeout=PROCESS_GROUP_TIMEOUT)
        log.info(
            "process %d of %d joined the process group (backend %s, device %s)",
            state.process_index, state.num_processes, state.backend, state.device,
        )
        return cls(rank=state.process_index, world_size=state.num_processes, local_rank=state.local_process_index)

    def device(self, base: torch.device) -> torch.device:
        """Return this process's GPU when ``base`` is CUDA; every process has its own."""
        if base.type == "cuda" and self.distributed:
            return torch.device("cuda", self.local_rank)
        return base

    def own_share(self, items: Sequence[T]) -> list[T]:
        """Return the items this process trains on: every world_size-th one, from its rank on."""
        return list(items[self.rank :: self.world_size])

    def share(self, compute: Callable[[], T]) -> T:
        """Run ``compute`` on the main process and return its result on every process.

        When it raises, the main process re-raises the error and the others raise a copy
        of it, so an invalid input ends every process with the invalid-input exit code.
        """
        if not self.distributed:
            return compute()
        envelope: list[object] = [None]
        error: Exception | None = None
        if self.is_main:
            try:
                envelope[0] = ("ok", compute())
            except Exception as caught:  # noqa: BLE001 - re-raised below after the others learn of it
                error = caught
                kind = "invalid" if isinstance(caught, InvalidInputError) else "failed"
                envelope[0] = (kind, str(caught))
        torch.distributed.broadcast_object_list(envelope, src=0)
        if error is not None:
            raise error
        kind, value = envelope[0]
        if kind == "invalid":
            raise InvalidInputError(value)
        if kind == "failed":
            raise RuntimeError(f"the main process failed: {value}")
        return value

    def sum_values(self, values: Sequence[float]) -> list[float]:
        """Return the element-wise sums of ``values`` over every process."""
        if not self.distributed:
            return list(values)
        tensor = torch.tensor(list(values), dtype=torch.float64, device=self._collective_device())
        torch.distributed.all_reduce(tensor)
        return tensor.tolist()

    def any(self, flag: bool) -> bool:
        """Return True on every process when ``flag`` is True on any, so all stop at the same step."""
        return self.sum_values([1.0 if flag else 0.0])[0] > 0

    def sum_gradients(self, parameters: Sequence[torch.nn.Parameter]) -> None:
        """Replace each parameter's gradient by its sum over every process, one flat all-reduce per dtype.

        A process that trained no micro-batch this step contributes zeros.
        """
        if not self.distributed:
            return
        by_dtype: dict[torch.dtype, list[torch.nn.Parameter]] = defaultdict(list)
        for parameter in parameters:
            if parameter.grad is None:
                parameter.grad = torch.zeros_like(parameter)
            by_dtype[parameter.grad.dtype].append(parameter)
        for group in by_dtype.values():
            flat = torch.cat([parameter.grad.reshape(-1) for parameter in group])
            torch.distributed.all_reduce(flat)
            offset = 0
            for parameter in group:
                count = parameter.grad.numel()
                parameter.grad.copy_(flat[offset : offset + count].view_as(parameter.grad))
                offset += count

    def wait_for_all(self) -> None:
        if self.distributed:
            torch.distributed.barrier()

    @contextlib.contextmanager
    def main_first(self) -> Iterator[None]:
        """Run the block on the main process first, then on the others, for example to fill a shared cache."""
        if not self.is_main:
            self.wait_for_all()
        yield
        if self.is_main:
            self.wait_for_all()

    def close(self) -> None:
        """Leave the process group, so the process exits without the backend's shutdown warnings."""
        if self.distributed and torch.distributed.is_initialized():
            torch.distributed.destroy_process_group()

    def _collective_device(self) -> torch.device:
        # NCCL reduces tensors on the GPU only; gloo on the CPU.
        if torch.distributed.get_backend() == "nccl":
            return torch.device("cuda", self.local_rank)
        return torch.device("cpu")


SINGLE_PROCESS = Processes()

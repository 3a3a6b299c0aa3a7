"""`lora-train --processes N`: one trainer process per GPU, with the exit code the operator acts on.

torchrun (torch 2.15) and `accelerate launch`, which calls it, exit 1 when any worker
fails, whatever its exit code, and after a SIGTERM they kill the workers that have not
exited within 30 seconds by default. The operator needs the trainer's own exit codes
(42 is never retried, 137 halves the batch, 143 is a clean stop), and a stop must be able
to finish its checkpoint within the pod's grace period. So this launcher starts the
workers itself, with the standard torch.distributed environment for each (RANK,
LOCAL_RANK, WORLD_SIZE, MASTER_ADDR, MASTER_PORT).
"""

from __future__ import annotations

import logging
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Sequence

from lora_trainer import EXIT_INVALID_INPUT, EXIT_OUT_OF_MEMORY, EXIT_STOPPED, OUT_OF_MEMORY_MARK
# Once one worker fails, the others are stopped, and killed after this many seconds. A worker
# blocked in a collective with a dead peer could otherwise wait until the process group timeout.
PEER_GRACE_SECONDS = 30.0
POLL_SECONDS = 0.2


def free_port() -> int:
    """Return a TCP port on the loopback interface that nothing listens on now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def worker_environment(rank: int, world_size: int, port: int) -> dict[str, str]:
    """Return this process's environment plus the torch.distributed variables of worker ``rank``."""
    environment = dict(os.environ)
    # Without it, accelerate sets 1 thread per worker and warns. The CPUs are shared among the workers instead.
    if "OMP_NUM_THREADS" not in environment:
        environment["OMP_NUM_THREADS"] = str(max(1, len(os.sched_getaffinity(0)) // world_size))
    environment.update(
        RANK=str(rank), LOCAL_RANK=str(rank), WORLD_SIZE=str(world_size), LOCAL_WORLD_SIZE=str(world_size),
        MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port),
    )
    return environment


def combined_exit_code(codes: Sequence[int]) -> int:
    """Return the one exit code of the pod from the workers' codes, listed in the order they ended.

    Invalid input wins, because no retry fixes it. Out of memory comes next, because the
    others often fail only after it, and its retry halves the batch. Otherwise the first
    failure decides. A worker killed by a signal counts as 128 plus the signal number, as
    in a shell. Workers that all finished or stopped cleanly give 0, or 143 when any stopped.
    """
    shell_codes = [128 - code if code < 0 else code for code in codes]
    for decisive in (EXIT_INVALID_INPUT, EXIT_OUT_OF_MEMORY):
        if decisive in shell_codes:
            return decisive
    for code in shell_codes:
        if code not in (0, EXIT_STOPPED):
            return code
    return EXIT_STOPPED if EXIT_STOPPED in shell_codes else 0


class WorkerGroup:
    """The running workers: started together, signalled together, stopped when one fails."""

    def __init__(
        self, command: Sequence[str], *, processes: int, log: logging.Logger, grace_seconds: float = PEER_GRACE_SECONDS
    ) -> None:
        self.log = log
        self.grace_seconds = grace_seconds
        port = free_port()
        self.workers = [
            subprocess.Popen(command, env=worker_environment(rank, processes, port)) for rank in range(processes)
        ]
        self.ended: list[int] = []
        """Exit codes in the order the workers ended."""
        self.killed: set[int] = set()
        """Ranks this launcher killed. Their SIGKILL is not an outcome of the run, so it is left out of the combined code."""
        self._kill_at: float | None = None

    def forward(self, signum: int) -> None:
        """Send ``signum`` to every running worker; on SIGTERM the trainers stop after the same step."""
        for worker in self._running():
            worker.send_signal(signum)

    def wait(self) -> int:
        """Wait until every worker has ended; return the combined exit code."""
        pending = set(range(len(self.workers)))
        own_codes: list[int] = []
        while pending:
            for rank in sorted(pending):
                code = self.workers[rank].poll()
                if code is None:
                    continue
                pending.discard(rank)
                self.ended.append(code)
                if rank not in self.killed:
                    own_codes.append(code)
                self._on_exit(rank, code)
            self._kill_overdue()
            time.sleep(POLL_SECONDS)
        return combined_exit_code(own_codes)

    def _on_exit(self, rank: int, code: int) -> None:
        if code in (0, EXIT_STOPPED) or self._kill_at is not None:
            return
        running = self._running()
        if running:
            self.log.error(
                "worker %d exited with code %d: stopping the other %d worker(s), which are killed after %.0f seconds",
                rank, code, len(running), self.grace_seconds,
            )
            self.forward(signal.SIGTERM)
            self._kill_at = time.monotonic() + self.grace_seconds

    def _kill_overdue(self) -> None:
        if self._kill_at is None or time.monotonic() < self._kill_at:
            return
        for rank, worker in enumerate(self.workers):
            if worker.poll() is not None:
                continue
            self.log.error("worker %d did not stop within %.0f seconds: killing it", rank, self.grace_seconds)
            self.killed.add(rank)
            worker.kill()
        self._kill_at = None

    def _running(self) -> list[subprocess.Popen]:
        return [worker for worker in self.workers if worker.poll() is None]


def launch(worker_arguments: Sequence[str], *, processes: int, log: logging.Logger) -> int:
    """Run ``processes`` trainer workers with ``worker_arguments`` and return the pod's exit code."""
    log.info("starting %d training processes: one per GPU, or on the CPU over gloo when no GPU is used", processes)
    command = [sys.executable, "-m", "lora_trainer.cli", *worker_arguments]
    group = WorkerGroup(command, processes=processes, log=log)

    def forward_stop(signum: int, _frame: object) -> None:
        log.warning("received %s: asking every worker to checkpoint and stop", signal.Signals(signum).name)
        group.forward(signum)

    signal.signal(signal.SIGTERM, forward_stop)
    signal.signal(signal.SIGINT, forward_stop)
    code = group.wait()
    if code == EXIT_OUT_OF_MEMORY:
        # The operator reads this last line to tell a memory failure from a kill after the grace period.
        log.error("a worker ran %s (on the GPU, or killed by the kernel): workers ended with codes %s: exiting with %d",
                  OUT_OF_MEMORY_MARK, group.ended, code)
    else:
        log.info("workers ended with codes %s: exiting with %d", group.ended, code)
    return code

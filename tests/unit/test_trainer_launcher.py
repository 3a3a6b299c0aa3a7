"""The `lora-train --processes N` launcher: worker environment, signal forwarding and exit codes."""

from __future__ import annotations

import logging
import signal
import sys
import time
from pathlib import Path

import pytest

from lora_trainer.image.cpu_threads import checkpoint_thread_count, cpu_thread_count
from lora_trainer.image.resume import warn_changed_batch_settings
from lora_trainer.launch import WorkerGroup, combined_exit_code

pytestmark = pytest.mark.unit

LOG = logging.getLogger("launcher-tests")


@pytest.mark.parametrize(
    ("codes", "expected"),
    [
        ([0, 0], 0),
        ([143, 0], 143),
        ([143, 143], 143),
        ([1, 42], 42),
        ([42, -15], 42),
        ([137, -15], 137),
        ([1, 137], 137),
        ([-9, 1], 137),
        ([137, 42], 42),
        ([0, 1], 1),
        ([143, 2, 1], 2),
        ([0, -15], 143),
    ],
)
def test_combined_exit_code(codes: list[int], expected: int) -> None:
    assert combined_exit_code(codes) == expected


def write_worker(path: Path, body: str) -> list[str]:
    """Write a worker script that runs ``body`` with its rank in ``rank``; return its command."""
    path.write_text("import os, signal, sys, time\nrank = int(os.environ['RANK'])\n" + body, encoding="utf-8")
    return [sys.executable, str(path)]


def test_workers_get_distributed_environment(tmp_path: Path) -> None:
    command = write_worker(
        tmp_path / "worker.py",
        "out = os.path.join(os.path.dirname(__file__), f'rank-{rank}.txt')\n"
        "keys = ('RANK', 'LOCAL_RANK', 'WORLD_SIZE', 'MASTER_ADDR', 'MASTER_PORT')\n"
        "open(out, 'w').write(' '.join(os.environ[key] for key in keys))\n",
    )

    code = WorkerGroup(command, processes=3, log=LOG).wait()

    assert code == 0
    lines = [(tmp_path / f"rank-{rank}.txt").read_text().split() for rank in range(3)]
    assert [line[0] for line in lines] == ["0", "1", "2"]
    assert [line[1] for line in lines] == ["0", "1", "2"]
    assert {line[2] for line in lines} == {"3"}
    assert {line[3] for line in lines} == {"127.0.0.1"}
    assert len({line[4] for line in lines}) == 1


def test_failed_worker_stops_the_others(tmp_path: Path) -> None:
    # Rank 0 ignores SIGTERM, as a process blocked in a collective would, so it must be killed.
    command = write_worker(
        tmp_path / "worker.py",
        "if rank == 1:\n    sys.exit(3)\n"
        "signal.signal(signal.SIGTERM, signal.SIG_IGN)\n"
        "time.sleep(600)\n",
    )
    group = WorkerGroup(command, processes=2, log=LOG, grace_seconds=1.0)

    code = group.wait()

    # The SIGKILL of rank 0 comes from the launcher, so it must not read as the kernel's OOM kill (137).
    assert code == 3
    assert group.ended == [3, -signal.SIGKILL]
    assert group.killed == {0}


def test_stop_is_forwarded_to_every_worker(tmp_path: Path) -> None:
    command = write_worker(
        tmp_path / "worker.py",
        "signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))\n"
        "open(os.path.join(os.path.dirname(__file__), f'ready-{rank}'), 'w').close()\n"
        "time.sleep(600)\n",
    )
    group = WorkerGroup(command, processes=2, log=LOG)
    deadline = time.monotonic() + 60
    while not all((tmp_path / f"ready-{rank}").exists() for rank in range(2)):
        assert time.monotonic() < deadline, "workers did not start"
        time.sleep(0.05)

    group.forward(signal.SIGTERM)

    assert group.wait() == 143
    assert group.ended == [143, 143]


def test_cpu_threads_are_shared_among_processes() -> None:
    assert cpu_thread_count("1", processes=2) == 1
    total = cpu_thread_count("64")
    assert cpu_thread_count("64", processes=2) == max(1, total // 2)


@pytest.mark.parametrize(
    ("metadata", "processes", "expected"),
    [
        ({"cpuThreads": 3, "batchSettings": {"processes": 2}}, 2, 3),
        ({"cpuThreads": 3, "batchSettings": {"processes": 2}}, 1, None),
        ({"cpuThreads": 3, "batchSettings": {"batchSize": 1}}, 1, 3),
        ({"cpuThreads": 3, "batchSettings": {"batchSize": 1}}, 2, None),
        ({"batchSettings": {"processes": 1}}, 1, None),
    ],
)
def test_checkpoint_threads_need_same_processes(metadata, processes, expected) -> None:
    assert checkpoint_thread_count(metadata, processes=processes) == expected


def test_old_checkpoint_counts_as_one_process() -> None:
    saved = {"batchSize": 2, "gradientAccumulation": 1}

    unchanged = warn_changed_batch_settings(saved, {**saved, "processes": 1}, step=5, log=LOG)
    changed = warn_changed_batch_settings(saved, {**saved, "processes": 2}, step=5, log=LOG)

    assert not unchanged
    assert changed

"""Child processes of the test stack: start with a log file, wait for readiness, stop by process group."""

from __future__ import annotations

import atexit
import ctypes
import logging
import os
import signal
import subprocess
import threading
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from types import FrameType

logger = logging.getLogger(__name__)

STOP_TIMEOUT_SECONDS = 10.0
LOG_TAIL_LINES = 40

_PR_SET_PDEATHSIG = 1
_live_processes: set[ComponentProcess] = set()
_live_lock = threading.Lock()
_cleanup_installed = False


class ComponentError(RuntimeError):
    """A stack component failed to start, became unready or exited."""


class ComponentProcess:
    """One running component binary whose output goes to a log file."""

    def __init__(self, *, name: str, popen: subprocess.Popen[bytes], log_file: Path) -> None:
        self.name = name
        self.popen = popen
        self.log_file = log_file

    @property
    def pid(self) -> int:
        return self.popen.pid

    def is_running(self) -> bool:
        return self.popen.poll() is None

    def log_tail(self, lines: int = LOG_TAIL_LINES) -> str:
        try:
            text = self.log_file.read_text(errors="replace")
        except OSError as error:
            return f"(cannot read {self.log_file}: {error})"
        return "\n".join(text.splitlines()[-lines:])

    def describe_failure(self, problem: str) -> str:
        """Return an error message naming the component, its exit status and its log."""
        status = "running" if self.is_running() else f"exited with code {self.popen.returncode}"
        return (
            f"{self.name}: {problem} (process {self.pid} {status}).\n"
            f"Log file: {self.log_file}\n"
            f"Last lines of the log:\n{self.log_tail()}"
        )

    def raise_if_exited(self) -> None:
        if not self.is_running():
            raise ComponentError(self.describe_failure("exited unexpectedly"))

    def stop(self, timeout: float = STOP_TIMEOUT_SECONDS) -> None:
        """Send SIGTERM to the process group, then SIGKILL after timeout seconds."""
        with _live_lock:
            _live_processes.discard(self)
        if self.is_running():
            _signal_group(self.popen, signal.SIGTERM)
            try:
                self.popen.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                logger.warning("%s did not stop within %.0f s of SIGTERM; sending SIGKILL", self.name, timeout)
        # SIGKILL the group even after the leader exited, so that no child it
        # started survives.
        _signal_group(self.popen, signal.SIGKILL)
        self.popen.wait()
        logger.info("stopped %s (process %d)", self.name, self.pid)


def _signal_group(popen: subprocess.Popen[bytes], signum: int) -> None:
    try:
        os.killpg(popen.pid, signum)
    except ProcessLookupError:
        pass


def _die_with_parent() -> None:
    # Runs in the child between fork and exec. PR_SET_PDEATHSIG makes the
    # kernel send SIGKILL when the thread that started the child exits, which
    # covers a test run killed with SIGKILL, where no cleanup code runs.
    libc = ctypes.CDLL(None, use_errno=True)
    libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)


def component_environment() -> dict[str, str]:
    """Return this process's environment without proxy settings.

    Every component talks to the others on loopback, and a proxy from the
    developer's environment must not see that traffic.
    """
    return {key: value for key, value in os.environ.items() if not key.lower().endswith("_proxy")}


def start_process(
    *,
    name: str,
    command: Sequence[str | os.PathLike[str]],
    log_dir: Path,
    env: dict[str, str] | None = None,
    cwd: Path | None = None,
) -> ComponentProcess:
    """Start command in its own process group with stdout and stderr in log_dir/<name>.log."""
    install_cleanup_handlers()
    log_file = log_dir / f"{name}.log"
    args = [os.fspath(part) for part in command]
    with open(log_file, "ab") as log:
        log.write(f"$ {' '.join(args)}\n".encode())
        log.flush()
        popen = subprocess.Popen(
            args,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            env=component_environment() if env is None else env,
            cwd=cwd,
            start_new_session=True,
            preexec_fn=_die_with_parent,
        )
    process = ComponentProcess(name=name, popen=popen, log_file=log_file)
    with _live_lock:
        _live_processes.add(process)
    logger.info("started %s (process %d), log %s", name, popen.pid, log_file)
    return process


def wait_until(
    check: Callable[[], bool],
    *,
    process: ComponentProcess,
    expected_state: str,
    timeout: float,
    interval: float = 0.2,
) -> None:
    """Call check until it returns True; raise ComponentError on timeout or when process exits.

    check may raise OSError (connection refused while the server starts); that
    counts as not ready yet.
    """
    deadline = time.monotonic() + timeout
    last_error: Exception | None = None
    while True:
        process.raise_if_exited()
        try:
            if check():
                return
        except OSError as error:
            last_error = error
        if time.monotonic() >= deadline:
            detail = f"; last error: {last_error}" if last_error else ""
            raise ComponentError(process.describe_failure(f"not {expected_state} after {timeout:.0f} s{detail}"))
        time.sleep(interval)


def stop_all() -> None:
    """Stop every component process that is still registered, newest first."""
    with _live_lock:
        processes = sorted(_live_processes, key=lambda process: process.pid, reverse=True)
    for process in processes:
        process.stop(timeout=2.0)


def install_cleanup_handlers() -> None:
    """Stop all components at interpreter exit and on SIGTERM or SIGHUP."""
    global _cleanup_installed
    if _cleanup_installed:
        return
    _cleanup_installed = True
    atexit.register(stop_all)
    # Signal handlers can only be set from the main thread. SIGINT already
    # raises KeyboardInterrupt, which unwinds fixtures and then runs atexit.
    if threading.current_thread() is threading.main_thread():
        for signum in (signal.SIGTERM, signal.SIGHUP):
            signal.signal(signum, _stop_all_and_reraise)


def _stop_all_and_reraise(signum: int, frame: FrameType | None) -> None:
    stop_all()
    # Die of the same signal, so the caller sees the usual exit status.
    signal.signal(signum, signal.SIG_DFL)
    os.kill(os.getpid(), signum)

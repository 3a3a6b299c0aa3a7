"""`lora-operator local run MANIFEST`: one LoRATraining as a subprocess of the trainer.

The trainer runs exactly as in a Job (`lora-train --config FILE`) and this process
watches its progress.json, as the operator does, to draw the progress bar. The run
folder is OUTPUT/NAMESPACE/NAME/UID, with a UID derived from the manifest, so running
the same manifest again resumes it or reports that it is complete.
"""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import yaml
from rich.console import Console

from lora_operator.api.trainer_config import OutputLocation, RunIdentity, TrainerConfig
from lora_operator.api.training import LoRATraining
from lora_operator.local.display import format_loss, make_progress_bar, print_summary, read_progress
from lora_operator.local.identity import local_run_uid
from lora_trainer.storage import ArtifactStore, open_store

POLL_SECONDS = 0.5
# Seconds the trainer gets to checkpoint after Ctrl-C before it is killed.
STOP_GRACE_SECONDS = 120


@dataclass(frozen=True)
class LocalRunOptions:
    """Location and settings of a local run."""

    output: str
    """file:///abs/folder or s3://bucket/prefix of the runs."""
    base_dir: Path
    """Folder relative file:// URIs in the manifest resolve against (the manifest's folder)."""
    device: str = "auto"
    s3_endpoint: str = ""
    s3_secure: bool = True


def build_trainer_config(training: LoRATraining, options: LocalRunOptions, *, attempt: int) -> TrainerConfig:
    """Resolve the manifest into the config the trainer runs."""
    namespace, name = training.metadata.namespace, training.metadata.name
    uid = local_run_uid(training)
    run_uri = f"{options.output.rstrip('/')}/{namespace}/{name}/{uid}"
    work_dir = ""
    if options.output.startswith("file://"):
        # Keep scratch files (converted images, latent cache) next to the runs, so a resume reuses them.
        work_dir = str(Path(options.output[len("file://"):]) / ".work" / namespace / name / uid)
    return TrainerConfig(
        run=RunIdentity(namespace=namespace, name=name, uid=uid, attempt=attempt),
        output=OutputLocation(uri=run_uri, s3_endpoint=options.s3_endpoint, s3_secure=options.s3_secure),
        spec=training.spec,
        work_dir=work_dir,
        device=options.device,
    )


def run_local(training: LoRATraining, options: LocalRunOptions, *, console: Console) -> int:
    """Run, resume or report one training; return the process exit code."""
    probe = build_trainer_config(training, options, attempt=1)
    store = open_store(probe.output.uri, endpoint=options.s3_endpoint, secure=options.s3_secure)

    finished = store.get_bytes("run.json")
    if finished is not None:
        console.print(f"[bold]{training.metadata.name}[/] is already complete; not training again.")
        print_summary(console, store=store, summary=json.loads(finished), sizes=store.list_sizes())
        return 0

    attempt = _next_attempt(store)
    newest_step = _newest_checkpoint_step(store)
    if newest_step is not None:
        console.print(f"Resuming the interrupted run of [bold]{training.metadata.name}[/] from step {newest_step}.")
    config = build_trainer_config(training, options, attempt=attempt)
    config_path = _write_config(config, options)
    log_path = config_path.with_name(f"trainer-attempt-{attempt}.log")
    console.print(f"Run folder {store.uri()}\nTrainer log {log_path}")

    # resources.gpus > 1 trains data-parallel on that many GPUs of this machine (CPU processes without one), as in a Job.
    processes = training.spec.resources.gpus if options.device != "cpu" else 1
    exit_code = _supervise(
        config_path, options=options, processes=max(processes, 1), store=store, log_path=log_path, console=console
    )
    if exit_code == 0:
        summary = json.loads(store.get_bytes("run.json") or b"{}")
        print_summary(console, store=store, summary=summary, sizes=store.list_sizes())
    else:
        _report_failure(exit_code, store=store, log_path=log_path, console=console)
    return exit_code


def _next_attempt(store: ArtifactStore) -> int:
    raw = store.get_bytes("attempts.json")
    return (len(json.loads(raw)) if raw else 0) + 1


def _newest_checkpoint_step(store: ArtifactStore) -> int | None:
    steps = [
        int(key.split("/")[1].removeprefix("step-"))
        for key in store.list_keys("checkpoints")
        if key.endswith("/complete.json")
    ]
    return max(steps) if steps else None


def _write_config(config: TrainerConfig, options: LocalRunOptions) -> Path:
    if config.work_dir:
        folder = Path(config.work_dir)
    else:
        folder = Path.home() / ".cache" / "lora-operator" / "local-configs" / config.run.uid
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "trainer-config.yaml"
    path.write_text(yaml.safe_dump(config.to_wire(), sort_keys=False, allow_unicode=True), encoding="utf-8")
    return path


def _supervise(
    config_path: Path, *, options: LocalRunOptions, processes: int, store: ArtifactStore, log_path: Path, console: Console
) -> int:
    """Start the trainer, draw its progress until it exits, and forward Ctrl-C as SIGTERM."""
    command = [sys.executable, "-m", "lora_trainer.cli", "--config", str(config_path), "--base-dir", str(options.base_dir)]
    if processes > 1:
        command += ["--processes", str(processes)]
    with log_path.open("w", encoding="utf-8") as log_file, make_progress_bar(console) as bar:
        process = subprocess.Popen(command, stdout=log_file, stderr=subprocess.STDOUT)
        task = bar.add_task("train", total=None, phase="starting", loss="-")
        try:
            while process.poll() is None:
                _refresh(bar, task, read_progress(store))
                time.sleep(POLL_SECONDS)
        except KeyboardInterrupt:
            _stop_trainer(process, console)
        _refresh(bar, task, read_progress(store))
    return process.returncode


def _stop_trainer(process: subprocess.Popen, console: Console) -> None:
    """Ask the trainer to checkpoint and stop, and give it the grace period before killing it."""
    # A second Ctrl-C would otherwise interrupt the wait with a traceback while the checkpoint is written.
    previous = signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        console.print("Stopping: the trainer checkpoints first, so the next run resumes.")
        process.send_signal(signal.SIGTERM)
        process.wait(timeout=STOP_GRACE_SECONDS)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()
    finally:
        signal.signal(signal.SIGINT, previous)


def _refresh(bar, task, progress: dict | None) -> None:  # noqa: ANN001 - rich types
    if progress is None:
        return
    total = progress.get("totalSteps") or None
    bar.update(
        task,
        total=total,
        completed=progress.get("step", 0),
        phase=progress.get("phase", ""),
        loss=format_loss(progress.get("lossEma")),
    )


def _report_failure(exit_code: int, *, store: ArtifactStore, log_path: Path, console: Console) -> None:
    progress = read_progress(store) or {}
    if exit_code in (143, -signal.SIGTERM):
        step = progress.get("step", 0)
        console.print(f"[yellow]Stopped at step {step} after a checkpoint.[/] Run the same command again to resume.")
        return
    console.print(f"[bold red]Training failed[/] (exit code {exit_code}): {progress.get('message', '')}")
    tail = log_path.read_text(encoding="utf-8", errors="replace").splitlines()[-15:]
    console.print("Last lines of the trainer log:\n" + "\n".join(tail))

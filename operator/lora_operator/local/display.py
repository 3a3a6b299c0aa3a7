"""Terminal output of local runs: a progress bar fed by progress.json, and the run summary."""

from __future__ import annotations

import json
from typing import Any

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn
from rich.table import Table

from lora_trainer.storage import ArtifactStore


def make_progress_bar(console: Console) -> Progress:
    """Build the bar: phase, step count, loss and time left."""
    return Progress(
        TextColumn("[bold]{task.fields[phase]:<10}"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("loss {task.fields[loss]}"),
        TimeRemainingColumn(),
        console=console,
    )


def read_progress(store: ArtifactStore) -> dict[str, Any] | None:
    """Return the trainer's latest progress.json, or None before its first write."""
    raw = store.get_bytes("progress.json")
    if raw is None:
        return None
    try:
        return json.loads(raw)
    except json.JSONDecodeError:
        return None


def format_loss(value: float | None) -> str:
    return "-" if value is None else f"{value:.4f}"


def human_size(size: int) -> str:
    for unit in ("B", "KiB", "MiB", "GiB"):
        if size < 1024 or unit == "GiB":
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1024
    return f"{size} B"


def print_summary(console: Console, *, store: ArtifactStore, summary: dict[str, Any], sizes: dict[str, int]) -> None:
    """Print the run folder's files and the run's key figures."""
    metrics = summary.get("metrics", {})
    dataset = summary.get("dataset", {})
    console.print(f"[bold green]Run folder[/] {store.uri()}")
    table = Table(show_header=True, header_style="bold")
    table.add_column("file")
    table.add_column("size", justify="right")
    for key, size in sorted(sizes.items()):
        if key.startswith("checkpoints/"):
            continue
        table.add_row(key, human_size(size))
    checkpoint_count = len({key.split("/")[1] for key in sizes if key.startswith("checkpoints/")})
    table.add_row(f"checkpoints/ ({checkpoint_count} kept)", human_size(
        sum(size for key, size in sizes.items() if key.startswith("checkpoints/"))))
    console.print(table)
    if summary.get("task") == "text":
        data = f"records {dataset.get('trainRecords')} train, {dataset.get('evalRecords')} eval  "
        data += f"eval loss {format_loss(metrics.get('evalLoss'))}  "
    else:
        data = f"images {dataset.get('accepted')} accepted, {dataset.get('skipped')} skipped  "
    console.print(
        f"steps {metrics.get('globalStep')}  epochs {metrics.get('epoch')}  "
        f"final loss {format_loss(metrics.get('finalLoss'))}  {data}"
        f"{metrics.get('samplesPerSecond') or 0:.1f} samples/s"
    )
    for format_name, entry in summary.get("artifacts", {}).get("weights", {}).items():
        console.print(f"weights ({format_name}): {store.uri(entry['key'])}")
    print_text_previews(console, store=store, keys=summary.get("artifacts", {}).get("previews", []))


def print_text_previews(console: Console, *, store: ArtifactStore, keys: list[str]) -> None:
    """Print the prompts and completions of the newest text preview file (previews/step-N.jsonl), if any."""
    text_keys = sorted(key for key in keys if key.endswith(".jsonl"))
    raw = store.get_bytes(text_keys[-1]) if text_keys else None
    if raw is None:
        return
    console.print(f"[bold]Previews[/] {text_keys[-1]}")
    for line in raw.decode("utf-8").splitlines():
        try:
            preview = json.loads(line)
        except json.JSONDecodeError:
            continue
        # Completions are model output: print them as plain text, never as rich markup.
        console.print(f"{preview.get('mode', '?'):>7}  {preview.get('prompt', '')!r} -> {preview.get('completion', '')!r}",
                      markup=False, highlight=False)

"""`lora-operator local notion MANIFEST`: a NotionSource's rows become local runs, one at a time.

For a team with one workstation. The same sync as in the cluster claims rows and copies
their images into the output folder. Each claimed row then runs with `run_local`, and a
monitor thread writes the run folder's progress.json back to the row meanwhile. When the run
ends, the row gets the final status, the weights, the previews and the comment, exactly
as the operator writes them.
"""

from __future__ import annotations

import argparse
import logging
import os
import threading
import time
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import yaml
from rich.console import Console

from lora_operator.api.notion_source import NotionSourceSpec
from lora_operator.api.training import LoRATraining
from lora_operator.local.runner import LocalRunOptions, build_trainer_config, run_local
from lora_operator.notion import keys
from lora_operator.notion.artifact_links import ArtifactAccess, LocalArtifacts, S3Artifacts
from lora_operator.notion.gateway import NotionApiError, NotionGateway, hide_request_urls_from_logs
from lora_operator.notion.local_sink import LocalRow, LocalSink
from lora_operator.notion.mapping import SourceRef
from lora_operator.notion.memory import WrittenValues
from lora_operator.notion.settings import NotionSettings
from lora_operator.notion.sync import SourceConfigError, SourceSync
from lora_operator.notion.writeback import RowWriter, RunView
from lora_operator.settings import OperatorSettings
from lora_operator.status.artifacts import read_artifacts, read_progress
from lora_operator.status.progress_mirror import progress_status
from lora_trainer import EXIT_INVALID_INPUT, EXIT_OUT_OF_MEMORY
from lora_trainer.storage import ArtifactStore, open_store

PROGRESS_POLL_SECONDS = 5.0
# Exit codes of a run stopped by Ctrl-C (SIGTERM to the trainer): the row stays claimed.
STOPPED_EXIT_CODES = (143, -15)
# The trainer's exit codes as the Failed condition reasons the operator gives them, for the row's localised cause.
LOCAL_FAILURE_REASONS = {EXIT_INVALID_INPUT: "InvalidInput", EXIT_OUT_OF_MEMORY: "OOMKilled"}
log = logging.getLogger("lora_operator.notion")


@dataclass(frozen=True)
class LocalNotionOptions:
    """Options of local mode: the Notion token and settings, and where runs go."""

    run: LocalRunOptions
    token: str
    state_dir: Path
    notion: NotionSettings
    once: bool = False
    """One sync pass, then run every claimed row and return, instead of polling forever."""


class ManifestError(ValueError):
    """A NotionSource manifest that cannot be used; the message names the problem."""


def load_source_manifest(path: Path) -> SourceRef:
    """Read a NotionSource manifest into a SourceRef."""
    try:
        document: Any = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError) as error:
        raise ManifestError(f"cannot read {path}: {error}") from error
    if not isinstance(document, dict) or document.get("kind") != "NotionSource":
        raise ManifestError(f"{path} is not a NotionSource manifest: expected 'kind: NotionSource'")
    metadata = document.get("metadata") or {}
    try:
        spec = NotionSourceSpec.model_validate(document.get("spec") or {})
    except ValueError as error:
        raise ManifestError(f"invalid NotionSource in {path}: {error}") from error
    return SourceRef(namespace=metadata.get("namespace", "default"), name=metadata.get("name", "notion"), spec=spec)


def run_from_arguments(arguments: argparse.Namespace, *, console: Console) -> int:
    """Run `lora-operator local notion` with its parsed command-line arguments."""
    logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    hide_request_urls_from_logs()
    try:
        source = load_source_manifest(arguments.manifest)
    except ManifestError as error:
        console.print(f"[red]{error}[/]", highlight=False)
        return 2
    token_env = arguments.token_env or source.spec.token_env
    token = os.environ.get(token_env, "").strip()
    if not token:
        console.print(f"[red]The Notion token is missing:[/] set the environment variable {token_env} "
                      "to the integration's token (ntn_...), or name another one with --token-env", highlight=False)
        return 2
    output = arguments.output
    if "://" not in output:
        output = f"file://{Path(output).resolve()}"
    state_dir = arguments.state_dir or _default_state_dir(output, source)
    settings = NotionSettings(**({"api_url": arguments.api_url} if arguments.api_url else {}))
    run_options = LocalRunOptions(output=output, base_dir=arguments.manifest.resolve().parent, device=arguments.device,
                                  s3_endpoint=arguments.s3_endpoint, s3_secure=not arguments.s3_insecure)
    options = LocalNotionOptions(run=run_options, token=token, state_dir=state_dir, notion=settings, once=arguments.once)
    return run_local_notion(source, options, console=console)


def _default_state_dir(output: str, source: SourceRef) -> Path:
    if output.startswith("file://"):
        root = Path(output.removeprefix("file://"))
    else:
        root = Path.home() / ".cache" / "lora-operator"
    return root / ".notion" / f"{source.namespace}-{source.name}"


def run_local_notion(source: SourceRef, options: LocalNotionOptions, *, console: Console) -> int:
    """Sync and run rows until interrupted (or once); return the process exit code."""
    output = options.run.output
    sink = LocalSink(options.state_dir, output=output, s3_endpoint=options.run.s3_endpoint, s3_secure=options.run.s3_secure)
    gateway = NotionGateway(token=options.token, settings=options.notion)
    artifacts = _artifacts_for(options)
    memory = WrittenValues()
    sync = SourceSync(
        source=source, gateway=gateway, sink=sink, watermark=sink.read_watermark(),
        make_writer=lambda schema: RowWriter(gateway=gateway, spec=source.spec, schema=schema, memory=memory,
                                             artifacts=artifacts),
        max_attachment_bytes=options.notion.max_attachment_bytes,
    )
    try:
        while True:
            try:
                report = sync.run_once()
            except (SourceConfigError, NotionApiError) as error:
                console.print(f"[red]Notion sync failed:[/] {error}", highlight=False)
                return 2
            sink.write_watermark(sync.watermark)
            if report.created or report.rejected:
                console.print(f"Notion: {report.created} new rows, {report.rejected} rejected.")
            for row in sink.pending():
                if _run_row(row, sync.writer, sink=sink, options=options, console=console) in STOPPED_EXIT_CODES:
                    return 130
            if options.once:
                return 0
            time.sleep(source.spec.poll_interval_seconds)
    finally:
        sync.close()
        gateway.close()


def _artifacts_for(options: LocalNotionOptions) -> ArtifactAccess:
    if not options.run.output.startswith("s3://"):
        return LocalArtifacts()
    settings = OperatorSettings(s3_endpoint=options.run.s3_endpoint, s3_secure=options.run.s3_secure)
    return S3Artifacts.from_settings(settings, options.notion)


def _run_row(row: LocalRow, writer: RowWriter, *, sink: LocalSink, options: LocalNotionOptions, console: Console) -> int:
    training = LoRATraining.model_validate(row.manifest)
    config = build_trainer_config(training, options.run, attempt=1)
    store = open_store(config.output.uri, endpoint=options.run.s3_endpoint, secure=options.run.s3_secure)
    base = _base_view(training)
    console.print(f"Notion row [bold]{base.title}[/] -> local run {training.metadata.name}")

    monitor = _ProgressMonitor(writer, base, store)
    monitor.start()
    try:
        exit_code = run_local(training, options.run, console=console)
    finally:
        monitor.stop()
    if exit_code in STOPPED_EXIT_CODES:
        return exit_code
    final = _final_view(base, store, succeeded=exit_code == 0, exit_code=exit_code)
    if writer.write(final):
        sink.mark_reported(row.page_hex, final.phase)
    return exit_code


def _base_view(training: LoRATraining) -> RunView:
    metadata = training.metadata.model_extra or {}
    annotations = metadata.get("annotations") or {}
    return RunView(
        page_id=(metadata.get("labels") or {})[keys.LABEL_PAGE],
        title=annotations.get(keys.ANNOTATION_TITLE, training.metadata.name),
        creator_id=annotations.get(keys.ANNOTATION_CREATOR, ""),
        namespace=training.metadata.namespace,
        name=training.metadata.name,
        phase="Running",
    )


def _progress_view(base: RunView, store: ArtifactStore) -> RunView:
    raw = read_progress(store)
    if raw is None:
        return base
    progress = progress_status(raw)
    return replace(base, percent=progress["percent"], loss=progress["loss"], epoch=progress["epoch"])


def _final_view(base: RunView, store: ArtifactStore, *, succeeded: bool, exit_code: int) -> RunView:
    view = _progress_view(base, store)
    if not succeeded:
        message = (read_progress(store) or {}).get("message") or f"the trainer exited with code {exit_code}"
        return replace(view, phase="Failed", message=str(message), failure_reason=LOCAL_FAILURE_REASONS.get(exit_code, ""))
    artifacts = read_artifacts(store)
    weights = artifacts["weights"].get("kohya") or artifacts["weights"].get("diffusers") or ""
    return replace(view, phase="Succeeded", percent=100.0, weights_uri=weights, preview_uris=tuple(artifacts["previews"]))


class _ProgressMonitor:
    """Writes progress.json back to the row while the run goes on; only changes cost a request."""

    def __init__(self, writer: RowWriter, base: RunView, store: ArtifactStore) -> None:
        self._writer = writer
        self._base = base
        self._store = store
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="notion-progress", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=60)

    def _loop(self) -> None:
        while True:
            try:
                self._writer.write(_progress_view(self._base, self._store))
            except (NotionApiError, OSError) as error:
                # The next poll tries again; the final write-back does not depend on this one.
                log.warning("progress write-back to page %s failed: %s", self._base.page_id, error)
            if self._stop.wait(PROGRESS_POLL_SECONDS):
                return

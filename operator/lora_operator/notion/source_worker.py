"""The poll loop of one NotionSource in the operator, and the status it writes.

Each pass reads the token Secret and runs one sync pass. It then queues a write-back for
every training of the source that has not reported its end yet, which also covers
trainings that changed while the operator was down. Last, it writes status.lastSyncTime,
the watermark, the counts and the Ready condition through the status subresource.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from typing import Any

from pydantic import ValidationError

from lora_operator.api.notion_source import NotionSourceSpec, NotionSourceStatus
from lora_operator.kube import KubeError, now_rfc3339
from lora_operator.notion import keys
from lora_operator.notion.gateway import GatewayPool, NotionApiError, NotionGateway
from lora_operator.notion.kube_access import NotionKube
from lora_operator.notion.mapping import SourceRef
from lora_operator.notion.memory import WrittenValues
from lora_operator.notion.rows import SourceSchema
from lora_operator.notion.sync import SourceConfigError, SourceSync, SyncReport, TrainingSink
from lora_operator.notion.writeback import RowWriter
from lora_operator.status.conditions import set_condition

log = logging.getLogger("lora_operator.notion")
RETRY_AFTER_ERROR_SECONDS = 30.0


class SourceWorker:
    """A thread that syncs one NotionSource every poll interval, and its write-back writer."""

    def __init__(
        self,
        body: dict[str, Any],
        *,
        kube: NotionKube,
        pool: GatewayPool,
        sink: TrainingSink,
        make_writer: Callable[[NotionGateway, NotionSourceSpec, SourceSchema, WrittenValues], RowWriter],
        queue_write_back: Callable[[str, str, bool], None],
        max_attachment_bytes: int,
    ) -> None:
        metadata = body["metadata"]
        self.namespace, self.name = metadata["namespace"], metadata["name"]
        self._kube = kube
        self._pool = pool
        self._sink = sink
        self._make_writer = make_writer
        self._queue_write_back = queue_write_back
        self._max_attachment_bytes = max_attachment_bytes
        self.memory = WrittenValues()
        self._lock = threading.Lock()
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._sync: SourceSync | None = None
        self._sync_key: tuple[int, str] = (0, "")
        status = NotionSourceStatus.model_validate(body.get("status") or {})
        self._counts = status.counts
        self._watermark = status.watermark
        self._conditions = [condition.to_wire() for condition in status.conditions]
        self._body = body
        self._thread = threading.Thread(target=self._loop, name=f"notion-{self.name}", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._wake.set()

    def update(self, body: dict[str, Any]) -> None:
        """Take a newer version of the resource; a changed spec is synced at once."""
        with self._lock:
            changed = body["metadata"].get("generation") != self._body["metadata"].get("generation")
            self._body = body
        if changed:
            self._wake.set()

    def writer(self) -> RowWriter:
        """Return the row writer of the current spec; raise when the source cannot sync yet."""
        with self._lock:
            sync = self._sync
        return (sync or self._current_sync()).writer

    # The loop.

    def _loop(self) -> None:
        while not self._stop.is_set():
            interval = self._run_pass()
            self._wake.wait(interval)
            self._wake.clear()
        if self._sync is not None:
            self._sync.close()

    def _run_pass(self) -> float:
        generation = self._body["metadata"].get("generation", 0)
        try:
            sync = self._current_sync()
            report = SyncReport() if sync.source.spec.suspend else sync.run_once()
            self._watermark = sync.watermark
            self._queue_unreported(sync.source)
        except (ValidationError, SourceConfigError, NotionApiError, KubeError, OSError) as error:
            message = _describe(error)
            log.error("[notion %s/%s] sync failed: %s; retrying in %.0f s", self.namespace, self.name, message,
                      RETRY_AFTER_ERROR_SECONDS)
            self._counts.sync_errors += 1
            self._write_status(generation, ready=False, reason=type(error).__name__, message=message)
            return RETRY_AFTER_ERROR_SECONDS
        self._counts.trainings_created += report.created
        self._counts.rows_rejected += report.rejected
        if report.errors:
            self._counts.sync_errors += 1
            message = f"{len(report.errors)} rows not synced, retried at the next pass; first: {report.errors[0]}"
            self._write_status(generation, ready=False, reason="RowsNotSynced", message=message[:1000])
        else:
            message = f"last pass: {report.created} created, {report.rejected} rejected, {report.existing} already synced"
            self._write_status(generation, ready=True, reason="Synced", message=message)
        return float(sync.source.spec.poll_interval_seconds)

    def _current_sync(self) -> SourceSync:
        """Return the SourceSync of the current spec and token, making a new one when either changed."""
        with self._lock:
            body = self._body
            spec = NotionSourceSpec.model_validate(body.get("spec") or {})
            token = self._kube.read_secret_key(self.namespace, spec.token_secret.name, spec.token_secret.key)
            key = (body["metadata"].get("generation", 0), token)
            if self._sync is None or key != self._sync_key:
                if self._sync is not None:
                    self._sync.close()
                gateway = self._pool.for_token(token)
                source = SourceRef(namespace=self.namespace, name=self.name, spec=spec)
                self._sync = SourceSync(
                    source=source, gateway=gateway, sink=self._sink,
                    make_writer=lambda schema: self._make_writer(gateway, spec, schema, self.memory),
                    max_attachment_bytes=self._max_attachment_bytes, watermark=self._watermark,
                    on_existing=self._queue_write_back,
                )
                self._sync_key = key
            return self._sync

    def _queue_unreported(self, source: SourceRef) -> None:
        for training in self._kube.list_source_trainings(source.target_namespace, self.name):
            metadata = training["metadata"]
            if (metadata.get("annotations") or {}).get(keys.ANNOTATION_SOURCE) != f"{self.namespace}/{self.name}":
                continue
            phase = (training.get("status") or {}).get("phase", "")
            if (metadata.get("annotations") or {}).get(keys.ANNOTATION_REPORTED) != phase:
                self._queue_write_back(metadata["namespace"], metadata["name"], False)

    def _write_status(self, generation: int, *, ready: bool, reason: str, message: str) -> None:
        self._conditions = set_condition(
            self._conditions, condition_type="Ready", status="True" if ready else "False",
            reason=reason, message=message, generation=generation,
        )
        status = {
            "observedGeneration": generation,
            "lastSyncTime": now_rfc3339(),
            "watermark": self._watermark,
            "counts": self._counts.to_wire(),
            "conditions": self._conditions,
        }
        try:
            self._kube.patch_source_status(self.namespace, self.name, status)
        except KubeError as error:
            log.error("[notion %s/%s] status not written: %s", self.namespace, self.name, error)


def _describe(error: Exception) -> str:
    if isinstance(error, ValidationError):
        problems = "; ".join(f"spec.{'.'.join(str(part) for part in item['loc'])}: {item['msg']}" for item in error.errors())
        return f"invalid NotionSource spec: {problems}"
    return str(error)

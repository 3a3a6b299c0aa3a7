"""The Notion integration inside the operator: NotionSource watch, poll threads and write-back.

`register_notion` adds kopf handlers to the operator's registry. NotionSource events
start, update and stop one SourceWorker thread per source. Events of trainings that carry
the page-id label queue a write-back on a deduplicating work queue, so a burst of status
changes costs one Notion request per training, and none when nothing the row shows changed.
"""

from __future__ import annotations

import logging
import threading
from typing import Any

import kopf

from lora_operator.api.base import API_GROUP, API_VERSION
from lora_operator.api.notion_source import NotionSourceSpec
from lora_operator.kube import Kube, KubeError, NotFound, PLURAL
from lora_operator.notion import keys
from lora_operator.notion.artifact_links import S3Artifacts
from lora_operator.notion.cluster_sink import ClusterSink
from lora_operator.notion.gateway import GatewayPool, NotionApiError, NotionGateway, hide_request_urls_from_logs
from lora_operator.notion.kube_access import SOURCE_PLURAL, NotionKube
from lora_operator.notion.memory import WrittenValues
from lora_operator.notion.rows import SourceSchema
from lora_operator.notion.settings import NotionSettings
from lora_operator.notion.source_worker import SourceWorker
from lora_operator.notion.sync import SourceConfigError
from lora_operator.notion.training_view import view_from_training
from lora_operator.notion.writeback import RowWriter
from lora_operator.settings import OperatorSettings
from lora_operator.workqueue import WorkQueue

log = logging.getLogger("lora_operator.notion")


class NotionController:
    """Every NotionSource's worker, and the write-back queue they share."""

    def __init__(self, *, kube: Kube, settings: OperatorSettings, notion_settings: NotionSettings) -> None:
        self.kube = NotionKube(kube)
        self.settings = settings
        self.notion_settings = notion_settings
        self.pool = GatewayPool(notion_settings)
        self.artifacts = S3Artifacts.from_settings(settings, notion_settings)
        self.sink = ClusterSink(self.kube, s3=self.artifacts.client, default_bucket=settings.s3_bucket)
        self.workers: dict[tuple[str, str], SourceWorker] = {}
        self._lock = threading.Lock()
        # Trainings whose row was submitted again: their state is written back once more, without a comment.
        self._rewrite: set[tuple[str, str]] = set()
        self.write_backs = WorkQueue(self._write_back, workers=notion_settings.writeback_workers)

    def start(self) -> None:
        self.write_backs.start()

    def stop(self) -> None:
        with self._lock:
            workers = list(self.workers.values())
            self.workers.clear()
        for worker in workers:
            worker.stop()
        self.write_backs.stop()

    def source_changed(self, event_type: str, body: dict[str, Any]) -> None:
        key = (body["metadata"]["namespace"], body["metadata"]["name"])
        with self._lock:
            worker = self.workers.get(key)
            if event_type == "DELETED":
                self.workers.pop(key, None)
            elif worker is None:
                self.workers[key] = self._new_worker(body)
                self.workers[key].start()
                log.info("[notion %s/%s] syncing started", *key)
                return
        if worker is None:
            return
        if event_type == "DELETED":
            worker.stop()
            log.info("[notion %s/%s] syncing stopped: the NotionSource was deleted", *key)
        else:
            worker.update(body)

    def training_changed(self, namespace: str, name: str) -> None:
        self.write_backs.add(namespace, name)

    def queue_write_back(self, namespace: str, name: str, resubmitted: bool) -> None:
        if resubmitted:
            with self._lock:
                self._rewrite.add((namespace, name))
        self.write_backs.add(namespace, name)

    def _new_worker(self, body: dict[str, Any]) -> SourceWorker:
        return SourceWorker(
            body, kube=self.kube, pool=self.pool, sink=self.sink, make_writer=self._make_writer,
            queue_write_back=self.queue_write_back, max_attachment_bytes=self.notion_settings.max_attachment_bytes,
        )

    def _make_writer(
        self, gateway: NotionGateway, spec: NotionSourceSpec, schema: SourceSchema, memory: WrittenValues
    ) -> RowWriter:
        return RowWriter(gateway=gateway, spec=spec, schema=schema, memory=memory, artifacts=self.artifacts)

    def _write_back(self, namespace: str, name: str) -> None:
        try:
            body = self.kube.get_training(namespace, name)
        except NotFound:
            return
        view = view_from_training(body)
        annotations = body["metadata"].get("annotations") or {}
        with self._lock:
            rewrite = (namespace, name) in self._rewrite
            self._rewrite.discard((namespace, name))
        reported = annotations.get(keys.ANNOTATION_REPORTED) == getattr(view, "phase", None)
        if view is None or (reported and not rewrite):
            return
        source = tuple(annotations.get(keys.ANNOTATION_SOURCE, "").split("/", 1))
        with self._lock:
            worker = self.workers.get(source)  # type: ignore[arg-type]
        if worker is None:
            return  # The source's worker queues this training again once it runs.
        try:
            if worker.writer().write(view, comment=not reported):
                self.kube.annotate_training(namespace, name, {keys.ANNOTATION_REPORTED: view.phase})
                log.info("[notion %s/%s] row %s shows the end of training %s/%s (%s)",
                         *source, view.page_id, namespace, name, view.phase)
        except (NotionApiError, SourceConfigError, KubeError, OSError, ValueError) as error:
            # The source's next pass queues the write-back again.
            log.error("[notion %s/%s] write-back of %s/%s failed: %s", *source, namespace, name, error)


def register_notion(registry: kopf.OperatorRegistry, *, kube: Kube, settings: OperatorSettings) -> None:
    """Add the NotionSource and write-back handlers to the operator's kopf registry."""
    state: dict[str, NotionController] = {}

    def controller() -> NotionController | None:
        return state.get("controller")

    @kopf.on.startup(registry=registry)
    def start_notion(**_: Any) -> None:
        hide_request_urls_from_logs()
        try:
            state["controller"] = NotionController(kube=kube, settings=settings, notion_settings=NotionSettings())
        except ValueError as error:
            log.error("Notion integration off: %s", error)
            return
        state["controller"].start()

    @kopf.on.cleanup(registry=registry)
    def stop_notion(**_: Any) -> None:
        if controller():
            controller().stop()

    @kopf.on.event(API_GROUP, API_VERSION, SOURCE_PLURAL, registry=registry)
    def notion_source_changed(event: dict[str, Any], **_: Any) -> None:
        if controller() and event.get("object"):
            controller().source_changed(event.get("type") or "", event["object"])

    @kopf.on.event(API_GROUP, API_VERSION, PLURAL, labels={keys.LABEL_PAGE: kopf.PRESENT}, registry=registry)
    def notion_training_changed(event: dict[str, Any], namespace: str, name: str, **_: Any) -> None:
        if controller() and event.get("type") != "DELETED":
            controller().training_changed(namespace, name)

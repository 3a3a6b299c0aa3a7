"""One sync pass of a NotionSource: find submitted rows and turn each into one training.

Each row goes through these steps in order. Look the training up by the page-id label,
because a crash after creation may have left one. Map the row, or reject it with a
comment. Claim it by writing the queued status, copy its images into the dataset folder,
and create the training. The lookup comes before every creation, so the next pass
finishes what a crash interrupted and never makes a second training. Rows are found with data_sources.query: the submitted or queued status, edited
at or after the watermark minus one minute, because Notion rounds last_edited_time down
to the minute.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from datetime import datetime, timedelta
from typing import Any, Protocol

import httpx

from lora_operator.api.training_spec import LoRATrainingSpec
from lora_operator.kube import KubeError
from lora_operator.notion.attachments import AttachmentUnavailable, copy_attachments
from lora_operator.notion.gateway import NotionApiError, NotionGateway
from lora_operator.notion.mapping import SourceRef, TrainingPlan, map_row, rejection_text
from lora_operator.notion.messages import Localizer
from lora_operator.notion.overrides import RowRejected
from lora_operator.notion.rows import NotionRow, SourceSchema, read_row
from lora_operator.notion.url_guard import UrlGuard
from lora_operator.notion.values import StatusNames
from lora_operator.notion.writeback import RowWriter, RunView
from lora_trainer.storage import ArtifactStore

WATERMARK_MARGIN = timedelta(minutes=1)
DOWNLOAD_TIMEOUT = httpx.Timeout(connect=10.0, read=60.0, write=60.0, pool=10.0)
log = logging.getLogger("lora_operator.notion")


class TrainingSink(Protocol):
    """The place trainings are created in: the cluster, or the local run queue."""

    def find(self, namespace: str, page_hex: str) -> str | None:
        """Return the name of the training of a page, or None."""

    def dataset_uri(self, spec: LoRATrainingSpec, namespace: str, name: str) -> str:
        """Return the folder that a training's images are copied into."""

    def open_dataset(self, uri: str) -> ArtifactStore: ...

    def create(self, manifest: dict[str, Any]) -> None:
        """Create the training; one that exists already with the same page label counts as created."""


class SourceConfigError(ValueError):
    """The NotionSource does not fit its database; the message names the property and the fix."""


@dataclass
class SyncReport:
    """Counts of one sync pass."""

    seen: int = 0
    created: int = 0
    rejected: int = 0
    existing: int = 0
    errors: list[str] = field(default_factory=list)


class SourceSync:
    """Sync passes of one NotionSource spec; keeps the watermark and the rows it has handled."""

    def __init__(
        self,
        *,
        source: SourceRef,
        gateway: NotionGateway,
        sink: TrainingSink,
        make_writer: Callable[[SourceSchema], RowWriter],
        max_attachment_bytes: int,
        watermark: str = "",
        on_existing: Callable[[str, str, bool], None] = lambda namespace, name, resubmitted: None,
    ) -> None:
        self.source = source
        self.gateway = gateway
        self.sink = sink
        self.watermark = watermark
        self._make_writer = make_writer
        self._max_attachment_bytes = max_attachment_bytes
        self._on_existing = on_existing
        self._guard = UrlGuard.from_policy(source.spec.external_urls)
        # Page id -> (last_edited_time, status) as this sync left the row. Notion rounds the
        # time to the minute, so a row edited again within that minute differs by status only.
        self._handled: dict[str, tuple[str, str]] = {}
        self._writer: RowWriter | None = None
        self._writer_lock = threading.Lock()
        self.data_source_id = source.spec.data_source_id
        self._http = httpx.Client(timeout=DOWNLOAD_TIMEOUT)
        self._external_http = self._guard.client(timeout=DOWNLOAD_TIMEOUT)

    def close(self) -> None:
        self._http.close()
        self._external_http.close()

    @property
    def writer(self) -> RowWriter:
        """The row writer, made once the data source's schema is known (one request)."""
        with self._writer_lock:
            if self._writer is None:
                if not self.data_source_id:
                    self.data_source_id = self._only_data_source()
                data_source = self.gateway.retrieve_data_source(self.data_source_id)
                schema = SourceSchema.from_data_source(data_source)
                check_schema(schema, self.source, data_source_id=self.data_source_id)
                self._writer = self._make_writer(schema)
            return self._writer

    def run_once(self) -> SyncReport:
        """Handle every submitted or claimed row edited since the watermark."""
        writer = self.writer
        report = SyncReport()
        newest, oldest_failed = self.watermark, ""
        # Read every result page first: claims edit rows, which would move them within the sort order.
        pages = list(self.gateway.query_pages(self.data_source_id, filter=self._filter(writer),
                                              sorts=[{"timestamp": "last_edited_time", "direction": "ascending"}]))
        for page in pages:
            row = read_row(page, self.source.spec.properties)
            newest = max(newest, row.last_edited_time)
            if self._handled.get(row.page_id) == (row.last_edited_time, row.status):
                continue
            report.seen += 1
            try:
                left_status = self._handle(row, writer, report)
                self._handled[row.page_id] = (row.last_edited_time, left_status)
            except (NotionApiError, AttachmentUnavailable, KubeError, OSError) as error:
                log.error("[notion %s/%s] row %s not synced: %s; retrying at the next pass",
                          self.source.namespace, self.source.name, row.page_id, error)
                report.errors.append(f"row {row.page_id}: {error}")
                oldest_failed = min(oldest_failed or row.last_edited_time, row.last_edited_time)
        # A failed row keeps the watermark at or before its time, so the next query finds it again.
        # NOTE: a row that Notion's query results show more than a minute after its last edit is missed.
        self.watermark = min(newest, oldest_failed) if oldest_failed else newest
        return report

    def _only_data_source(self) -> str:
        database_id = self.source.spec.database_id
        sources = self.gateway.retrieve_database(database_id).get("data_sources") or []
        if len(sources) != 1:
            listed = ", ".join(f"{item.get('name', '')!r} ({item.get('id')})" for item in sources) or "none"
            raise SourceConfigError(
                f"database {database_id} has {len(sources)} data sources ({listed}); set spec.dataSourceId to one of them"
            )
        return sources[0]["id"]

    def _filter(self, writer: RowWriter) -> dict[str, Any]:
        names = self.source.spec.properties
        kind = writer.schema.type_of(names.status)
        statuses = writer.statuses
        by_status: dict[str, Any] = {
            "or": [{"property": names.status, kind: {"equals": value}} for value in (statuses.submitted, statuses.queued)]
        }
        if not self.watermark:
            return by_status
        since = parse_time(self.watermark) - WATERMARK_MARGIN
        edited = {"timestamp": "last_edited_time", "last_edited_time": {"on_or_after": format_time(since)}}
        return {"and": [by_status, edited]}

    def _handle(self, row: NotionRow, writer: RowWriter, report: SyncReport) -> str:
        """Handle one row and return the status it is left with."""
        namespace = self.source.target_namespace
        existing = self.sink.find(namespace, row.page_hex)
        if existing:
            report.existing += 1
            resubmitted = row.status == writer.statuses.submitted
            if resubmitted:
                # NOTE: a resubmitted row does not train again; its row shows the existing training once more.
                writer.memory.forget(row.page_hex)
            self._on_existing(namespace, existing, resubmitted)
            return row.status
        try:
            plan = map_row(row, self.source, dataset_uri_for=self.sink.dataset_uri, submitter_email=self._email)
        except RowRejected as rejection:
            return self._reject(row, writer, rejection, report)
        if row.status != writer.statuses.queued:
            writer.write(RunView(page_id=row.page_id, title=row.title, creator_id=row.creator_id,
                                 namespace=plan.namespace, name=plan.name, phase="Pending"))
        try:
            self._copy_images(row, plan)
        except RowRejected as rejection:
            return self._reject(row, writer, rejection, report)
        self.sink.create(plan.manifest(self.source))
        report.created += 1
        log.info("[notion %s/%s] row %s (%r) became LoRATraining %s/%s", self.source.namespace, self.source.name,
                 row.page_id, row.title, plan.namespace, plan.name)
        return writer.statuses.queued

    def _copy_images(self, row: NotionRow, plan: TrainingPlan) -> None:
        def refresh() -> NotionRow:
            return read_row(self.gateway.retrieve_page(row.page_id), self.source.spec.properties)

        copy_attachments(row, store=self.sink.open_dataset(plan.dataset_uri), refresh=refresh, guard=self._guard,
                         http=self._http, external_http=self._external_http, max_bytes=self._max_attachment_bytes)

    def _reject(self, row: NotionRow, writer: RowWriter, rejection: RowRejected, report: SyncReport) -> str:
        reason = rejection_text(rejection, writer.localizer)
        writer.reject(page_id=row.page_id, title=row.title, creator_id=row.creator_id, reason=reason)
        report.rejected += 1
        log.info("[notion %s/%s] row %s (%r) rejected: %s", self.source.namespace, self.source.name,
                 row.page_id, row.title, reason)
        return writer.statuses.rejected

    def _email(self, user_id: str) -> str:
        user = self.gateway.retrieve_user(user_id)
        return ((user.get("person") or {}).get("email")) or ""


def check_schema(schema: SourceSchema, source: SourceRef, *, data_source_id: str) -> None:
    """Raise SourceConfigError when a property the source needs is missing or of the wrong type."""
    names = source.spec.properties
    required = {names.status: ("status", "select"), names.type: ("select", "status", "rich_text", "title"),
                names.images: ("files",)}
    for name, kinds in required.items():
        kind = schema.type_of(name)
        if kind not in kinds:
            found = f"a {kind} property" if kind else "missing"
            raise SourceConfigError(
                f"property {name!r} of data source {data_source_id} is {found}; it must be one of "
                f"{', '.join(kinds)}: rename the column or set spec.properties"
            )
    status = schema.properties[names.status]
    if status.type == "status":
        wanted = asdict(StatusNames.resolve(source.spec, Localizer(source.spec.locale))).values()
        missing = [value for value in wanted if value not in status.options]
        if missing:
            raise SourceConfigError(
                f"status property {names.status!r} has no option {', '.join(repr(value) for value in missing)}; "
                "add the options in Notion (the API cannot add status options) or set spec.statusValues"
            )


def parse_time(value: str) -> datetime:
    return datetime.fromisoformat(value.replace("Z", "+00:00"))


def format_time(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%S.000Z")

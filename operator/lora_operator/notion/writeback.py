"""Write a training's state into its Notion row: one pages.update with only what changed.

While a training runs, its row shows the status, the resource name, progress, loss and
epoch. A success adds the weights (uploaded when small enough, else linked), a presigned
download link with the s3:// URI, and the previews. A failure adds the error. When a run ends, a
comment mentions the row's creator. The claim and a rejection go through here too, so
the memory of written values covers every write.
"""

from __future__ import annotations

import logging
import mimetypes
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from pathlib import PurePosixPath
from typing import Any

from lora_operator.api.notion_source import NotionSourceSpec
from lora_operator.notion.artifact_links import ArtifactAccess
from lora_operator.notion.gateway import NotionApiError, NotionGateway
from lora_operator.notion.memory import WrittenValues, signature
from lora_operator.notion.messages import Localizer
from lora_operator.notion.rows import SourceSchema, compact_id
from lora_operator.notion.values import (
    StatusNames,
    external_file,
    files_value,
    mention_item,
    number_value,
    status_value,
    text_item,
    text_value,
    truncate,
    uploaded_file,
)

TERMINAL_PHASES = ("Succeeded", "Failed")
log = logging.getLogger("lora_operator.notion")

Builder = Callable[[], "dict[str, Any] | None"]


@dataclass(frozen=True)
class RunView:
    """The state of one training as its row shows it, from a LoRATraining status or a local run folder."""

    page_id: str
    title: str
    creator_id: str
    namespace: str
    name: str
    phase: str
    message: str = ""
    percent: float | None = None
    loss: float | None = None
    epoch: int | None = None
    weights_uri: str = ""
    preview_uris: tuple[str, ...] = ()
    failure_reason: str = ""
    """The Failed condition's reason, such as InvalidInput or OOMKilled; empty unless Failed."""

    @property
    def terminal(self) -> bool:
        return self.phase in TERMINAL_PHASES


class RowWriter:
    """Writes RunViews, rejections and comments for the rows of one NotionSource."""

    def __init__(
        self,
        *,
        gateway: NotionGateway,
        spec: NotionSourceSpec,
        schema: SourceSchema,
        memory: WrittenValues,
        artifacts: ArtifactAccess,
        now: Callable[[], datetime] = lambda: datetime.now(timezone.utc),
    ) -> None:
        self.gateway = gateway
        self.spec = spec
        self.schema = schema
        self.memory = memory
        self.artifacts = artifacts
        self.localizer = Localizer(spec.locale)
        self.statuses = StatusNames.resolve(spec, self.localizer)
        self._now = now

    def write(self, view: RunView, *, comment: bool = True) -> bool:
        """Send the properties that changed; for an ended run also post the comment, unless ``comment`` is False.

        Returns True when the run has ended and its final write (and comment) are done.
        """
        self._send(view.page_id, self._due(view))
        if not view.terminal:
            return False
        if comment:
            self.comment(view.page_id, view.creator_id, self._final_comment(view))
        return True

    def reject(self, *, page_id: str, title: str, creator_id: str, reason: str) -> None:
        """Mark a row rejected with the reason, and comment to its creator (two requests)."""
        due: dict[str, tuple[str, Builder]] = {}
        names = self.spec.properties
        self._add_status(due, self.statuses.rejected)
        self._add_text(due, names.error, reason)
        self._add_text(due, names.resource, "")
        self._send(page_id, due)
        text = self.localizer.text("comment.rejected", title=title, reason=reason)
        self.comment(page_id, creator_id, text)

    def comment(self, page_id: str, creator_id: str, text: str) -> None:
        items = [mention_item(creator_id)] if creator_id else []
        items.append(text_item(text if creator_id else text.lstrip()))
        self.gateway.create_comment(page_id, items)

    # What is due for a view, as (signature, builder) per property name.

    def _due(self, view: RunView) -> dict[str, tuple[str, Builder]]:
        names = self.spec.properties
        due: dict[str, tuple[str, Builder]] = {}
        self._add_status(due, self.statuses.for_phase(view.phase))
        self._add_text(due, names.resource, f"{view.namespace}/{view.name}")
        self._add_text(due, names.error, self._failure_text(view) if view.phase == "Failed" else "")
        if view.percent is not None:
            percent_format = self.schema.properties.get(names.progress)
            scale = 0.01 if percent_format and percent_format.number_format == "percent" else 1.0
            self._add_number(due, names.progress, view.percent, scale=scale)
            self._add_number(due, names.loss, None if view.loss is None else round(view.loss, 5))
            self._add_number(due, names.epoch, view.epoch)
        if view.phase == "Succeeded" and view.weights_uri:
            link = _Link(self, view.weights_uri)
            self._add(due, names.weights, view.weights_uri, lambda kind: self._weights_value(kind, view.weights_uri, link))
            self._add(due, names.download, view.weights_uri, lambda kind: text_value(kind, link.parts()))
        previews = list(view.preview_uris[-self.spec.max_previews:]) if self.spec.max_previews else []
        if view.phase == "Succeeded" and previews:
            self._add(due, names.previews, previews, lambda kind: files_value(kind, self._upload_previews(previews)))
        return due

    def _add(self, due: dict[str, tuple[str, Builder]], name: str, value: Any, build: Callable[[str], Any]) -> None:
        kind = self.schema.type_of(name) if name else ""
        if kind:
            due[name] = (signature(value), lambda: build(kind))

    def _add_status(self, due: dict[str, tuple[str, Builder]], status: str) -> None:
        self._add(due, self.spec.properties.status, status, lambda kind: status_value(kind, status))

    def _add_text(self, due: dict[str, tuple[str, Builder]], name: str, text: str) -> None:
        self._add(due, name, truncate(text), lambda kind: text_value(kind, [(text, "")] if text else []))

    def _add_number(self, due: dict[str, tuple[str, Builder]], name: str, number: float | None, *, scale: float = 1.0) -> None:
        self._add(due, name, number, lambda kind: number_value(kind, number, percent_scale=scale))

    def _send(self, page_id: str, due: dict[str, tuple[str, Builder]]) -> None:
        page = compact_id(page_id)
        changed = self.memory.changed(page, {name: entry[0] for name, entry in due.items()})
        if not changed:
            return
        properties = {}
        for name in sorted(changed):
            value = due[name][1]()
            if value is not None:
                properties[name] = value
        if properties:
            self.gateway.update_page(page_id, properties)
        self.memory.record(page, {name: due[name][0] for name in changed})

    # Files.

    def _weights_value(self, kind: str, uri: str, link: _Link) -> dict[str, Any] | None:
        name = PurePosixPath(uri).name
        if kind != "files":
            return text_value(kind, link.parts())
        size = self.artifacts.size(uri)
        if size is not None and 0 < size <= self.spec.max_upload_bytes:
            upload_id = self._upload(name, uri, content_type="application/octet-stream")
            if upload_id:
                return files_value(kind, [uploaded_file(name, upload_id)])
        return files_value(kind, [external_file(name, link.url())])

    def _upload_previews(self, uris: list[str]) -> list[dict[str, Any]]:
        entries = []
        for uri in uris:
            name = PurePosixPath(uri).name
            # Text runs preview completions as JSON Lines, which Notion shows as a plain-text file.
            content_type = "text/plain" if name.endswith(".jsonl") else mimetypes.guess_type(name)[0] or "image/png"
            upload_id = self._upload(name, uri, content_type=content_type)
            if upload_id:
                entries.append(uploaded_file(name, upload_id))
        return entries

    def _upload(self, name: str, uri: str, *, content_type: str) -> str:
        """Upload one artifact; return "" when Notion rejects the file (for example over the plan's size limit)."""
        try:
            return self.gateway.upload_file(filename=name, content_type=content_type, data=self.artifacts.read(uri))
        except NotionApiError as error:
            if error.status != 400:
                raise
            log.warning("Notion rejected the upload of %s (%s); linking the file instead", uri, error.detail)
            return ""

    def _final_comment(self, view: RunView) -> str:
        if view.phase == "Failed":
            return self.localizer.text(
                "comment.failed", title=view.title, cause=self._failure_cause(view.failure_reason),
                error=truncate(view.message, 1500),
            )
        loss = self.localizer.text("value.none") if view.loss is None else f"{view.loss:.4f}"
        column = self.spec.properties.weights or self.spec.properties.download
        return self.localizer.text("comment.succeeded", title=view.title, loss=loss, property=column)

    def _failure_text(self, view: RunView) -> str:
        """Return the error column of a failed row: the localised cause, then the operator's message."""
        return self.localizer.text("error.failed", cause=self._failure_cause(view.failure_reason), error=view.message)

    def _failure_cause(self, reason: str) -> str:
        """Return the localised cause for a Failed condition reason; the details stay in the operator's English."""
        key = f"failure.{reason}"
        return self.localizer.text(key if self.localizer.has(key) else "failure.other")


class _Link:
    """The presigned weights link, made once per write and shared by the properties that show it."""

    def __init__(self, writer: RowWriter, uri: str) -> None:
        self._writer = writer
        self._uri = uri
        self._url = ""

    def url(self) -> str:
        if not self._url:
            self._url = self._writer.artifacts.link(self._uri, expiry_seconds=self._writer.spec.weights_link_expiry_seconds)
        return self._url

    def parts(self) -> list[tuple[str, str]]:
        expiry = self._writer._now() + timedelta(seconds=self._writer.spec.weights_link_expiry_seconds)
        label = self._writer.localizer.text("link.download", expires=expiry.strftime("%Y-%m-%d %H:%M UTC"))
        return [(label, self.url()), (f"\n{self._uri}", "")]

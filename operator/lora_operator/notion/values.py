"""Property values to write, shaped for the property's type in the database.

Notion rejects a text object longer than 2000 characters, so every text written is cut
to that length, with an ellipsis marking the cut.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from lora_operator.api.notion_source import NotionSourceSpec
from lora_operator.notion.messages import Localizer

MAX_TEXT_LENGTH = 2000
ELLIPSIS = "…"


@dataclass(frozen=True)
class StatusNames:
    """The status option names in use: the spec's, else the locale's defaults."""

    submitted: str
    queued: str
    running: str
    suspended: str
    succeeded: str
    failed: str
    rejected: str

    @classmethod
    def resolve(cls, spec: NotionSourceSpec, localizer: Localizer) -> StatusNames:
        configured = spec.status_values
        names = {
            key: getattr(configured, key) or localizer.text(f"status.{key}")
            for key in ("submitted", "queued", "running", "suspended", "succeeded", "failed", "rejected")
        }
        return cls(**names)

    def for_phase(self, phase: str) -> str:
        """Return the status name that shows a LoRATraining phase."""
        return {
            "Running": self.running,
            "Suspended": self.suspended,
            "Succeeded": self.succeeded,
            "Failed": self.failed,
        }.get(phase, self.queued)


def truncate(text: str, limit: int = MAX_TEXT_LENGTH) -> str:
    if len(text) <= limit:
        return text
    return text[: limit - len(ELLIPSIS)] + ELLIPSIS


def text_item(content: str, *, link: str = "") -> dict[str, Any]:
    item: dict[str, Any] = {"type": "text", "text": {"content": truncate(content)}}
    if link:
        item["text"]["link"] = {"url": link}
    return item


def mention_item(user_id: str) -> dict[str, Any]:
    return {"type": "mention", "mention": {"type": "user", "user": {"id": user_id}}}


def text_value(kind: str, parts: list[tuple[str, str]]) -> dict[str, Any] | None:
    """Return a value for a rich_text, title or url property from (text, link) parts.

    The whole text is cut to 2000 characters. A url property gets the first link, or the
    text when no part has one. Other property types get None: nothing is written.
    """
    if kind == "url":
        first_link = next((link for _, link in parts if link), "")
        url = first_link or "".join(text for text, _ in parts)
        return {"url": url[:MAX_TEXT_LENGTH] or None}
    if kind not in ("rich_text", "title"):
        return None
    items, budget = [], MAX_TEXT_LENGTH
    for content, link in parts:
        if budget <= 0:
            break
        piece = truncate(content, budget) if len(content) > budget else content
        budget -= len(piece)
        if piece:
            items.append(text_item(piece, link=link))
    return {kind: items}


def number_value(kind: str, number: float | None, *, percent_scale: float = 1.0) -> dict[str, Any] | None:
    if kind != "number":
        return None
    return {"number": None if number is None else round(number * percent_scale, 6)}


def status_value(kind: str, name: str) -> dict[str, Any] | None:
    if kind in ("status", "select"):
        return {kind: {"name": name}}
    if kind in ("rich_text", "title"):
        return {kind: [text_item(name)]}
    return None


def files_value(kind: str, entries: list[dict[str, Any]]) -> dict[str, Any] | None:
    if kind != "files":
        return None
    return {"files": entries}


def uploaded_file(name: str, upload_id: str) -> dict[str, Any]:
    return {"type": "file_upload", "name": name[:100], "file_upload": {"id": upload_id}}


def external_file(name: str, url: str) -> dict[str, Any]:
    return {"type": "external", "name": name[:100], "external": {"url": url}}

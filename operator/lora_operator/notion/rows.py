"""Read Notion pages (rows) and data source schemas into plain values.

Property values follow Notion API 2025-09-03: each value carries its ``type`` and the
content under a key of that name.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from lora_operator.api.notion_source import NotionProperties


@dataclass(frozen=True)
class PropertySchema:
    """One property (column) of a data source."""

    name: str
    id: str
    type: str
    options: tuple[str, ...] = ()
    """Option names of a select, multi_select or status property."""
    number_format: str = ""


@dataclass(frozen=True)
class SourceSchema:
    """The properties of a data source, by name."""

    properties: dict[str, PropertySchema]

    @classmethod
    def from_data_source(cls, data_source: dict[str, Any]) -> SourceSchema:
        properties = {}
        for name, raw in (data_source.get("properties") or {}).items():
            kind = raw.get("type", "")
            config = raw.get(kind) or {}
            options = tuple(option.get("name", "") for option in config.get("options") or [])
            properties[name] = PropertySchema(
                name=name, id=raw.get("id", name), type=kind, options=options,
                number_format=config.get("format", "") if kind == "number" else "",
            )
        return cls(properties=properties)

    def type_of(self, name: str) -> str:
        """Return the property's type, or "" when the database has no such property."""
        entry = self.properties.get(name)
        return entry.type if entry else ""


@dataclass(frozen=True)
class Attachment:
    """One file in a files property."""

    name: str
    kind: str
    """file (Notion-hosted, with an expiring URL), external, or file_upload."""
    url: str
    index: int
    """Position in the property, which stays the same when the page is fetched again."""


@dataclass(frozen=True)
class NotionRow:
    """The parts of a row that sync reads."""

    page_id: str
    url: str
    title: str
    type: str
    description: str
    status: str
    creator_id: str
    creator_name: str
    last_edited_time: str
    images: tuple[Attachment, ...]
    properties: dict[str, Any] = field(repr=False, default_factory=dict)
    """Raw property values by name, for overrides."""

    @property
    def page_hex(self) -> str:
        """The page id as 32 hex digits, valid as a label value."""
        return compact_id(self.page_id)


def compact_id(notion_id: str) -> str:
    return notion_id.replace("-", "").lower()


def plain_text(rich_text: list[dict[str, Any]] | None) -> str:
    return "".join(item.get("plain_text") or (item.get("text") or {}).get("content", "") for item in rich_text or [])


def value_text(value: dict[str, Any] | None) -> str:
    """Return a property value as text: the option name, the number, the joined text."""
    if not value:
        return ""
    kind = value.get("type", "")
    content = value.get(kind)
    if kind in ("title", "rich_text"):
        return plain_text(content)
    if kind in ("select", "status"):
        return (content or {}).get("name", "")
    if kind == "multi_select":
        return ", ".join(option.get("name", "") for option in content or [])
    if kind == "number":
        return "" if content is None else _format_number(content)
    if kind == "checkbox":
        return "true" if content else "false"
    if kind in ("url", "email", "phone_number"):
        return content or ""
    if kind == "formula":
        inner = content or {}
        return str(inner.get(inner.get("type", ""), "") or "")
    return ""


def _format_number(number: float) -> str:
    return str(int(number)) if float(number).is_integer() else str(number)


def attachments(value: dict[str, Any] | None) -> tuple[Attachment, ...]:
    """Return the files of a files property value, in order."""
    found = []
    for index, item in enumerate((value or {}).get("files") or []):
        kind = item.get("type", "")
        url = (item.get(kind) or {}).get("url", "")
        found.append(Attachment(name=item.get("name") or f"file-{index}", kind=kind, url=url, index=index))
    return tuple(found)


def creator_of(page: dict[str, Any], value: dict[str, Any] | None) -> tuple[str, str]:
    """Return (user id, name) of the submitter: the creator property, else the page's created_by."""
    user: dict[str, Any] = {}
    if value:
        kind = value.get("type", "")
        content = value.get(kind)
        if kind == "created_by":
            user = content or {}
        elif kind == "people" and content:
            user = content[0]
    if not user:
        user = page.get("created_by") or {}
    return user.get("id", ""), user.get("name", "")


def read_row(page: dict[str, Any], names: NotionProperties) -> NotionRow:
    """Read one page with the source's property names."""
    values: dict[str, Any] = page.get("properties") or {}
    title_value = values.get(names.title) if names.title else None
    if title_value is None:
        title_value = next((value for value in values.values() if value.get("type") == "title"), None)
    creator_id, creator_name = creator_of(page, values.get(names.creator) if names.creator else None)
    return NotionRow(
        page_id=page["id"],
        url=page.get("url", ""),
        title=value_text(title_value).strip(),
        type=value_text(values.get(names.type)).strip(),
        description=value_text(values.get(names.description)).strip() if names.description else "",
        status=value_text(values.get(names.status)),
        creator_id=creator_id,
        creator_name=creator_name,
        last_edited_time=page.get("last_edited_time", ""),
        images=attachments(values.get(names.images)),
        properties=values,
    )

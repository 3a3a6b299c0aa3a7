"""The in-memory workspace of the local Notion server: users, data sources, pages, comments, files.

Objects are rendered in the shapes of Notion API 2025-09-03. Times are rounded down to
the minute, as Notion rounds created_time and last_edited_time.
"""

from __future__ import annotations

import threading
import time
import uuid
from dataclasses import dataclass, field
from typing import Any

from tests.notion_server.files import FileHost
from tests.notion_server.times import iso_time, notion_time

COLORS = ("default", "gray", "brown", "orange", "yellow", "green", "blue", "purple", "pink", "red")


def new_id() -> str:
    return str(uuid.uuid4())


@dataclass
class User:
    id: str
    name: str
    type: str  # person or bot
    email: str = ""

    def render(self) -> dict[str, Any]:
        user: dict[str, Any] = {"object": "user", "id": self.id, "name": self.name, "avatar_url": None, "type": self.type}
        if self.type == "person":
            user["person"] = {"email": self.email}
        else:
            user["bot"] = {"owner": {"type": "workspace", "workspace": True}, "workspace_name": "Local test workspace"}
        return user

    def reference(self) -> dict[str, Any]:
        return {"object": "user", "id": self.id}


@dataclass
class DataSource:
    id: str
    database_id: str
    title: str
    properties: dict[str, dict[str, Any]]
    """Property schema by name: {"id", "name", "type", TYPE: config}."""
    created_time: float = field(default_factory=time.time)
    created_by: str = ""


@dataclass
class Page:
    id: str
    data_source_id: str
    created_time: float
    last_edited_time: float
    created_by: str
    last_edited_by: str
    values: dict[str, Any]
    """Stored values by property name; see Workspace.render_value for their forms."""
    in_trash: bool = False


@dataclass
class Comment:
    id: str
    page_id: str
    discussion_id: str
    created_time: float
    created_by: str
    rich_text: list[dict[str, Any]]


@dataclass
class FileUpload:
    id: str
    created_time: float
    created_by: str
    filename: str | None
    content_type: str | None
    status: str = "pending"
    content_length: int | None = None
    blob_id: str = ""


class Workspace:
    """Everything the server stores, behind one lock."""

    def __init__(self, files: FileHost) -> None:
        self.lock = threading.RLock()
        self.files = files
        self.users: dict[str, User] = {}
        self.tokens: dict[str, str] = {}  # token -> bot user id
        self.grants: dict[str, set[str]] = {}  # token -> data source ids it may use
        self.data_sources: dict[str, DataSource] = {}
        self.pages: dict[str, Page] = {}
        self.comments: list[Comment] = []
        self.uploads: dict[str, FileUpload] = {}
        self.clock = time.time

    # Setup, used by tests.

    def add_user(self, name: str, *, email: str = "", user_id: str | None = None) -> User:
        with self.lock:
            user = User(id=user_id or new_id(), name=name, type="person", email=email)
            self.users[user.id] = user
            return user

    def add_integration(self, token: str, *, name: str = "lora-operator") -> User:
        with self.lock:
            bot = User(id=new_id(), name=name, type="bot")
            self.users[bot.id] = bot
            self.tokens[token] = bot.id
            self.grants.setdefault(token, set())
            return bot

    def add_data_source(self, title: str, properties: dict[str, dict[str, Any]], *, shared_with: list[str]) -> DataSource:
        """Create a database with one data source; ``properties`` maps name to {"type": ..., TYPE: config}."""
        with self.lock:
            schema = {}
            for index, (name, config) in enumerate(properties.items()):
                kind = config["type"]
                body = dict(config.get(kind) or {})
                if "options" in body:
                    body["options"] = [
                        {"id": new_id()[:8], "name": option, "color": COLORS[position % len(COLORS)]}
                        for position, option in enumerate(body["options"])
                    ]
                property_id = "title" if kind == "title" else f"p{index:03d}"
                schema[name] = {"id": property_id, "name": name, "description": None, "type": kind, kind: body}
            source = DataSource(id=new_id(), database_id=new_id(), title=title, properties=schema)
            self.data_sources[source.id] = source
            for token in shared_with:
                self.grants.setdefault(token, set()).add(source.id)
            return source

    def add_page(self, data_source_id: str, values: dict[str, Any], *, created_by: str) -> Page:
        """Add a row; values use the stored forms (text as `text(...)` items, options as names, files as file entries)."""
        with self.lock:
            source = self.data_sources[data_source_id]
            stored = {name: empty_value(schema["type"]) for name, schema in source.properties.items()}
            for name, value in values.items():
                if name not in source.properties:
                    raise KeyError(f"data source {source.title!r} has no property {name!r}")
                stored[name] = value
            now = self.clock()
            page = Page(id=new_id(), data_source_id=data_source_id, created_time=now, last_edited_time=now,
                        created_by=created_by, last_edited_by=created_by, values=stored)
            self.pages[page.id] = page
            return page

    # Rendering.

    def render_page(self, page: Page) -> dict[str, Any]:
        source = self.data_sources[page.data_source_id]
        title = plain(page.values.get(_title_name(source)))
        slug = "-".join(title.split()) or "Untitled"
        return {
            "object": "page",
            "id": page.id,
            "created_time": notion_time(page.created_time),
            "last_edited_time": notion_time(page.last_edited_time),
            "created_by": self.users[page.created_by].reference(),
            "last_edited_by": self.users[page.last_edited_by].reference(),
            "cover": None,
            "icon": None,
            "parent": {"type": "data_source_id", "data_source_id": source.id, "database_id": source.database_id},
            "archived": page.in_trash,
            "in_trash": page.in_trash,
            "is_locked": False,
            "properties": {
                name: self.render_property(page, name, schema) for name, schema in source.properties.items()
            },
            "url": f"https://www.notion.so/{slug}-{page.id.replace('-', '')}",
            "public_url": None,
        }

    def render_property(self, page: Page, name: str, schema: dict[str, Any]) -> dict[str, Any]:
        kind = schema["type"]
        return {"id": schema["id"], "type": kind, kind: self.render_value(page, kind, page.values.get(name), schema)}

    def render_value(self, page: Page, kind: str, value: Any, schema: dict[str, Any]) -> Any:
        if kind in ("title", "rich_text"):
            return [self.render_rich_text(item) for item in value or []]
        if kind in ("select", "status"):
            if not value:
                return None
            option = next((item for item in schema[kind]["options"] if item["name"] == value), None)
            return dict(option) if option else {"id": "", "name": value, "color": "default"}
        if kind == "multi_select":
            return [{"id": "", "name": name, "color": "default"} for name in value or []]
        if kind == "files":
            return [self.render_file(entry) for entry in value or []]
        if kind == "created_by":
            return self.users[page.created_by].render()
        if kind == "last_edited_by":
            return self.users[page.last_edited_by].render()
        if kind == "created_time":
            return notion_time(page.created_time)
        if kind == "last_edited_time":
            return notion_time(page.last_edited_time)
        if kind == "people":
            return [self.users[user_id].render() for user_id in value or []]
        return value

    def render_rich_text(self, item: dict[str, Any]) -> dict[str, Any]:
        annotations = {"bold": False, "italic": False, "strikethrough": False, "underline": False,
                       "code": False, "color": "default"}
        if item.get("type") == "mention":
            user = self.users.get(item["mention"]["user"]["id"])
            return {
                "type": "mention",
                "mention": {"type": "user", "user": user.render() if user else {"object": "user", "id": item["mention"]["user"]["id"]}},
                "annotations": annotations,
                "plain_text": f"@{user.name if user else 'Unknown'}",
                "href": None,
            }
        text = item["text"]
        link = text.get("link")
        return {
            "type": "text",
            "text": {"content": text["content"], "link": link},
            "annotations": annotations,
            "plain_text": text["content"],
            "href": link["url"] if link else None,
        }

    def render_file(self, entry: dict[str, Any]) -> dict[str, Any]:
        if "external_url" in entry:
            return {"name": entry["name"], "type": "external", "external": {"url": entry["external_url"]}}
        url, expiry = self.files.signed_url(entry["blob_id"], entry["name"])
        return {"name": entry["name"], "type": "file", "file": {"url": url, "expiry_time": expiry}}

    def render_comment(self, comment: Comment) -> dict[str, Any]:
        return {
            "object": "comment",
            "id": comment.id,
            "parent": {"type": "page_id", "page_id": comment.page_id},
            "discussion_id": comment.discussion_id,
            "created_time": notion_time(comment.created_time),
            "last_edited_time": notion_time(comment.created_time),
            "created_by": self.users[comment.created_by].reference(),
            "rich_text": [self.render_rich_text(item) for item in comment.rich_text],
        }

    def render_upload(self, upload: FileUpload, *, base_url: str) -> dict[str, Any]:
        rendered = {
            "object": "file_upload",
            "id": upload.id,
            "created_time": iso_time(upload.created_time),
            "created_by": {"id": upload.created_by, "type": "bot"},
            "last_edited_time": iso_time(upload.created_time),
            "expiry_time": iso_time(upload.created_time + 3600),
            "archived": False,
            "status": upload.status,
            "filename": upload.filename,
            "content_type": upload.content_type,
            "content_length": upload.content_length,
        }
        if upload.status == "pending":
            rendered["upload_url"] = f"{base_url}/v1/file_uploads/{upload.id}/send"
        return rendered

    def render_database(self, sources: list[DataSource]) -> dict[str, Any]:
        """Render the database of ``sources``, which all belong to one database."""
        first = sources[0]
        return {
            "object": "database",
            "id": first.database_id,
            "title": [self.render_rich_text({"type": "text", "text": {"content": first.title}})],
            "description": [],
            "parent": {"type": "workspace", "workspace": True},
            "is_inline": False,
            "in_trash": False,
            "is_locked": False,
            "created_time": iso_time(first.created_time),
            "last_edited_time": iso_time(first.created_time),
            "data_sources": [{"id": source.id, "name": source.title} for source in sources],
            "icon": None,
            "cover": None,
            "url": f"https://www.notion.so/{first.database_id.replace('-', '')}",
            "public_url": None,
            "archived": False,
        }

    def render_data_source(self, source: DataSource) -> dict[str, Any]:
        return {
            "object": "data_source",
            "id": source.id,
            "cover": None,
            "icon": None,
            "created_time": notion_time(source.created_time),
            "last_edited_time": notion_time(source.created_time),
            "title": [self.render_rich_text({"type": "text", "text": {"content": source.title}})],
            "description": [],
            "is_inline": False,
            "properties": source.properties,
            "parent": {"type": "database_id", "database_id": source.database_id},
            "url": f"https://www.notion.so/{source.database_id.replace('-', '')}",
            "public_url": None,
            "archived": False,
            "in_trash": False,
        }

    # Test inspection.

    def page_values(self, page_id: str) -> dict[str, Any]:
        """Return a copy of a page's stored values."""
        with self.lock:
            return dict(self.pages[page_id].values)

    def comments_on(self, page_id: str) -> list[Comment]:
        with self.lock:
            return [comment for comment in self.comments if comment.page_id == page_id]


def empty_value(kind: str) -> Any:
    if kind in ("title", "rich_text", "files", "multi_select", "people"):
        return []
    if kind == "checkbox":
        return False
    return None


def text(content: str) -> list[dict[str, Any]]:
    """The stored form of a plain text value."""
    return [{"type": "text", "text": {"content": content, "link": None}}] if content else []


def plain(items: list[dict[str, Any]] | None) -> str:
    """The text of a stored rich text value, mentions as @name."""
    return "".join(item["text"]["content"] if item.get("type") == "text" else "@" for item in items or [])


def _title_name(source: DataSource) -> str:
    return next(name for name, schema in source.properties.items() if schema["type"] == "title")

"""Validate the property values of a page update and convert them to the stored forms.

Errors use the API's validation_error messages: an unknown property, a value of the
wrong shape, a text object over 2000 characters, a status option that does not exist,
a file upload that is not uploaded yet.
"""

from __future__ import annotations

from typing import Any

from tests.notion_server.errors import validation_error
from tests.notion_server.workspace import DataSource, Workspace, new_id

MAX_TEXT_CONTENT = 2000
MAX_RICH_TEXT_ITEMS = 100
READ_ONLY_TYPES = ("created_by", "created_time", "last_edited_by", "last_edited_time", "formula", "rollup", "unique_id")


def convert_properties(workspace: Workspace, source: DataSource, properties: dict[str, Any]) -> dict[str, Any]:
    """Return stored values by property name; raise ApiError for an invalid update."""
    by_id = {schema["id"]: name for name, schema in source.properties.items()}
    stored = {}
    for key, value in properties.items():
        name = key if key in source.properties else by_id.get(key)
        if name is None:
            raise validation_error(f"{key} is not a property that exists.")
        schema = source.properties[name]
        stored[name] = convert_value(workspace, name, schema, value)
    return stored


def convert_value(workspace: Workspace, name: str, schema: dict[str, Any], value: Any) -> Any:
    kind = schema["type"]
    if kind in READ_ONLY_TYPES:
        raise validation_error(f"{name} is a {kind} property, which cannot be updated.")
    if not isinstance(value, dict) or kind not in value:
        raise validation_error(f"body failed validation: body.properties.{name}.{kind} should be defined, instead was `undefined`.")
    content = value[kind]
    path = f"body.properties.{name}.{kind}"
    if kind in ("title", "rich_text"):
        return rich_text(content, path=path, workspace=workspace)
    if kind in ("select", "status"):
        return _option(schema, kind, content, path=path)
    if kind == "number":
        if content is not None and (isinstance(content, bool) or not isinstance(content, (int, float))):
            raise validation_error(f"body failed validation: {path} should be a number or `null`, instead was `{content!r}`.")
        return content
    if kind == "url":
        if content is not None and (not isinstance(content, str) or len(content) > MAX_TEXT_CONTENT):
            raise validation_error(f"body failed validation: {path} should be a string of at most 2000 characters or `null`.")
        return content
    if kind == "checkbox":
        if not isinstance(content, bool):
            raise validation_error(f"body failed validation: {path} should be a boolean, instead was `{content!r}`.")
        return content
    if kind == "files":
        return [_file_entry(workspace, item, path=f"{path}[{index}]") for index, item in enumerate(content or [])]
    if kind == "people":
        return [item["id"] for item in content or []]
    raise validation_error(f"{name} is a {kind} property, which this server cannot update.")


def rich_text(content: Any, *, path: str, workspace: Workspace) -> list[dict[str, Any]]:
    if not isinstance(content, list):
        raise validation_error(f"body failed validation: {path} should be an array, instead was `{content!r}`.")
    if len(content) > MAX_RICH_TEXT_ITEMS:
        raise validation_error(f"body failed validation: {path}.length should be ≤ `100`, instead was `{len(content)}`.")
    items = []
    for index, item in enumerate(content):
        if "mention" in item:
            user_id = ((item["mention"] or {}).get("user") or {}).get("id", "")
            if user_id not in workspace.users:
                raise validation_error(f"body failed validation: {path}[{index}].mention.user.id should be a valid user id.")
            items.append({"type": "mention", "mention": {"type": "user", "user": {"id": user_id}}})
            continue
        text = item.get("text") or {}
        text_content = text.get("content")
        if not isinstance(text_content, str):
            raise validation_error(f"body failed validation: {path}[{index}].text.content should be a string.")
        if len(text_content) > MAX_TEXT_CONTENT:
            raise validation_error(
                f"body failed validation: {path}[{index}].text.content.length should be ≤ `2000`, "
                f"instead was `{len(text_content)}`."
            )
        link = text.get("link")
        if link and len(link.get("url", "")) > MAX_TEXT_CONTENT:
            raise validation_error(f"body failed validation: {path}[{index}].text.link.url.length should be ≤ `2000`.")
        items.append({"type": "text", "text": {"content": text_content, "link": link or None}})
    return items


def _option(schema: dict[str, Any], kind: str, content: Any, *, path: str) -> str | None:
    if content is None:
        return None
    option_name = content.get("name")
    if not isinstance(option_name, str):
        raise validation_error(f"body failed validation: {path}.name should be a string.")
    options = schema[kind]["options"]
    if any(option["name"] == option_name for option in options):
        return option_name
    if kind == "status":
        raise validation_error(f'Invalid status option. Status option "{option_name}" does not exist.')
    # A new select option is created, as in the real API.
    options.append({"id": new_id()[:8], "name": option_name, "color": "default"})
    return option_name


def _file_entry(workspace: Workspace, item: dict[str, Any], *, path: str) -> dict[str, Any]:
    kind = item.get("type") or next((key for key in ("file_upload", "external", "file") if key in item), "")
    name = item.get("name")
    if kind == "external":
        url = (item.get("external") or {}).get("url")
        if not isinstance(url, str) or not url:
            raise validation_error(f"body failed validation: {path}.external.url should be defined.")
        return {"name": name or url.rsplit("/", 1)[-1], "external_url": url}
    if kind == "file_upload":
        upload_id = (item.get("file_upload") or {}).get("id", "")
        upload = workspace.uploads.get(upload_id)
        if upload is None:
            raise validation_error(f"Could not find file upload with ID: {upload_id}.")
        if upload.status != "uploaded":
            raise validation_error(f"File upload with ID {upload_id} has status `{upload.status}`, so it cannot be attached.")
        return {"name": name or upload.filename or "file", "blob_id": upload.blob_id}
    raise validation_error(f"body failed validation: {path}.type should be `file_upload` or `external`, instead was `{kind}`.")

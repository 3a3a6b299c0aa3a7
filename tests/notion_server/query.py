"""Filters, sorts and pagination of data source queries, over rendered property values.

Supports the filter conditions of the property types the tests use, timestamp filters,
and `and`/`or` compounds nested up to two levels, as Notion allows.
"""

from __future__ import annotations

from typing import Any

from tests.notion_server.errors import validation_error
from tests.notion_server.times import parse_time

MAX_PAGE_SIZE = 100
TEXT_TYPES = ("title", "rich_text", "url", "email", "phone_number")


def check_filter(condition: dict[str, Any], schema: dict[str, dict[str, Any]], *, depth: int = 0) -> None:
    """Raise validation_error for a filter that names a missing property or nests too deeply, even with no rows."""
    if "and" in condition or "or" in condition:
        if depth >= 2:
            raise validation_error("body failed validation: filter compounds can be nested at most two levels deep.")
        for item in condition.get("and", condition.get("or")):
            check_filter(item, schema, depth=depth + 1)
        return
    if "timestamp" in condition:
        return
    name = condition.get("property")
    if name not in schema:
        raise validation_error(f"Could not find property with name or id: {name}")
    kind = schema[name]["type"]
    if kind not in condition:
        given = next((key for key in condition if key != "property"), "none")
        raise validation_error(
            f"body failed validation: filter.{given} does not match the type of property {name!r}, which is {kind}."
        )


def matches(page: dict[str, Any], condition: dict[str, Any], *, depth: int = 0) -> bool:
    """Return whether a rendered page passes a filter."""
    if "and" in condition or "or" in condition:
        if depth >= 2:
            raise validation_error("body failed validation: filter compounds can be nested at most two levels deep.")
        key = "and" if "and" in condition else "or"
        results = [matches(page, item, depth=depth + 1) for item in condition[key]]
        return all(results) if key == "and" else any(results)
    if "timestamp" in condition:
        return _timestamp(page, condition)
    name = condition.get("property")
    properties = page["properties"]
    if name not in properties:
        raise validation_error(f"Could not find property with name or id: {name}")
    value = properties[name]
    kind = value["type"]
    if kind not in condition:
        given = next((key for key in condition if key != "property"), "none")
        raise validation_error(
            f"body failed validation: filter.{given} does not match the type of property {name!r}, which is {kind}."
        )
    return _property(kind, value[kind], condition[kind])


def _timestamp(page: dict[str, Any], condition: dict[str, Any]) -> bool:
    field = condition["timestamp"]
    if field not in ("created_time", "last_edited_time"):
        raise validation_error(f"body failed validation: filter.timestamp should be created_time or last_edited_time, instead was {field!r}.")
    return _date(parse_time(page[field]), condition[field])


def _date(moment: float, operator: dict[str, Any]) -> bool:
    (name, operand), = operator.items()
    if name == "is_empty":
        return False
    if name == "is_not_empty":
        return True
    other = parse_time(operand)
    comparisons = {
        "equals": moment == other, "before": moment < other, "after": moment > other,
        "on_or_before": moment <= other, "on_or_after": moment >= other,
    }
    if name not in comparisons:
        raise validation_error(f"body failed validation: unsupported date filter condition {name!r}.")
    return comparisons[name]


def _property(kind: str, value: Any, operator: dict[str, Any]) -> bool:
    (name, operand), = operator.items()
    if kind in TEXT_TYPES:
        text = value if isinstance(value, str) or value is None else "".join(item["plain_text"] for item in value)
        return _text(text or "", name, operand)
    if kind in ("select", "status"):
        option = (value or {}).get("name", "")
        return _text(option, name, operand)
    if kind == "number":
        return _number(value, name, operand)
    if kind == "checkbox":
        return (value == operand) if name == "equals" else (value != operand)
    if kind in ("files", "people", "multi_select"):
        if name in ("is_empty", "is_not_empty"):
            return (not value) == (name == "is_empty")
        ids = {item.get("id") or item.get("name") for item in value or []}
        return (operand in ids) == (name == "contains")
    if kind in ("created_by", "last_edited_by"):
        return (value["id"] == operand) == (name == "contains")
    raise validation_error(f"body failed validation: filtering on {kind} properties is not supported here.")


def _text(text: str, name: str, operand: Any) -> bool:
    checks = {
        "equals": lambda: text == operand, "does_not_equal": lambda: text != operand,
        "contains": lambda: operand in text, "does_not_contain": lambda: operand not in text,
        "starts_with": lambda: text.startswith(operand), "ends_with": lambda: text.endswith(operand),
        "is_empty": lambda: not text, "is_not_empty": lambda: bool(text),
    }
    if name not in checks:
        raise validation_error(f"body failed validation: unsupported filter condition {name!r}.")
    return checks[name]()


def _number(value: float | None, name: str, operand: Any) -> bool:
    if name in ("is_empty", "is_not_empty"):
        return (value is None) == (name == "is_empty")
    if value is None:
        return name == "does_not_equal"
    checks = {
        "equals": value == operand, "does_not_equal": value != operand,
        "greater_than": value > operand, "less_than": value < operand,
        "greater_than_or_equal_to": value >= operand, "less_than_or_equal_to": value <= operand,
    }
    if name not in checks:
        raise validation_error(f"body failed validation: unsupported number filter condition {name!r}.")
    return checks[name]


def sort_pages(pages: list[dict[str, Any]], sorts: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Sort rendered pages; without sorts, newest created first."""
    ordered = sorted(pages, key=lambda page: (page["created_time"], page["id"]), reverse=True)
    for sort in reversed(sorts):
        reverse = sort.get("direction", "ascending") == "descending"
        if "timestamp" in sort:
            ordered.sort(key=lambda page: page[sort["timestamp"]], reverse=reverse)
        else:
            name = sort.get("property")
            if not ordered or name not in ordered[0]["properties"]:
                if ordered:
                    raise validation_error(f"Could not find sort property with name or id: {name}")
                continue
            ordered.sort(key=lambda page: _sort_key(page["properties"][name]), reverse=reverse)
    return ordered


def _sort_key(value: dict[str, Any]) -> tuple[int, Any]:
    content = value[value["type"]]
    if content is None:
        return (1, "")
    if isinstance(content, list):
        return (0, "".join(item.get("plain_text", item.get("name", "")) for item in content))
    if isinstance(content, dict):
        return (0, content.get("name", ""))
    return (0, content)


def paginate(pages: list[dict[str, Any]], *, start_cursor: str | None, page_size: int) -> tuple[list[dict[str, Any]], str | None]:
    """Return one page of results and the next cursor (the id of the next result), like Notion."""
    if not 1 <= page_size <= MAX_PAGE_SIZE:
        raise validation_error(f"body failed validation: body.page_size should be ≤ `100`, instead was `{page_size}`.")
    start = 0
    if start_cursor:
        ids = [page["id"] for page in pages]
        if start_cursor not in ids:
            raise validation_error("body failed validation: body.start_cursor should be a valid cursor.")
        start = ids.index(start_cursor)
    chunk = pages[start:start + page_size]
    following = pages[start + page_size:start + page_size + 1]
    return chunk, (following[0]["id"] if following else None)

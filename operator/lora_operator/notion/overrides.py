"""Row values that set spec fields, checked against the source's override rules."""

from __future__ import annotations

import math
from typing import Any

from lora_operator.api.notion_source import OverrideRule, scalar_field_type
from lora_operator.notion.rows import NotionRow, value_text

TRUE_WORDS = frozenset({"true", "yes", "y", "1", "是", "对", "开"})
FALSE_WORDS = frozenset({"false", "no", "n", "0", "否", "不", "关"})


class RowRejected(Exception):
    """A row that is not trained; ``key`` and ``fields`` make the localised reason."""

    def __init__(self, key: str, **fields: Any) -> None:
        super().__init__(f"{key}: {fields}")
        self.key = key
        self.fields = fields


def apply_overrides(spec: dict[str, Any], row: NotionRow, rules: list[OverrideRule]) -> None:
    """Set each rule's field in ``spec`` (camelCase wire form) from the row, or raise RowRejected."""
    for rule in rules:
        text = value_text(row.properties.get(rule.property)).strip()
        if not text:
            continue
        value = _convert(rule, text)
        _check(rule, value, text)
        _set_path(spec, rule.field, value)


def _convert(rule: OverrideRule, text: str) -> Any:
    kind = scalar_field_type(rule.field)
    if kind is bool:
        lowered = text.lower()
        if lowered in TRUE_WORDS:
            return True
        if lowered in FALSE_WORDS:
            return False
        raise RowRejected("reject.override_invalid", property=rule.property, value=text, kind_key="kind.boolean")
    if kind in (int, float):
        try:
            number = float(text)
        except ValueError:
            number = math.nan
        if not math.isfinite(number) or (kind is int and not number.is_integer()):
            kind_key = "kind.integer" if kind is int else "kind.number"
            raise RowRejected("reject.override_invalid", property=rule.property, value=text, kind_key=kind_key)
        return int(number) if kind is int else number
    return text


def _check(rule: OverrideRule, value: Any, text: str) -> None:
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        too_small = rule.minimum is not None and value < rule.minimum
        too_large = rule.maximum is not None and value > rule.maximum
        if too_small or too_large:
            raise RowRejected(
                "reject.override_bounds", property=rule.property, value=text,
                minimum=_bound(rule.minimum), maximum=_bound(rule.maximum),
            )
    if rule.allowed_values and text not in rule.allowed_values:
        raise RowRejected("reject.override_choice", property=rule.property, value=text, choices=list(rule.allowed_values))


def _bound(bound: float | None) -> str:
    if bound is None:
        return "-"
    return str(int(bound)) if float(bound).is_integer() else str(bound)


def _set_path(spec: dict[str, Any], path: str, value: Any) -> None:
    *parents, leaf = path.split(".")
    node = spec
    for segment in parents:
        node = node.setdefault(segment, {})
    node[leaf] = value

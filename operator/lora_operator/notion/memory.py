"""The memory of values written to each row, so a write-back sends only the properties that changed."""

from __future__ import annotations

import json
import threading
from typing import Any


def signature(value: Any) -> str:
    """Return a canonical text form of a value, to compare what is due with what was written."""
    return json.dumps(value, sort_keys=True, ensure_ascii=False, separators=(",", ":"))


class WrittenValues:
    """Signatures of the property values last written, by page (32 hex digits) and property name.

    Kept in memory: after an operator restart the first write-back of a row sends its
    properties once more, and only changes after that.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._pages: dict[str, dict[str, str]] = {}

    def changed(self, page: str, due: dict[str, str]) -> set[str]:
        """Return the property names whose due signature differs from the one written."""
        with self._lock:
            written = self._pages.get(page, {})
            return {name for name, value in due.items() if written.get(name) != value}

    def record(self, page: str, written: dict[str, str]) -> None:
        with self._lock:
            self._pages.setdefault(page, {}).update(written)

    def forget(self, page: str) -> None:
        with self._lock:
            self._pages.pop(page, None)

"""Time formats of the Notion API."""

from __future__ import annotations

from datetime import datetime, timezone


def notion_time(moment: float) -> str:
    """Format a Unix time the way Notion reports page times: rounded down to the minute."""
    return datetime.fromtimestamp(moment, timezone.utc).strftime("%Y-%m-%dT%H:%M:00.000Z")


def iso_time(moment: float) -> str:
    """Format a Unix time with seconds, as file and upload expiry times are reported."""
    return datetime.fromtimestamp(moment, timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.000Z")


def parse_time(value: str) -> float:
    """Parse an ISO 8601 date or date-time, as filters send them, into a Unix time."""
    moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=timezone.utc)
    return moment.timestamp()

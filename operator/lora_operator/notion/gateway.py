"""The one way to call Notion: notion-client 3.x behind a per-token pacer with retries.

notion-client retries only 429 for every method and 5xx for GET and DELETE, so its own
retries are off and this module retries 429, 409, 5xx and 529 (Notion's overload status),
timeouts and dropped connections for every method. A Retry-After header pauses the
whole token; other failures back off exponentially with jitter in the calling thread.
"""

from __future__ import annotations

import json
import logging
import random
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from datetime import datetime, timedelta, timezone
from email.utils import parsedate_to_datetime
from typing import Any

import httpx
from notion_client import Client
from notion_client.errors import HTTPResponseError, RequestTimeoutError

from lora_operator.notion.pacing import RequestPacer
from lora_operator.notion.settings import NotionSettings

NOTION_VERSION = "2025-09-03"
# 409 is conflict_error, which Notion documents as "try again"; 529 is service_overload.
RETRYABLE_STATUSES = frozenset({409, 429, 500, 502, 503, 504, 529})
MAX_PAGE_SIZE = 100
log = logging.getLogger("lora_operator.notion")


def hide_request_urls_from_logs() -> None:
    """Log httpx requests at WARNING only: Notion-hosted file URLs carry signatures that grant access."""
    logging.getLogger("httpx").setLevel(logging.WARNING)


class NotionApiError(RuntimeError):
    """A Notion request that failed for good; ``status`` is 0 when no response came."""

    def __init__(self, *, operation: str, status: int, code: str, message: str) -> None:
        super().__init__(f"Notion {operation} failed: {status or 'no response'} {code}: {message}")
        self.operation = operation
        self.status = status
        self.code = code
        self.detail = message


class NotionGateway:
    """Paced, retried Notion calls for one integration token; thread-safe."""

    def __init__(self, *, token: str, settings: NotionSettings, http_client: httpx.Client | None = None) -> None:
        sdk_logger = logging.getLogger("lora_operator.notion.sdk")
        self._client = Client(
            auth=token,
            base_url=settings.api_url.rstrip("/"),
            notion_version=NOTION_VERSION,
            timeout_ms=int(settings.timeout_seconds * 1000),
            retry=False,
            logger=sdk_logger,
            # This module logs every retry and failure itself.
            log_level=logging.ERROR,
            client=http_client,
        )
        self._settings = settings
        self.pacer = RequestPacer(settings.requests_per_second)
        self._counts_lock = threading.Lock()
        self.requests: Counter[str] = Counter()
        self._user_cache: dict[str, dict[str, Any]] = {}

    def close(self) -> None:
        self._client.close()

    def request_count(self) -> int:
        """Requests sent so far, retries included."""
        with self._counts_lock:
            return sum(self.requests.values())

    def call(
        self, operation: str, send: Callable[[Client], Any], *, find_applied: Callable[[], Any | None] | None = None
    ) -> Any:
        """Run ``send`` in this token's turn, retrying what a later try may fix.

        A try that got no response or a 5xx may still have taken effect. Before retrying
        such a try, ``find_applied`` (when given) looks for its effect, and a result it
        finds is returned instead of sending again.
        """
        settings = self._settings
        for attempt in range(1, settings.max_attempts + 1):
            self.pacer.wait_turn()
            with self._counts_lock:
                self.requests[operation] += 1
            try:
                return send(self._client)
            except HTTPResponseError as error:
                status, code, message = error.status, _error_code(error), str(error)
                retry_after = _retry_after_seconds(error.headers.get("retry-after"))
            except RequestTimeoutError as error:
                status, code, message, retry_after = 0, "timeout", str(error), None
            except httpx.TransportError as error:
                status, code, message, retry_after = 0, type(error).__name__, str(error) or repr(error), None

            if status and status not in RETRYABLE_STATUSES:
                raise NotionApiError(operation=operation, status=status, code=code, message=message)
            if attempt == settings.max_attempts:
                log.error("Notion %s failed after %d tries: %s %s", operation, attempt, status or "no response", message)
                raise NotionApiError(operation=operation, status=status, code=code, message=message)
            delay = self._delay(attempt, retry_after)
            log.warning("Notion %s got %s %s; try %d of %d in %.1f s",
                        operation, status or "no response", code, attempt + 1, settings.max_attempts, delay)
            if retry_after is not None:
                self.pacer.pause(delay)
            else:
                time.sleep(delay)
            if find_applied is not None and (status == 0 or status >= 500):
                applied = self._find_applied(operation, find_applied)
                if applied is not None:
                    return applied
        raise AssertionError("unreachable: the loop returns or raises")

    @staticmethod
    def _find_applied(operation: str, find_applied: Callable[[], Any | None]) -> Any | None:
        try:
            applied = find_applied()
        except NotionApiError as error:
            log.warning("Notion %s: could not check whether the failed try took effect (%s); sending it again",
                        operation, error)
            return None
        if applied is not None:
            log.info("Notion %s: the failed try took effect after all; not sending it again", operation)
        return applied

    def _delay(self, attempt: int, retry_after: float | None) -> float:
        limit = self._settings.max_backoff_seconds
        if retry_after is not None:
            return min(retry_after, limit)
        base = self._settings.backoff_seconds * 2 ** (attempt - 1)
        return min(base * (0.5 + random.random()), limit)

    # Endpoints, one request each.

    def retrieve_database(self, database_id: str) -> dict[str, Any]:
        return self.call("databases.retrieve", lambda c: c.databases.retrieve(database_id=database_id))

    def retrieve_data_source(self, data_source_id: str) -> dict[str, Any]:
        return self.call("data_sources.retrieve", lambda c: c.data_sources.retrieve(data_source_id=data_source_id))

    def query_pages(
        self, data_source_id: str, *, filter: dict[str, Any] | None, sorts: list[dict[str, Any]]
    ) -> Iterator[dict[str, Any]]:
        """Yield every page that matches, one request per 100 pages."""
        cursor: str | None = None
        while True:
            body: dict[str, Any] = {"sorts": sorts, "page_size": MAX_PAGE_SIZE, "start_cursor": cursor}
            if filter is not None:
                body["filter"] = filter
            response = self.call(
                "data_sources.query", lambda c: c.data_sources.query(data_source_id=data_source_id, **body)
            )
            yield from (item for item in response["results"] if item.get("object") == "page")
            cursor = response.get("next_cursor")
            if not response.get("has_more") or not cursor:
                return

    def retrieve_page(self, page_id: str) -> dict[str, Any]:
        return self.call("pages.retrieve", lambda c: c.pages.retrieve(page_id=page_id))

    def update_page(self, page_id: str, properties: dict[str, Any]) -> dict[str, Any]:
        return self.call("pages.update", lambda c: c.pages.update(page_id=page_id, properties=properties))

    def create_comment(self, page_id: str, rich_text: list[dict[str, Any]]) -> dict[str, Any]:
        """Post a comment on a page once, even when a try whose response was lost is retried.

        Notion has no idempotency key, so before such a retry the page's comments are listed
        (one request per 100), and a comment with the same text, created since a minute
        before the first try, counts as posted. The window starts a minute early because
        Notion reports page times rounded down to the minute, and comment times may be too.
        """
        earliest = datetime.now(timezone.utc) - timedelta(minutes=1)
        return self.call(
            "comments.create", lambda c: c.comments.create(parent={"page_id": page_id}, rich_text=rich_text),
            find_applied=lambda: self._find_comment(page_id, rich_text, created_since=earliest),
        )

    def list_comments(self, page_id: str) -> Iterator[dict[str, Any]]:
        """Yield every comment on a page, one request per 100."""
        cursor: str | None = None
        while True:
            arguments: dict[str, Any] = {"block_id": page_id, "page_size": MAX_PAGE_SIZE}
            if cursor:
                arguments["start_cursor"] = cursor
            response = self.call("comments.list", lambda c: c.comments.list(**arguments))
            yield from response["results"]
            cursor = response.get("next_cursor")
            if not response.get("has_more") or not cursor:
                return

    def _find_comment(
        self, page_id: str, rich_text: list[dict[str, Any]], *, created_since: datetime
    ) -> dict[str, Any] | None:
        expected_text = _text_content(rich_text)
        for comment in self.list_comments(page_id):
            created = _parse_time(comment.get("created_time", ""))
            if created is None or created < created_since:
                continue
            if _text_content(comment.get("rich_text") or []) == expected_text:
                return comment
        return None

    def retrieve_user(self, user_id: str) -> dict[str, Any]:
        """Return a user object; users are cached for the gateway's lifetime."""
        cached = self._user_cache.get(user_id)
        if cached is None:
            cached = self.call("users.retrieve", lambda c: c.users.retrieve(user_id=user_id))
            self._user_cache[user_id] = cached
        return cached

    def upload_file(self, *, filename: str, content_type: str, data: bytes) -> str:
        """Upload one file with the single-part File Upload API and return its id (two requests)."""
        created = self.call(
            "file_uploads.create",
            lambda c: c.file_uploads.create(mode="single_part", filename=filename, content_type=content_type),
        )
        upload_id = created["id"]
        self.call(
            "file_uploads.send",
            lambda c: c.file_uploads.send(file_upload_id=upload_id, file=(filename, data, content_type)),
        )
        return upload_id


def _text_content(rich_text: list[dict[str, Any]]) -> str:
    """Return the text of a rich text array without its mentions, whose text Notion fills in with names."""
    return "".join(item["text"].get("content", "") for item in rich_text if isinstance(item.get("text"), dict))


def _parse_time(value: str) -> datetime | None:
    try:
        return datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None


def _error_code(error: HTTPResponseError) -> str:
    """Return Notion's error code, read from the body for 502 bad_gateway and 529 service_overload.

    notion-client 3.1 maps only the codes it lists and reports others as notionhq_client_response_error.
    """
    code = str(getattr(error.code, "value", error.code))
    if code != "notionhq_client_response_error":
        return code
    try:
        body = json.loads(error.body)
    except (TypeError, ValueError):
        return code
    return str(body.get("code") or code) if isinstance(body, dict) else code


def _retry_after_seconds(value: str | None) -> float | None:
    """Parse Retry-After: delta seconds (Notion sends these, sometimes with decimals) or an HTTP date."""
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        return max(0.0, parsedate_to_datetime(value).timestamp() - time.time())
    except (TypeError, ValueError):
        return None


class GatewayPool:
    """One gateway per token, so every source that shares a token shares its queue."""

    def __init__(self, settings: NotionSettings) -> None:
        self._settings = settings
        self._lock = threading.Lock()
        self._gateways: dict[str, NotionGateway] = {}

    def for_token(self, token: str) -> NotionGateway:
        with self._lock:
            gateway = self._gateways.get(token)
            if gateway is None:
                gateway = NotionGateway(token=token, settings=self._settings)
                self._gateways[token] = gateway
            return gateway

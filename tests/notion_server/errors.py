"""Notion API error responses, with the codes and message forms of the real API."""

from __future__ import annotations

import json
import uuid

from aiohttp import web


class ApiError(Exception):
    """An error answer: HTTP status, Notion error code and message."""

    def __init__(self, status: int, code: str, message: str, *, headers: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.headers = headers or {}

    def response(self) -> web.Response:
        body = {"object": "error", "status": self.status, "code": self.code, "message": self.message,
                "request_id": str(uuid.uuid4())}
        return web.Response(status=self.status, text=json.dumps(body), content_type="application/json",
                            headers=self.headers)


def validation_error(message: str) -> ApiError:
    return ApiError(400, "validation_error", message)


def not_found(kind: str, object_id: str) -> ApiError:
    return ApiError(
        404, "object_not_found",
        f"Could not find {kind} with ID: {object_id}. Make sure the relevant pages and databases are shared "
        "with your integration.",
    )

"""The aiohttp application of the local Notion server: API routes, file host and middleware."""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from dataclasses import dataclass
from typing import Any, Awaitable, Callable

from aiohttp import web

from tests.notion_server.errors import ApiError, not_found, validation_error
from tests.notion_server.faults import Faults, RateLimit
from tests.notion_server.query import check_filter, matches, paginate, sort_pages
from tests.notion_server.updates import convert_properties, rich_text
from tests.notion_server.workspace import Comment, FileUpload, Page, Workspace, new_id

SUPPORTED_VERSION = "2025-09-03"
# The File Upload API's single-part limit.
SINGLE_PART_LIMIT = 20 * 1000 * 1000


@dataclass
class RequestRecord:
    """One API request the server received."""

    method: str
    path: str
    token: str
    started: float
    status: int = 0
    fault: str = ""
    body: Any = None
    """The parsed JSON body, for requests that sent JSON."""


class ServerState:
    """What the handlers share: the workspace, faults, rate limit and request log."""

    def __init__(self, workspace: Workspace) -> None:
        self.workspace = workspace
        self.faults = Faults()
        self.rate_limit: RateLimit | None = None
        self.requests: list[RequestRecord] = []
        self.base_url = ""
        self.external_files: dict[str, tuple[bytes, str]] = {}


def build_app(state: ServerState) -> web.Application:
    app = web.Application(middlewares=[_api_middleware(state)], client_max_size=SINGLE_PART_LIMIT + 1024 * 1024)
    api = _Handlers(state)
    app.add_routes([
        web.get("/v1/users/me", api.users_me),
        web.get("/v1/users", api.users_list),
        web.get("/v1/users/{user_id}", api.users_retrieve),
        web.get("/v1/databases/{database_id}", api.database_retrieve),
        web.get("/v1/data_sources/{data_source_id}", api.data_source_retrieve),
        web.post("/v1/data_sources/{data_source_id}/query", api.data_source_query),
        web.get("/v1/pages/{page_id}", api.page_retrieve),
        web.patch("/v1/pages/{page_id}", api.page_update),
        web.get("/v1/pages/{page_id}/properties/{property_id}", api.page_property),
        web.post("/v1/comments", api.comment_create),
        web.get("/v1/comments", api.comment_list),
        web.post("/v1/file_uploads", api.upload_create),
        web.post("/v1/file_uploads/{upload_id}/send", api.upload_send),
        web.get("/v1/file_uploads/{upload_id}", api.upload_retrieve),
        web.get("/files/{blob_id}/{name}", api.file_download),
        web.get("/external/{name}", api.external_download),
        web.route("*", "/v1/{tail:.*}", api.unknown_url),
    ])
    return app


def _api_middleware(state: ServerState) -> Callable[..., Awaitable[web.StreamResponse]]:
    @web.middleware
    async def middleware(request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]) -> web.StreamResponse:
        if not request.path.startswith("/v1/"):
            return await handler(request)
        token = request.headers.get("Authorization", "").removeprefix("Bearer ").strip()
        record = RequestRecord(method=request.method, path=request.path, token=token, started=time.time())
        if request.content_type == "application/json":
            try:
                record.body = json.loads(await request.text() or "null")
            except json.JSONDecodeError:
                record.body = None
        state.requests.append(record)
        try:
            response = await _admit_and_handle(state, request, handler, token, record)
        except ApiError as error:
            response = error.response()
        record.status = response.status
        return response

    return middleware


async def _admit_and_handle(
    state: ServerState, request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]],
    token: str, record: RequestRecord,
) -> web.StreamResponse:
    if token not in state.workspace.tokens:
        raise ApiError(401, "unauthorized", "API token is invalid.")
    version = request.headers.get("Notion-Version")
    if not version:
        raise ApiError(400, "missing_version", "Notion-Version header failed validation: Notion-Version header "
                                               "should be defined, instead was `undefined`.")
    if version != SUPPORTED_VERSION:
        raise validation_error(f"Notion-Version header failed validation: this server implements `{SUPPORTED_VERSION}`, "
                               f"instead was `{version}`.")
    if state.rate_limit is not None:
        limited = state.rate_limit.admit(token)
        if limited is not None:
            record.fault = "rate-limit"
            raise limited
    kind = state.faults.draw(request.method, request.path)
    record.fault = kind
    if kind == "slow":
        await asyncio.sleep(state.faults.slow_seconds)
    elif kind:
        raise state.faults.error_for(kind)
    delay = state.faults.take_delay(request.method, request.path)
    if delay is not None and not delay.after_effect:
        await asyncio.sleep(delay.seconds)
    response = await handler(request)
    if delay is not None and delay.after_effect:
        await asyncio.sleep(delay.seconds)
    return response


def _json(body: dict[str, Any]) -> web.Response:
    return web.Response(text=json.dumps({**body, "request_id": str(uuid.uuid4())}, ensure_ascii=False),
                        content_type="application/json")


def _compact(object_id: str) -> str:
    return object_id.replace("-", "").lower()


class _Handlers:
    def __init__(self, state: ServerState) -> None:
        self.state = state
        self.workspace = state.workspace

    # Lookups that respect what the token may see.

    def _token(self, request: web.Request) -> str:
        return request.headers.get("Authorization", "").removeprefix("Bearer ").strip()

    def _source(self, request: web.Request, source_id: str):  # noqa: ANN202 - DataSource
        granted = self.workspace.grants.get(self._token(request), set())
        for source in self.workspace.data_sources.values():
            if _compact(source.id) == _compact(source_id) and source.id in granted:
                return source
        raise not_found("data_source", source_id)

    def _page(self, request: web.Request, page_id: str) -> Page:
        granted = self.workspace.grants.get(self._token(request), set())
        for page in self.workspace.pages.values():
            if _compact(page.id) == _compact(page_id) and page.data_source_id in granted:
                return page
        raise not_found("page", page_id)

    async def _body(self, request: web.Request) -> dict[str, Any]:
        raw = await request.text()
        if not raw:
            return {}
        try:
            body = json.loads(raw)
        except json.JSONDecodeError:
            raise ApiError(400, "invalid_json", "Error parsing JSON body.") from None
        if not isinstance(body, dict):
            raise ApiError(400, "invalid_json", "Error parsing JSON body.")
        return body

    # Users.

    async def users_me(self, request: web.Request) -> web.Response:
        bot = self.workspace.users[self.workspace.tokens[self._token(request)]]
        return _json(bot.render())

    async def users_list(self, request: web.Request) -> web.Response:
        users = [user.render() for user in self.workspace.users.values()]
        return _json({"object": "list", "results": users, "next_cursor": None, "has_more": False,
                      "type": "user", "user": {}})

    async def users_retrieve(self, request: web.Request) -> web.Response:
        user_id = request.match_info["user_id"]
        for user in self.workspace.users.values():
            if _compact(user.id) == _compact(user_id):
                return _json(user.render())
        raise not_found("user", user_id)

    # Databases and data sources.

    async def database_retrieve(self, request: web.Request) -> web.Response:
        wanted = request.match_info["database_id"]
        granted = self.workspace.grants.get(self._token(request), set())
        with self.workspace.lock:
            sources = [source for source in self.workspace.data_sources.values()
                       if _compact(source.database_id) == _compact(wanted) and source.id in granted]
            if not sources:
                raise not_found("database", wanted)
            return _json(self.workspace.render_database(sources))

    async def data_source_retrieve(self, request: web.Request) -> web.Response:
        with self.workspace.lock:
            source = self._source(request, request.match_info["data_source_id"])
            return _json(self.workspace.render_data_source(source))

    async def data_source_query(self, request: web.Request) -> web.Response:
        body = await self._body(request)
        with self.workspace.lock:
            source = self._source(request, request.match_info["data_source_id"])
            pages = [self.workspace.render_page(page) for page in self.workspace.pages.values()
                     if page.data_source_id == source.id and not page.in_trash]
            if body.get("filter"):
                check_filter(body["filter"], source.properties)
                pages = [page for page in pages if matches(page, body["filter"])]
            pages = sort_pages(pages, body.get("sorts") or [])
            chunk, cursor = paginate(pages, start_cursor=body.get("start_cursor"), page_size=body.get("page_size", 100))
        return _json({"object": "list", "results": chunk, "next_cursor": cursor, "has_more": cursor is not None,
                      "type": "page_or_data_source", "page_or_data_source": {}})

    # Pages.

    async def page_retrieve(self, request: web.Request) -> web.Response:
        with self.workspace.lock:
            page = self._page(request, request.match_info["page_id"])
            return _json(self.workspace.render_page(page))

    async def page_update(self, request: web.Request) -> web.Response:
        body = await self._body(request)
        with self.workspace.lock:
            page = self._page(request, request.match_info["page_id"])
            source = self.workspace.data_sources[page.data_source_id]
            stored = convert_properties(self.workspace, source, body.get("properties") or {})
            page.values.update(stored)
            if "in_trash" in body:
                page.in_trash = bool(body["in_trash"])
            page.last_edited_time = self.workspace.clock()
            page.last_edited_by = self.workspace.tokens[self._token(request)]
            return _json(self.workspace.render_page(page))

    async def page_property(self, request: web.Request) -> web.Response:
        with self.workspace.lock:
            page = self._page(request, request.match_info["page_id"])
            source = self.workspace.data_sources[page.data_source_id]
            wanted = request.match_info["property_id"]
            for name, schema in source.properties.items():
                if wanted in (schema["id"], name):
                    rendered = self.workspace.render_property(page, name, schema)
                    return _json({"object": "property_item", **rendered})
        raise not_found("property", wanted)

    # Comments.

    async def comment_create(self, request: web.Request) -> web.Response:
        body = await self._body(request)
        page_id = (body.get("parent") or {}).get("page_id")
        if not page_id:
            raise validation_error("body failed validation: body.parent.page_id should be defined.")
        with self.workspace.lock:
            page = self._page(request, page_id)
            items = rich_text(body.get("rich_text"), path="body.rich_text", workspace=self.workspace)
            comment = Comment(id=new_id(), page_id=page.id, discussion_id=new_id(), created_time=self.workspace.clock(),
                              created_by=self.workspace.tokens[self._token(request)], rich_text=items)
            self.workspace.comments.append(comment)
            return _json(self.workspace.render_comment(comment))

    async def comment_list(self, request: web.Request) -> web.Response:
        with self.workspace.lock:
            page = self._page(request, request.query.get("block_id", ""))
            results = [self.workspace.render_comment(comment) for comment in self.workspace.comments_on(page.id)]
        return _json({"object": "list", "results": results, "next_cursor": None, "has_more": False,
                      "type": "comment", "comment": {}})

    # File uploads.

    async def upload_create(self, request: web.Request) -> web.Response:
        body = await self._body(request)
        mode = body.get("mode", "single_part")
        if mode != "single_part":
            raise validation_error(f"body failed validation: this server supports mode `single_part` only, instead was `{mode}`.")
        with self.workspace.lock:
            upload = FileUpload(id=new_id(), created_time=self.workspace.clock(),
                                created_by=self.workspace.tokens[self._token(request)],
                                filename=body.get("filename"), content_type=body.get("content_type"))
            self.workspace.uploads[upload.id] = upload
            return _json(self.workspace.render_upload(upload, base_url=self.state.base_url))

    async def upload_send(self, request: web.Request) -> web.Response:
        upload = self.workspace.uploads.get(request.match_info["upload_id"])
        if upload is None:
            raise validation_error(f"Could not find file upload with ID: {request.match_info['upload_id']}.")
        if upload.status != "pending":
            raise validation_error(f"File upload with ID {upload.id} has status `{upload.status}`, not `pending`.")
        form = await request.post()
        part = form.get("file")
        if part is None or not hasattr(part, "file"):
            raise validation_error("body failed validation: the multipart form has no `file` part.")
        data = part.file.read()
        if len(data) > SINGLE_PART_LIMIT:
            raise validation_error(f"File size ({len(data)} bytes) exceeds the single-part upload limit of 20 MB.")
        content_type = upload.content_type or part.content_type or "application/octet-stream"
        with self.workspace.lock:
            blob = self.workspace.files.add(upload.filename or part.filename or "file", data, content_type)
            upload.blob_id, upload.status, upload.content_length = blob.id, "uploaded", len(data)
            upload.content_type = content_type
            return _json(self.workspace.render_upload(upload, base_url=self.state.base_url))

    async def upload_retrieve(self, request: web.Request) -> web.Response:
        upload = self.workspace.uploads.get(request.match_info["upload_id"])
        if upload is None:
            raise not_found("file_upload", request.match_info["upload_id"])
        return _json(self.workspace.render_upload(upload, base_url=self.state.base_url))

    async def unknown_url(self, request: web.Request) -> web.Response:
        raise ApiError(400, "invalid_request_url", "Invalid request URL.")

    # File hosts.

    async def file_download(self, request: web.Request) -> web.Response:
        files = self.workspace.files
        blob_id = request.match_info["blob_id"]
        status, error_body = files.check(
            blob_id, issued=request.query.get("issued", "0"), expires=request.query.get("expires", "0"),
            signature=request.query.get("signature", ""),
        )
        files.record(blob_id, status)
        if status != 200:
            return web.Response(status=status, text=error_body, content_type="application/xml")
        blob = files.blob(blob_id)
        return web.Response(body=blob.data, content_type=blob.content_type)

    async def external_download(self, request: web.Request) -> web.Response:
        entry = self.state.external_files.get(request.match_info["name"])
        if entry is None:
            return web.Response(status=404, text="not found")
        data, content_type = entry
        return web.Response(body=data, content_type=content_type)

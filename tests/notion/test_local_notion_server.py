"""The local Notion server responds like the API: auth, versions, queries, updates, files and errors."""

from __future__ import annotations

import httpx
import pytest

from tests.datasets import PHOTOS_DIR
from tests.notion_server.workspace import plain

pytestmark = pytest.mark.unit

VERSION = "2025-09-03"


def api(server, token: str, *, version: str | None = VERSION) -> httpx.Client:
    headers = {"Authorization": f"Bearer {token}"}
    if version:
        headers["Notion-Version"] = version
    return httpx.Client(base_url=f"{server.base_url}/v1", headers=headers, timeout=10)


def query(client: httpx.Client, database, body: dict) -> dict:
    response = client.post(f"/data_sources/{database.data_source_id}/query", json=body)
    assert response.status_code == 200, response.text
    return response.json()


def test_wrong_token_unauthorized(notion_server, lora_database):
    response = api(notion_server, "ntn_wrong").get("/users/me")
    assert response.status_code == 401
    assert response.json()["code"] == "unauthorized"


def test_missing_version_rejected(notion_server, lora_database):
    response = api(notion_server, lora_database.token, version=None).get("/users/me")
    assert response.status_code == 400
    assert response.json()["code"] == "missing_version"


def test_unshared_source_not_found(notion_server, lora_database):
    other = notion_server.workspace.add_data_source("private", {"Name": {"type": "title"}}, shared_with=[])
    response = api(notion_server, lora_database.token).get(f"/data_sources/{other.id}")
    assert response.status_code == 404
    assert response.json()["code"] == "object_not_found"


def test_query_filters_by_status(notion_server, lora_database):
    wanted = lora_database.add_row("a", images=[PHOTOS_DIR / "coffee.png"])
    lora_database.add_row("b", status="已完成")
    body = {"filter": {"property": "状态", "status": {"equals": "待训练"}}}
    results = query(api(notion_server, lora_database.token), lora_database, body)["results"]
    assert [page["id"] for page in results] == [wanted]


def test_query_paginates(notion_server, lora_database):
    created = {lora_database.add_row(f"row {index}") for index in range(5)}
    client = api(notion_server, lora_database.token)
    seen, cursor, pages = [], None, 0
    while True:
        body = {"page_size": 2, "sorts": [{"property": "名称", "direction": "ascending"}]}
        if cursor:
            body["start_cursor"] = cursor
        answer = query(client, lora_database, body)
        seen += [plain(lora_database.value(page["id"], "名称")) for page in answer["results"]]
        pages += 1
        cursor = answer["next_cursor"]
        if not answer["has_more"]:
            break
    assert seen == [f"row {index}" for index in range(5)]
    assert pages == 3
    assert len(created) == 5


def test_unknown_filter_property_rejected(notion_server, lora_database):
    response = api(notion_server, lora_database.token).post(
        f"/data_sources/{lora_database.data_source_id}/query", json={"filter": {"property": "颜色", "select": {"equals": "红"}}})
    assert response.status_code == 400
    assert response.json()["message"] == "Could not find property with name or id: 颜色"


def test_long_text_rejected(notion_server, lora_database):
    page = lora_database.add_row("a")
    body = {"properties": {"错误信息": {"rich_text": [{"text": {"content": "x" * 2001}}]}}}
    response = api(notion_server, lora_database.token).patch(f"/pages/{page}", json=body)
    assert response.status_code == 400
    assert "should be ≤ `2000`" in response.json()["message"]


def test_missing_status_option_rejected(notion_server, lora_database):
    page = lora_database.add_row("a")
    body = {"properties": {"状态": {"status": {"name": "归档"}}}}
    response = api(notion_server, lora_database.token).patch(f"/pages/{page}", json=body)
    assert response.status_code == 400
    assert response.json()["code"] == "validation_error"


def test_hosted_url_expires(notion_server, lora_database):
    page = lora_database.add_row("a", images=[PHOTOS_DIR / "coffee.png"])
    client = api(notion_server, lora_database.token)
    url = client.get(f"/pages/{page}").json()["properties"]["参考图"]["files"][0]["file"]["url"]
    assert httpx.get(url).content == (PHOTOS_DIR / "coffee.png").read_bytes()
    notion_server.files.expire_issued_urls()
    expired = httpx.get(url)
    assert expired.status_code == 403
    assert "Request has expired" in expired.text
    fresh = client.get(f"/pages/{page}").json()["properties"]["参考图"]["files"][0]["file"]["url"]
    assert httpx.get(fresh).status_code == 200


def test_upload_attach_and_read(notion_server, lora_database):
    page = lora_database.add_row("a")
    client = api(notion_server, lora_database.token)
    created = client.post("/file_uploads", json={"filename": "p.png", "content_type": "image/png"}).json()
    assert created["status"] == "pending"
    sent = client.post(f"/file_uploads/{created['id']}/send", files={"file": ("p.png", b"png-bytes", "image/png")})
    assert sent.json()["status"] == "uploaded"
    body = {"properties": {"预览图": {"files": [{"type": "file_upload", "name": "p.png", "file_upload": {"id": created["id"]}}]}}}
    updated = client.patch(f"/pages/{page}", json=body).json()
    assert updated["properties"]["预览图"]["files"][0]["type"] == "file"
    assert lora_database.file_bytes(page, "预览图") == [b"png-bytes"]


def test_pending_upload_not_attachable(notion_server, lora_database):
    page = lora_database.add_row("a")
    client = api(notion_server, lora_database.token)
    created = client.post("/file_uploads", json={"filename": "p.png"}).json()
    body = {"properties": {"预览图": {"files": [{"type": "file_upload", "file_upload": {"id": created["id"]}}]}}}
    response = client.patch(f"/pages/{page}", json=body)
    assert response.status_code == 400
    assert "status `pending`" in response.json()["message"]


def test_user_email_returned(notion_server, lora_database):
    user = api(notion_server, lora_database.token).get(f"/users/{lora_database.submitter.id}").json()
    assert user["person"]["email"] == "lilei@example.com"


def test_injected_fault_bodies(notion_server, lora_database):
    client = api(notion_server, lora_database.token)
    for kind, code in (("429", "rate_limited"), ("500", "internal_server_error"), ("502", "bad_gateway"),
                       ("529", "service_overload")):
        notion_server.fail(method="GET", path_prefix="/v1/users", kind=kind)
        response = client.get("/users/me")
        assert response.status_code == int(kind)
        assert response.json()["code"] == code


def test_rate_limit_answers_retry_after(notion_server, lora_database):
    notion_server.limit_rate(requests_per_second=1, burst=2)
    client = api(notion_server, lora_database.token)
    statuses = [client.get("/users/me").status_code for _ in range(4)]
    assert statuses[:2] == [200, 200]
    assert 429 in statuses[2:]
    limited = client.get("/users/me")
    assert limited.status_code == 429
    assert int(limited.headers["Retry-After"]) >= 1

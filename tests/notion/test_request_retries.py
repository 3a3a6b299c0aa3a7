"""Every Notion call goes through one paced queue per token and is retried on 429, 5xx and 529."""

from __future__ import annotations

import threading
import time

import pytest

from lora_operator.notion.gateway import NotionApiError, NotionGateway
from lora_operator.notion.settings import NotionSettings

pytestmark = pytest.mark.unit

FAST = {"backoff_seconds": 0.05, "max_backoff_seconds": 5.0, "requests_per_second": 50.0}


def gateway(server, database, **settings) -> NotionGateway:
    return NotionGateway(token=database.token,
                         settings=NotionSettings(api_url=server.base_url, **{**FAST, **settings}))


QUEUED = {"状态": {"status": {"name": "排队中"}}}


@pytest.mark.parametrize("kind", ["429", "500", "502", "529"])
def test_patch_retried_after_fault(notion_server, lora_database, kind):
    page = lora_database.add_row("a")
    notion_server.fail(method="PATCH", path_prefix="/v1/pages/", kind=kind)
    gateway(notion_server, lora_database).update_page(page, QUEUED)
    assert lora_database.value(page, "状态") == "排队中"
    assert [record.status for record in notion_server.requests(method="PATCH")] == [int(kind), 200]


def test_comment_retried_after_fault(notion_server, lora_database):
    page = lora_database.add_row("a")
    notion_server.fail(method="POST", path_prefix="/v1/comments", kind="500")
    gateway(notion_server, lora_database).create_comment(page, [{"type": "text", "text": {"content": "hi"}}])
    assert len(lora_database.comments(page)) == 1


def test_comment_posted_once_after_lost_response(notion_server, lora_database):
    # The comment is stored, then its response is held back past the client's timeout.
    page = lora_database.add_row("a")
    notion_server.delay(method="POST", path_prefix="/v1/comments", seconds=1.5)
    text = [{"type": "text", "text": {"content": "Training of a finished."}}]

    comment = gateway(notion_server, lora_database, timeout_seconds=0.5).create_comment(page, text)

    assert len(lora_database.comments(page)) == 1
    assert comment["object"] == "comment"
    assert [record.method for record in notion_server.requests(path_prefix="/v1/comments")] == ["POST", "GET"]


def test_comment_sent_again_when_not_stored(notion_server, lora_database):
    # A 500 before the handler stores nothing, and an older comment with other text does not count.
    page = lora_database.add_row("a")
    client = gateway(notion_server, lora_database)
    client.create_comment(page, [{"type": "text", "text": {"content": "an earlier comment"}}])
    notion_server.fail(method="POST", path_prefix="/v1/comments", kind="500")

    client.create_comment(page, [{"type": "text", "text": {"content": "Training of a failed."}}])

    assert len(lora_database.comments(page)) == 2


def test_retry_after_honoured(notion_server, lora_database):
    notion_server.faults.configure(rate=0.0, retry_after_seconds=2)
    notion_server.fail(method="GET", path_prefix="/v1/users", kind="429")
    gateway(notion_server, lora_database).retrieve_user(lora_database.submitter.id)
    first, second = notion_server.requests(method="GET")
    assert second.started - first.started >= 2.0


def test_retry_after_pauses_other_callers(notion_server, lora_database):
    page = lora_database.add_row("a")
    notion_server.faults.configure(rate=0.0, retry_after_seconds=2)
    notion_server.fail(method="PATCH", path_prefix="/v1/pages/", kind="429")
    shared = gateway(notion_server, lora_database)
    writer = threading.Thread(target=shared.update_page, args=(page, QUEUED))
    writer.start()
    while not notion_server.requests(method="PATCH"):
        time.sleep(0.01)
    time.sleep(0.2)  # The 429 response has reached the client by now.
    shared.retrieve_user(lora_database.submitter.id)
    writer.join()
    limited = notion_server.requests(method="PATCH")[0]
    other = notion_server.requests(method="GET")[0]
    assert other.started - limited.started >= 2.0


def test_validation_error_not_retried(notion_server, lora_database):
    page = lora_database.add_row("a")
    with pytest.raises(NotionApiError) as caught:
        gateway(notion_server, lora_database).update_page(page, {"状态": {"status": {"name": "归档"}}})
    assert caught.value.status == 400
    assert caught.value.code == "validation_error"
    assert len(notion_server.requests(method="PATCH")) == 1


def test_wrong_token_not_retried(notion_server, lora_database):
    client = NotionGateway(token="ntn_wrong", settings=NotionSettings(api_url=notion_server.base_url, **FAST))
    with pytest.raises(NotionApiError) as caught:
        client.retrieve_user(lora_database.submitter.id)
    assert caught.value.status == 401
    assert len(notion_server.requests()) == 1


def test_retries_end_after_max_attempts(notion_server, lora_database):
    notion_server.fail(method="GET", path_prefix="/v1/users", kind="502", count=5)
    with pytest.raises(NotionApiError) as caught:
        gateway(notion_server, lora_database, max_attempts=3).retrieve_user(lora_database.submitter.id)
    assert caught.value.status == 502
    assert len(notion_server.requests()) == 3


def test_timeout_retried(notion_server, lora_database):
    notion_server.faults.configure(rate=0.0, slow_seconds=2.0)
    notion_server.fail(method="GET", path_prefix="/v1/users", kind="slow")
    user = gateway(notion_server, lora_database, timeout_seconds=0.5).retrieve_user(lora_database.submitter.id)
    assert user["id"] == lora_database.submitter.id
    assert len(notion_server.requests()) == 2


def test_default_pace_stays_under_limit(notion_server, lora_database):
    # Notion's limit: three requests per second on average, with small bursts.
    notion_server.limit_rate(requests_per_second=3, burst=3)
    paced = gateway(notion_server, lora_database, requests_per_second=NotionSettings().requests_per_second)
    for _ in range(12):
        paced.retrieve_data_source(lora_database.data_source_id)
    assert notion_server.state.rate_limit.rejected == 0


def test_over_limit_calls_still_succeed(notion_server, lora_database):
    notion_server.limit_rate(requests_per_second=3, burst=3)
    eager = gateway(notion_server, lora_database, requests_per_second=50.0)
    results = [eager.retrieve_data_source(lora_database.data_source_id)["id"] for _ in range(8)]
    assert results == [lora_database.data_source_id] * 8
    assert notion_server.state.rate_limit.rejected > 0


def test_random_faults_all_absorbed(notion_server, lora_database):
    pages = [lora_database.add_row(f"row {index}") for index in range(10)]
    notion_server.faults.configure(rate=0.3, kinds=("429", "500", "502", "529", "slow"), retry_after_seconds=1,
                                   slow_seconds=0.2)
    client = gateway(notion_server, lora_database)
    for page in pages:
        client.update_page(page, QUEUED)
    assert [lora_database.value(page, "状态") for page in pages] == ["排队中"] * 10
    assert notion_server.faults.injected

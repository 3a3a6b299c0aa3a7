"""An attachment URL that expires before the copy is fetched again through the API, not reported broken."""

from __future__ import annotations

import threading
import time

import pytest

from tests.datasets import PHOTOS_DIR
from tests.notion_server.lora_database import example_source

pytestmark = [pytest.mark.cluster, pytest.mark.s3]

PHOTOS = [PHOTOS_DIR / "horse.png", PHOTOS_DIR / "rocket.jpg"]


def expire_urls_at_claim(server) -> threading.Thread:
    """Expire every URL handed out so far once the claim arrives; its response is held back meanwhile."""
    server.delay(method="PATCH", path_prefix="/v1/pages/", seconds=3)

    def expire() -> None:
        while not server.requests(method="PATCH"):
            time.sleep(0.02)
        server.files.expire_issued_urls()

    thread = threading.Thread(target=expire, daemon=True)
    thread.start()
    return thread


def test_expired_url_refetched(notion_sources, lora_database, notion_server, s3, s3_bucket, namespace):
    page = lora_database.add_row("骏马", images=PHOTOS)
    expirer = expire_urls_at_claim(notion_server)
    notion_sources.create(example_source(lora_database))

    training = notion_sources.wait_training(page)
    expirer.join(timeout=10)
    name = training["metadata"]["name"]
    prefix = f"{namespace}/{name}/notion-dataset/"
    objects = {item.object_name.removeprefix(prefix): item.object_name
               for item in s3.client().list_objects(s3_bucket, prefix=prefix, recursive=True)}
    assert sorted(objects) == ["00-horse.png", "01-rocket.jpg"]
    response = s3.client().get_object(s3_bucket, objects["00-horse.png"])
    assert response.read() == PHOTOS[0].read_bytes()
    statuses = [status for _, status in notion_server.files.downloads]
    assert statuses.count(403) == 1
    assert statuses.count(200) == 2
    assert notion_server.requests(method="GET", path_prefix=f"/v1/pages/{page}")
    assert lora_database.value(page, "状态") != "已拒绝"
    assert lora_database.text(page, "错误信息") == ""

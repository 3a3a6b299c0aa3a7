"""An operator killed between claiming a row and creating its LoRATraining never makes a second one."""

from __future__ import annotations

import pytest

from tests.datasets import PHOTOS_DIR
from tests.harness.waiting import poll_until
from tests.notion_server.lora_database import example_source

pytestmark = pytest.mark.cluster


def test_kill_after_claim_no_duplicate(notion_sources, lora_database, notion_server):
    page = lora_database.add_row("水彩城市", images=[PHOTOS_DIR / "coffee.png"])
    # The claim takes effect in Notion, but its response never reaches the operator.
    notion_server.delay(method="PATCH", path_prefix="/v1/pages/", seconds=60)
    notion_sources.create(example_source(lora_database))

    notion_sources.wait_status(page, "排队中")
    notion_sources.operator.kill()
    assert notion_sources.trainings_of(page) == []

    notion_sources.operator.start()
    training = notion_sources.wait_training(page)
    # Let the restarted operator run further sync passes over the claimed row.
    name = training["metadata"]["name"]
    poll_until(lambda: lora_database.text(page, "训练资源").endswith(f"/{name}") and
               len(notion_server.requests(method="POST", path_prefix="/v1/data_sources/")) >= 4,
               timeout=90, description="two more sync passes", last_state=notion_sources.log_tail)
    assert [item["metadata"]["name"] for item in notion_sources.all_trainings()] == [name]

"""50 rows with 20% of Notion requests failing give exactly 50 LoRATrainings, and every row is written back."""

from __future__ import annotations

from collections import Counter

import pytest

from tests.datasets import PHOTOS_DIR
from tests.harness.pod_fates import Fate, FATE, fate_annotations
from tests.harness.waiting import poll_until
from tests.notion_server.lora_database import example_source

pytestmark = [pytest.mark.cluster, pytest.mark.slow]

ROWS = 50


def end_running_pods(trainings) -> None:
    for pod in trainings.core.list_namespaced_pod(trainings.namespace).items:
        if pod.status.phase == "Running" and FATE not in (pod.metadata.annotations or {}):
            trainings.set_pod_fate(pod, fate_annotations(Fate.SUCCEED, after="0s"))


def test_fifty_rows_under_faults(notion_sources, lora_database, notion_server, trainings):
    pages = [lora_database.add_row(f"风格 {index:02d}", images=[PHOTOS_DIR / "coffee.png"]) for index in range(ROWS)]
    notion_server.faults.configure(rate=0.2, retry_after_seconds=1, slow_seconds=0.5)
    notion_sources.create(example_source(lora_database))

    created = poll_until(lambda: len(notion_sources.all_trainings()) >= ROWS and notion_sources.all_trainings(),
                         timeout=600, description=f"{ROWS} LoRATrainings", last_state=notion_sources.log_tail)
    labels = Counter(item["metadata"]["labels"]["lora-operator.io/notion-page"] for item in created)
    assert sorted(labels) == sorted(page.replace("-", "") for page in pages)
    assert set(labels.values()) == {1}

    def all_succeeded() -> bool:
        end_running_pods(trainings)
        phases = [(item.get("status") or {}).get("phase") for item in notion_sources.all_trainings()]
        return phases.count("Succeeded") == ROWS

    poll_until(all_succeeded, timeout=600, description=f"{ROWS} trainings Succeeded", interval=1.0)
    poll_until(lambda: all(lora_database.value(page, "状态") == "已完成" and lora_database.comments(page)
                           for page in pages),
               timeout=600, description="every row finished and commented", last_state=notion_sources.log_tail)
    assert len(notion_sources.all_trainings()) == ROWS
    assert [len(lora_database.comments(page)) for page in pages] == [1] * ROWS
    assert all(lora_database.value(page, "进度") == 100.0 for page in pages)
    assert notion_server.faults.injected

"""A rejected row gets its reason and a comment, and no LoRATraining."""

from __future__ import annotations

import pytest

from tests.datasets import PHOTOS_DIR
from tests.notion_server.lora_database import example_source
from tests.notion_server.workspace import plain

pytestmark = pytest.mark.cluster

PHOTO = PHOTOS_DIR / "coffee.png"


def test_unknown_type_rejected(notion_sources, lora_database):
    page = lora_database.add_row("风景", row_type="风景画", images=[PHOTO])
    notion_sources.create(example_source(lora_database))
    notion_sources.wait_status(page, "已拒绝")
    notion_sources.wait_row(page, lambda row: lora_database.comments(row), description="the rejection comment")
    assert lora_database.text(page, "错误信息") == "未知类型“风景画”。请选择：图像风格、人物IP。"
    (comment,) = lora_database.comments(page)
    assert comment.rich_text[0]["mention"]["user"]["id"] == lora_database.submitter.id
    assert "“风景”未开始训练：未知类型“风景画”" in plain(comment.rich_text)
    assert notion_sources.trainings_of(page) == []


def test_rows_without_images_or_rights_rejected(notion_sources, lora_database):
    stranger = lora_database.server.workspace.add_user("韩梅梅", email="hanmeimei@example.com")
    no_images = lora_database.add_row("空白")
    not_allowed = lora_database.add_row("人像", row_type="人物IP", images=[PHOTO], creator=stranger)
    accepted = lora_database.add_row("水彩", images=[PHOTO])
    notion_sources.create(example_source(lora_database))
    notion_sources.wait_training(accepted)
    for page in (no_images, not_allowed):
        notion_sources.wait_status(page, "已拒绝")
        notion_sources.wait_row(page, lambda row: lora_database.comments(row), description="a rejection comment")
    assert lora_database.text(no_images, "错误信息") == "没有参考图。请在参考图列至少上传一张图片。"
    assert lora_database.text(not_allowed, "错误信息").startswith("韩梅梅 没有提交训练的权限")
    assert notion_sources.trainings_of(no_images) == []
    assert notion_sources.trainings_of(not_allowed) == []
    assert len(notion_sources.all_trainings()) == 1

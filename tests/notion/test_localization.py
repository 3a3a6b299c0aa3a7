"""Everything written to Notion comes from the zh-CN and en catalogues."""

from __future__ import annotations

import pytest

from lora_operator.api.notion_source import NotionSourceSpec
from lora_operator.notion.mapping import rejection_text
from lora_operator.notion.messages import CATALOGUES, Localizer, template_fields
from lora_operator.notion.overrides import RowRejected
from lora_operator.notion.values import StatusNames

pytestmark = pytest.mark.unit


def spec(**changes) -> NotionSourceSpec:
    base = {
        "dataSourceId": "1f2e3d4c-5b6a-4978-8877-665544332211",
        "tokenSecret": {"name": "notion-token"},
        "presets": [{"type": "style", "template": {"baseModel": "builtin://tiny-sd", "dataset": {"resolution": 64}}}],
    }
    return NotionSourceSpec.model_validate({**base, **changes})


def test_catalogues_share_keys():
    assert set(CATALOGUES["zh-CN"]) == set(CATALOGUES["en"])


@pytest.mark.parametrize("key", sorted(CATALOGUES["en"]))
def test_catalogues_share_fields(key):
    assert template_fields(CATALOGUES["zh-CN"][key]) == template_fields(CATALOGUES["en"][key])


def test_chinese_status_defaults():
    names = StatusNames.resolve(spec(locale="zh-CN"), Localizer("zh-CN"))
    assert (names.submitted, names.queued, names.running) == ("待训练", "排队中", "训练中")
    assert (names.succeeded, names.failed, names.rejected) == ("已完成", "失败", "已拒绝")


def test_configured_status_wins():
    names = StatusNames.resolve(spec(locale="en", statusValues={"succeeded": "Shipped"}), Localizer("en"))
    assert names.succeeded == "Shipped"
    assert names.failed == "Failed"


def test_phase_maps_to_status():
    names = StatusNames.resolve(spec(locale="zh-CN"), Localizer("zh-CN"))
    assert names.for_phase("Pending") == "排队中"
    assert names.for_phase("Queued") == "排队中"
    assert names.for_phase("Running") == "训练中"
    assert names.for_phase("Suspended") == "已暂停"
    assert names.for_phase("Succeeded") == "已完成"
    assert names.for_phase("Failed") == "失败"


def test_rejection_in_chinese():
    rejection = RowRejected("reject.unknown_type", value="风景", choices=["图像风格", "人物IP"])
    text = rejection_text(rejection, Localizer("zh-CN"))
    assert text == "未知类型“风景”。请选择：图像风格、人物IP。"


def test_rejection_in_english():
    rejection = RowRejected("reject.override_invalid", property="Steps", value="many", kind_key="kind.integer")
    assert rejection_text(rejection, Localizer("en")) == 'Steps is "many", which is not a valid whole number.'


def test_unknown_locale_rejected():
    with pytest.raises(ValueError, match="unsupported locale 'fr'"):
        Localizer("fr")

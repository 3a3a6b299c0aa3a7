"""A row maps to its preset and then to a LoRATraining, or is rejected with a reason."""

from __future__ import annotations

from typing import Any

import pytest

from lora_operator.api.notion_source import NotionSourceSpec
from lora_operator.notion import keys
from lora_operator.notion.mapping import SourceRef, map_row, trigger_and_prompts
from lora_operator.notion.overrides import RowRejected
from lora_operator.notion.rows import Attachment, NotionRow

pytestmark = pytest.mark.unit

PAGE_ID = "0a1b2c3d-4e5f-4a6b-8c7d-9e0f1a2b3c4d"
SUBMITTER = "5b8183bd-8984-4417-b2a6-7dc8e439e679"
TEMPLATE = {"baseModel": "builtin://tiny-sd", "dataset": {"resolution": 64},
            "training": {"maxSteps": 400, "warmupSteps": 50}}


def source(**changes: Any) -> SourceRef:
    spec = {
        "dataSourceId": "1f2e3d4c5b6a49788877665544332211",
        "tokenSecret": {"name": "notion-token"},
        "properties": {"type": "类型", "images": "参考图", "status": "状态"},
        "presets": [{"type": "图像风格", "namePrefix": "style", "template": TEMPLATE},
                    {"type": "人物IP", "namePrefix": "character", "template": TEMPLATE}],
        "overrides": [{"property": "步数", "field": "training.maxSteps", "minimum": 100, "maximum": 4000}],
        "locale": "zh-CN",
    }
    spec.update(changes)
    return SourceRef(namespace="design", name="team", spec=NotionSourceSpec.model_validate(spec))


def row(**changes: Any) -> NotionRow:
    values = {
        "page_id": PAGE_ID, "url": "https://www.notion.so/x", "title": "水彩城市", "type": "图像风格",
        "description": "wcstyle，水彩风格的城市街景\n夜晚的街道", "status": "待训练",
        "creator_id": SUBMITTER, "creator_name": "李雷", "last_edited_time": "2025-10-28T07:53:00.000Z",
        "images": (Attachment(name="a.png", kind="file", url="https://files/a.png", index=0),),
        "properties": {},
    }
    values.update(changes)
    return NotionRow(**values)


def steps_value(number: float) -> dict[str, Any]:
    return {"步数": {"id": "p1", "type": "number", "number": number}}


def dataset_uri(spec, namespace: str, name: str) -> str:
    return f"s3://bucket/{namespace}/{name}/notion-dataset"


def mapped(row_: NotionRow, source_: SourceRef | None = None, emails: dict[str, str] | None = None):
    return map_row(row_, source_ or source(), dataset_uri_for=dataset_uri,
                   submitter_email=lambda user_id: (emails or {}).get(user_id, ""))


def rejection_of(row_: NotionRow, source_: SourceRef | None = None, emails: dict[str, str] | None = None) -> RowRejected:
    with pytest.raises(RowRejected) as caught:
        mapped(row_, source_, emails)
    return caught.value


def test_name_from_preset_and_page():
    plan = mapped(row())
    assert plan.name == "style-0a1b2c3d4e5f4a6b8c7d9e0f1a2b3c4d"
    assert plan.namespace == "design"


def test_dataset_points_at_copy():
    plan = mapped(row())
    assert [source.uri for source in plan.spec.dataset.sources] == [plan.dataset_uri]
    assert plan.dataset_uri == f"s3://bucket/design/{plan.name}/notion-dataset"


def test_description_feeds_trigger_and_prompts():
    plan = mapped(row())
    assert plan.spec.captioning.trigger_word == "wcstyle"
    assert plan.spec.previews.prompts == ["wcstyle，水彩风格的城市街景", "wcstyle, 夜晚的街道"]


def test_trigger_from_chinese_phrase():
    trigger, prompts = trigger_and_prompts("水彩风格、柔和的光线")
    assert trigger == "水彩风格"
    assert prompts == ["水彩风格、柔和的光线"]


def test_empty_description_keeps_template():
    plan = mapped(row(description=""))
    assert plan.spec.captioning.trigger_word == ""
    assert plan.spec.previews.prompts == []


def test_manifest_labelled_with_page():
    manifest = mapped(row()).manifest(source())
    assert manifest["metadata"]["labels"][keys.LABEL_PAGE] == "0a1b2c3d4e5f4a6b8c7d9e0f1a2b3c4d"
    assert manifest["metadata"]["annotations"][keys.ANNOTATION_CREATOR] == SUBMITTER
    assert manifest["metadata"]["annotations"][keys.ANNOTATION_SOURCE] == "design/team"


def test_target_namespace_used():
    plan = mapped(row(), source(targetNamespace="training"))
    assert plan.namespace == "training"


def test_unknown_type_rejected():
    rejection = rejection_of(row(type="风景"))
    assert rejection.key == "reject.unknown_type"
    assert rejection.fields["choices"] == ["图像风格", "人物IP"]


def test_missing_type_rejected():
    assert rejection_of(row(type="")).key == "reject.missing_type"


def test_missing_images_rejected():
    rejection = rejection_of(row(images=()))
    assert rejection.key == "reject.no_images"
    assert rejection.fields["property"] == "参考图"


def test_submitter_allowed_by_id():
    plan = mapped(row(), source(allowedSubmitters=[SUBMITTER.replace("-", "")]))
    assert plan.name.startswith("style-")


def test_submitter_allowed_by_email():
    plan = mapped(row(), source(allowedSubmitters=["LiLei@example.com"]), emails={SUBMITTER: "lilei@example.com"})
    assert plan.name.startswith("style-")


def test_other_submitter_rejected():
    rejection = rejection_of(row(), source(allowedSubmitters=["boss@example.com"]),
                             emails={SUBMITTER: "lilei@example.com"})
    assert rejection.key == "reject.submitter"
    assert rejection.fields["user"] == "李雷"


def test_override_sets_field():
    plan = mapped(row(properties=steps_value(800)))
    assert plan.spec.training.max_steps == 800


def test_override_above_maximum_rejected():
    rejection = rejection_of(row(properties=steps_value(5000)))
    assert rejection.key == "reject.override_bounds"
    assert (rejection.fields["minimum"], rejection.fields["maximum"]) == ("100", "4000")


def test_override_fraction_rejected():
    rejection = rejection_of(row(properties=steps_value(150.5)))
    assert rejection.key == "reject.override_invalid"
    assert rejection.fields["kind_key"] == "kind.integer"


def test_override_choice_rejected():
    rules = [{"property": "调度", "field": "training.scheduler", "allowedValues": ["cosine", "linear"]}]
    value = {"调度": {"id": "p2", "type": "select", "select": {"name": "constant"}}}
    rejection = rejection_of(row(properties=value), source(overrides=rules))
    assert rejection.key == "reject.override_choice"


def test_override_making_invalid_spec_rejected():
    # 40 steps passes the rule's bounds here but is below the template's 50 warm-up steps.
    rules = [{"property": "步数", "field": "training.maxSteps", "minimum": 1}]
    rejection = rejection_of(row(properties=steps_value(40)), source(overrides=rules))
    assert rejection.key == "reject.invalid_spec"
    assert "warmupSteps" in rejection.fields["detail"]

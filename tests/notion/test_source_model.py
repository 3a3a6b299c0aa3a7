"""The NotionSource model: presets, overrides and the generated CRD."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from pydantic import ValidationError

from lora_operator.api.notion_source import NotionSourceSpec
from lora_operator.notion.crd import notionsource_crd

pytestmark = pytest.mark.unit

REPO = Path(__file__).resolve().parents[2]
TEMPLATE = {"baseModel": "builtin://tiny-sd", "dataset": {"resolution": 64}}


def spec(**changes) -> dict:
    base = {
        "dataSourceId": "1f2e3d4c-5b6a-4978-8877-665544332211",
        "tokenSecret": {"name": "notion-token"},
        "presets": [{"type": "style", "template": TEMPLATE}],
    }
    return {**base, **changes}


def error_text(document: dict) -> str:
    with pytest.raises(ValidationError) as caught:
        NotionSourceSpec.model_validate(document)
    return str(caught.value)


def test_example_manifest_valid():
    manifest = yaml.safe_load((REPO / "examples" / "notionsource.yaml").read_text(encoding="utf-8"))
    parsed = NotionSourceSpec.model_validate(manifest["spec"])
    assert [preset.type for preset in parsed.presets] == ["图像风格", "人物IP"]
    assert parsed.locale == "zh-CN"


def test_template_sources_rejected():
    template = {**TEMPLATE, "dataset": {"sources": [{"uri": "s3://x/y"}]}}
    assert "dataset.sources is set by the operator" in error_text(spec(presets=[{"type": "a", "template": template}]))


def test_invalid_template_names_field():
    template = {**TEMPLATE, "lora": {"rank": 0}}
    assert "template.lora.rank" in error_text(spec(presets=[{"type": "a", "template": template}]))


def test_unknown_override_field_rejected():
    text = error_text(spec(overrides=[{"property": "步数", "field": "training.steps"}]))
    assert "'steps' is not a field here" in text


def test_list_override_field_rejected():
    text = error_text(spec(overrides=[{"property": "模块", "field": "lora.targetModules"}]))
    assert "is not a number, text or boolean field" in text


def test_crd_keys_presets_by_type():
    presets = notionsource_crd()["spec"]["versions"][0]["schema"]["openAPIV3Schema"]["properties"]["spec"]["properties"]["presets"]
    assert presets["x-kubernetes-list-type"] == "map"
    assert presets["x-kubernetes-list-map-keys"] == ["type"]


def test_crd_template_has_no_transition_rules():
    text = yaml.safe_dump(notionsource_crd())
    assert "oldSelf" not in text


def test_crd_template_validates_fields():
    presets = notionsource_crd()["spec"]["versions"][0]["schema"]["openAPIV3Schema"]["properties"]["spec"]["properties"]["presets"]
    template = presets["items"]["properties"]["template"]
    assert template["properties"]["lora"]["properties"]["rank"]["minimum"] == 1
    assert "dataset" not in template.get("required", [])


def test_source_id_required():
    assert "set spec.dataSourceId" in error_text(spec(dataSourceId=""))


def test_database_id_enough():
    parsed = NotionSourceSpec.model_validate(spec(dataSourceId="", databaseId="3e6318325efa470281718b8a0e6651ba"))
    assert parsed.database_id == "3e6318325efa470281718b8a0e6651ba"

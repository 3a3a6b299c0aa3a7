"""The CRD files are generated from the pydantic models and must match them."""

from pathlib import Path

import pytest
import yaml

from lora_operator.crds import loratraining_crd, stale_crds

pytestmark = pytest.mark.unit

REPO = Path(__file__).resolve().parents[2]


def test_crd_files_are_fresh():
    stale = stale_crds(REPO / "crds")
    assert stale == [], f"stale CRD files {stale}: run `lora-operator crds write`"


def test_crd_names_and_columns():
    crd = loratraining_crd()
    names = crd["spec"]["names"]
    assert names["shortNames"] == ["lt"]
    assert names["categories"] == ["lora"]
    columns = [column["name"] for column in crd["spec"]["versions"][0]["additionalPrinterColumns"]]
    assert columns == ["Phase", "Progress", "Loss", "Age"]


def test_schema_has_descriptions_everywhere():
    schema = loratraining_crd()["spec"]["versions"][0]["schema"]["openAPIV3Schema"]["properties"]["spec"]
    missing = []

    def walk(node, path):
        if "description" not in node:
            missing.append(path)
        for name, child in node.get("properties", {}).items():
            walk(child, f"{path}.{name}")
        if "items" in node and node["items"].get("type") == "object":
            walk(node["items"], f"{path}[]")

    walk(schema, "spec")
    assert missing == []


def test_schema_is_structural():
    text = yaml.safe_dump(loratraining_crd())
    for forbidden in ("$ref", "anyOf", "'null'", "title:"):
        assert forbidden not in text


def test_rank_bounds_and_default_reach_schema():
    spec = loratraining_crd()["spec"]["versions"][0]["schema"]["openAPIV3Schema"]["properties"]["spec"]
    rank = spec["properties"]["lora"]["properties"]["rank"]
    assert rank["minimum"] == 1
    assert rank["maximum"] == 512
    assert rank["default"] == 8
    assert "Rank" in rank["description"]


def test_cel_rules_reach_schema():
    spec = loratraining_crd()["spec"]["versions"][0]["schema"]["openAPIV3Schema"]["properties"]["spec"]
    training_rules = [rule["rule"] for rule in spec["properties"]["training"]["x-kubernetes-validations"]]
    assert "!(has(self.maxSteps) && has(self.epochs))" in training_rules
    assert spec["x-kubernetes-validations"][0]["fieldPath"] == ".dataset.resolution"

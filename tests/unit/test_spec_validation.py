"""The spec models accept what a user would start from and reject bad values by name."""

from pathlib import Path

import pytest
from pydantic import ValidationError

from lora_operator.api.training import ManifestError, load_training_manifest
from lora_operator.api.training_spec import LoRATrainingSpec, TrainingSpec

pytestmark = pytest.mark.unit

REPO = Path(__file__).resolve().parents[2]


def minimal_spec(**overrides):
    document = {"baseModel": "builtin://tiny-sd", "dataset": {"sources": [{"uri": "file://data"}]}}
    document.update(overrides)
    return LoRATrainingSpec.model_validate(document)


def test_defaults_match_starting_values():
    spec = minimal_spec()
    assert spec.lora.rank == 8
    assert spec.lora.alpha == 16
    assert spec.lora.dropout == 0.1
    assert spec.training.learning_rate == 2e-4
    assert spec.training.batch_size == 4


TRAINING_EXAMPLES = sorted(
    path for path in (REPO / "examples").glob("*.yaml") if "kind: LoRATraining" in path.read_text(encoding="utf-8")
)


def test_training_examples_found():
    assert len(TRAINING_EXAMPLES) >= 3


@pytest.mark.parametrize("example", TRAINING_EXAMPLES, ids=lambda path: path.name)
def test_example_manifests_validate(example):
    training = load_training_manifest(example)
    assert training.metadata.name


def test_steps_and_epochs_conflict():
    with pytest.raises(ValidationError, match="set either training.maxSteps or training.epochs, not both"):
        TrainingSpec(max_steps=10, epochs=2)


def test_warmup_must_fit_in_steps():
    with pytest.raises(ValidationError, match=r"training.warmupSteps \(10\) must be smaller than training.maxSteps \(10\)"):
        TrainingSpec(max_steps=10, warmup_steps=10)


def test_resolution_multiple_of_eight():
    with pytest.raises(ValidationError, match=r"dataset.resolution \(100\) must be a multiple of 8 .*use 96"):
        minimal_spec(dataset={"sources": [{"uri": "file://data"}], "resolution": 100})


def test_unknown_field_rejected():
    with pytest.raises(ValidationError, match="Extra inputs are not permitted"):
        minimal_spec(lora={"rnak": 4})


def test_bad_model_scheme_rejected():
    with pytest.raises(ValidationError, match="baseModel"):
        minimal_spec(baseModel="ftp://model")


def test_manifest_error_names_field(tmp_path):
    path = tmp_path / "bad.yaml"
    path.write_text(
        "apiVersion: lora-operator.io/v1alpha1\nkind: LoRATraining\nmetadata: {name: bad}\n"
        "spec:\n  baseModel: builtin://tiny-sd\n  dataset: {sources: [{uri: file://x}]}\n  lora: {rank: 0}\n",
        encoding="utf-8",
    )
    with pytest.raises(ManifestError, match=r"spec\.lora\.rank: Input should be greater than or equal to 1 \(got 0\)"):
        load_training_manifest(path)


def test_wrong_kind_rejected(tmp_path):
    path = tmp_path / "pod.yaml"
    path.write_text("apiVersion: v1\nkind: Pod\nmetadata: {name: x}\n", encoding="utf-8")
    with pytest.raises(ManifestError, match="expected 'kind: LoRATraining'"):
        load_training_manifest(path)

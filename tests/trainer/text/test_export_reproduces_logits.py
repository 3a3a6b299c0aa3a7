"""The exported peft adapter, loaded onto the same base with PeftModel.from_pretrained, gives the trained logits."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from peft import PeftModel
from safetensors import safe_open
from transformers import AutoModelForCausalLM, AutoTokenizer

from lora_trainer.errors import InvalidInputError
from lora_trainer.text.export import check_saved_tensors, export_text_adapter
from lora_trainer.text.model_card import ModelCardFacts

from .builders import LOG, make_config, train, write_corpus

pytestmark = pytest.mark.trainer

VARIANTS = {
    "lora": {},
    "rslora-dora": {"lora": {"useRslora": True, "useDora": True}},
    "named-modules": {"lora": {"targetModules": ["q_proj", "v_proj"]}},
    "added-tokens": {"text": {"addedTokens": ["<brand>", "<tone>"]}},
}
PROMPT = "Do you fix flat tyres? <brand> Yes, while you wait."


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_corpus(tmp_path_factory.mktemp("corpus"))


def facts() -> ModelCardFacts:
    return ModelCardFacts(name="tiny-text", base_model="builtin://tiny-llama", base_model_revision="", steps=4, epochs=1,
                          lora={"rank": 4}, dataset_hash="0" * 64, train_records=10, eval_records=2)


def trained_and_exported(data_dir: Path, root: Path, overrides: dict) -> tuple[object, Path]:
    config = make_config(root / "run", data_dir, training={"maxSteps": 4}, **overrides)
    result = train(config, run_dir=root / "run", work_dir=root / "work")
    export_text_adapter(result.models, out_dir=root / "adapter", facts=facts(), merge=False, log=LOG)
    return result.models, root / "adapter"


def logits(model: torch.nn.Module, tokenizer, text: str) -> torch.Tensor:  # noqa: ANN001
    model.eval()
    with torch.no_grad():
        return model(**tokenizer(text, return_tensors="pt")).logits


@pytest.mark.parametrize("variant", sorted(VARIANTS))
def test_loaded_adapter_reproduces_logits(variant: str, data_dir: Path, tmp_path: Path) -> None:
    models, adapter_dir = trained_and_exported(data_dir, tmp_path, VARIANTS[variant])
    expected = logits(models.model, models.tokenizer, PROMPT)

    tokenizer = AutoTokenizer.from_pretrained(adapter_dir if models.tokenizer_changed else models.model_path)
    base = AutoModelForCausalLM.from_pretrained(models.model_path)
    if models.added_token_ids:
        base.resize_token_embeddings(len(tokenizer))
    loaded = PeftModel.from_pretrained(base, adapter_dir)

    assert torch.equal(logits(loaded, tokenizer, PROMPT), expected)


def test_training_changed_the_logits(data_dir: Path, tmp_path: Path) -> None:
    models, _ = trained_and_exported(data_dir, tmp_path, {})
    base = AutoModelForCausalLM.from_pretrained(models.model_path)

    assert not torch.allclose(logits(base, models.tokenizer, PROMPT), logits(models.model, models.tokenizer, PROMPT))


def test_adapter_folder_contents(data_dir: Path, tmp_path: Path) -> None:
    _, adapter_dir = trained_and_exported(data_dir, tmp_path, VARIANTS["added-tokens"])
    config = json.loads((adapter_dir / "adapter_config.json").read_text(encoding="utf-8"))
    card = (adapter_dir / "README.md").read_text(encoding="utf-8")

    assert config["base_model_name_or_path"] == "builtin://tiny-llama"
    assert config["r"] == 4
    assert (adapter_dir / "tokenizer.json").is_file()
    assert "<brand>" in AutoTokenizer.from_pretrained(adapter_dir).get_vocab()
    assert "vllm serve" in card
    assert "resize_token_embeddings" in card


def test_added_tokens_store_resized_vocabulary(data_dir: Path, tmp_path: Path) -> None:
    models, adapter_dir = trained_and_exported(data_dir, tmp_path, VARIANTS["added-tokens"])
    with safe_open(str(adapter_dir / "adapter_model.safetensors"), framework="pt") as handle:
        shapes = {key: handle.get_slice(key).get_shape() for key in handle.keys()}
    embeddings = [shape for key, shape in shapes.items() if key.endswith("embed_tokens.token_adapter.base_layer.weight")]

    assert embeddings == [[len(models.tokenizer), 64]]


def test_unchanged_tokenizer_not_exported(data_dir: Path, tmp_path: Path) -> None:
    _, adapter_dir = trained_and_exported(data_dir, tmp_path, {})

    assert not (adapter_dir / "tokenizer.json").exists()


def test_merged_weights_match_adapter(data_dir: Path, tmp_path: Path) -> None:
    config = make_config(tmp_path / "run", data_dir, training={"maxSteps": 3})
    result = train(config, run_dir=tmp_path / "run", work_dir=tmp_path / "work")
    exported = export_text_adapter(result.models, out_dir=tmp_path / "adapter", facts=facts(), merge=True, log=LOG)
    merged = AutoModelForCausalLM.from_pretrained(exported.merged_dir)
    tokenizer = AutoTokenizer.from_pretrained(exported.merged_dir)

    expected = logits(result.models.model, result.models.tokenizer, PROMPT)
    assert torch.allclose(logits(merged, tokenizer, PROMPT), expected, atol=1e-4)


def test_empty_adapter_fails_check(data_dir: Path, tmp_path: Path) -> None:
    models, adapter_dir = trained_and_exported(data_dir, tmp_path, {})
    models.model.requires_grad_(False)

    with pytest.raises(InvalidInputError, match=r"contains 28 adapter tensors but the model has 0 trainable"):
        check_saved_tensors(adapter_dir / "adapter_model.safetensors", models.model)

"""builtin://tiny-llama: a Llama model and tokenizer built in code, the same files at every build."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest
from transformers import AutoConfig, AutoTokenizer

from lora_trainer.models.builtin_llama import CHATML_TEMPLATE, tiny_llama_path
from lora_trainer.models.resolve import resolve_model_path

pytestmark = pytest.mark.trainer


def file_hashes(folder: Path) -> dict[str, str]:
    return {path.name: hashlib.sha256(path.read_bytes()).hexdigest() for path in sorted(folder.iterdir())}


def test_resolves_to_cached_folder() -> None:
    path = resolve_model_path("builtin://tiny-llama")

    assert path == tiny_llama_path()
    assert path.name == "tiny-llama-v1"
    assert path.parent.name == "builtin"


def test_llama_architecture() -> None:
    config = AutoConfig.from_pretrained(tiny_llama_path())

    assert config.model_type == "llama"
    assert config.hidden_size == 64
    assert config.num_hidden_layers == 2
    assert config.vocab_size == 512


def test_tokenizer_has_chat_template() -> None:
    tokenizer = AutoTokenizer.from_pretrained(tiny_llama_path())
    text = tokenizer.apply_chat_template([{"role": "user", "content": "Hi"}], tokenize=False, add_generation_prompt=True)

    assert tokenizer.chat_template == CHATML_TEMPLATE
    assert text == "<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\n"
    assert tokenizer.decode(tokenizer("Où est le vélo ?")["input_ids"]) == "Où est le vélo ?"


def test_builds_identical_files(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    first = file_hashes(tiny_llama_path())
    monkeypatch.setenv("LORA_CACHE_DIR", str(tmp_path))

    assert file_hashes(tiny_llama_path()) == first

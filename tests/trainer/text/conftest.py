"""Fixtures of the text trainer tests: a per-session model cache, so builtin://tiny-llama is built once."""

from __future__ import annotations

from collections.abc import Iterator

import pytest


@pytest.fixture(scope="session", autouse=True)
def model_cache(tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("LORA_CACHE_DIR", str(tmp_path_factory.mktemp("model-cache")))
        yield

"""Fixtures of the captioning tests: a model cache shared by the session, and small test images."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from lora_trainer.data.records import ImageRecord


@pytest.fixture(scope="session")
def model_cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Cache root for the session, so builtin://tiny-clip is built once."""
    return tmp_path_factory.mktemp("model-cache")


@pytest.fixture(autouse=True)
def isolated_model_cache(model_cache: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LORA_CACHE_DIR", str(model_cache))


@pytest.fixture
def make_records(tmp_path: Path) -> Callable[..., list[ImageRecord]]:
    """Return a factory of accepted records with distinct random 64x80 RGB PNGs, one per name."""

    def make(names: list[str], *, seed: int = 0) -> list[ImageRecord]:
        rng = np.random.default_rng(seed)
        records = []
        for name in names:
            path = tmp_path / "images" / name
            path.parent.mkdir(parents=True, exist_ok=True)
            pixels = rng.integers(0, 256, size=(64, 80, 3), dtype=np.uint8)
            Image.fromarray(pixels).save(path)
            records.append(ImageRecord(name=name, source_uri=path.as_uri(), image_path=path, bucket=(80, 64)))
        return records

    return make

"""resolve_model_path for hf:// URIs, with the network off: offline errors and a pre-filled cache."""

from __future__ import annotations

from pathlib import Path

import huggingface_hub.constants
import pytest

from lora_trainer.errors import InvalidInputError
from lora_trainer.models.resolve import resolve_model_path

pytestmark = pytest.mark.trainer

COMMIT = "0123456789abcdef0123456789abcdef01234567"


@pytest.fixture
def hub_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """An empty Hugging Face cache in offline mode; huggingface_hub itself also refuses traffic."""
    cache = tmp_path / "hf-cache"
    cache.mkdir()
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_HUB_CACHE", str(cache))
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", True)
    return cache


def _cache_snapshot(cache: Path, repo_id: str, *, revision: str = "main") -> Path:
    """Lay out a cached snapshot as huggingface_hub stores it: refs/<revision> names snapshots/<commit>/."""
    repo_folder = cache / ("models--" + repo_id.replace("/", "--"))
    (repo_folder / "refs").mkdir(parents=True)
    (repo_folder / "refs" / revision).write_text(COMMIT)
    snapshot = repo_folder / "snapshots" / COMMIT
    snapshot.mkdir(parents=True)
    (snapshot / "open_clip_config.json").write_text("{}")
    return snapshot


def test_offline_error_names_repo_and_fix(hub_cache):
    with pytest.raises(InvalidInputError) as caught:
        resolve_model_path("hf://some-org/some-model")

    message = str(caught.value)
    assert "hf://some-org/some-model" in message
    assert "HF_HUB_OFFLINE" in message
    assert "internet" in message
    assert "pvc://" in message
    assert "s3://" in message


def test_offline_error_names_revision(hub_cache):
    with pytest.raises(InvalidInputError, match="revision 'v2'"):
        resolve_model_path("hf://some-org/some-model", revision="v2")


def test_cached_snapshot_resolves_offline(hub_cache):
    snapshot = _cache_snapshot(hub_cache, "some-org/some-model")

    assert resolve_model_path("hf://some-org/some-model") == snapshot


def test_cached_revision_resolves_offline(hub_cache):
    snapshot = _cache_snapshot(hub_cache, "some-org/some-model", revision="v2")

    assert resolve_model_path("hf://some-org/some-model", revision="v2") == snapshot


def test_commit_revision_resolves_offline(hub_cache):
    snapshot = _cache_snapshot(hub_cache, "some-org/some-model")

    assert resolve_model_path("hf://some-org/some-model", revision=COMMIT) == snapshot


def test_repo_id_needs_org_and_name(hub_cache):
    with pytest.raises(InvalidInputError, match="hf://ORG/REPO"):
        resolve_model_path("hf://just-a-name")

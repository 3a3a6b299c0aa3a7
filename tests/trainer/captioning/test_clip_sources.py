"""Where the captioning model comes from: builtin, checkpoint folders, pretrained tags offline."""

from __future__ import annotations

from pathlib import Path

import huggingface_hub.constants
import pytest
import torch

from lora_operator.api.training_spec import CaptioningSpec
from lora_trainer.captioning import caption_records
from lora_trainer.captioning.clip_loader import load_clip
from lora_trainer.errors import InvalidInputError
from lora_trainer.models.builtin_clip import build_tiny_clip, save_open_clip_checkpoint

pytestmark = pytest.mark.trainer

VOCABULARY = ["red", "green", "blue"]


@pytest.fixture
def offline_hub(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """An empty Hugging Face cache in offline mode; huggingface_hub itself also refuses traffic."""
    cache = tmp_path / "hf-cache"
    cache.mkdir()
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_HUB_CACHE", str(cache))
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", True)
    return cache


@pytest.fixture
def checkpoint_folder(tmp_path: Path) -> Path:
    folder = tmp_path / "checkpoints" / "my clip"
    save_open_clip_checkpoint(build_tiny_clip(), folder)
    return folder


def test_pretrained_tag_offline_fails_clearly(offline_hub):
    with pytest.raises(InvalidInputError) as caught:
        load_clip("ViT-B-32:laion2b_s34b_b79k")

    message = str(caught.value)
    assert "ViT-B-32:laion2b_s34b_b79k" in message
    assert "HF_HUB_OFFLINE" in message
    assert "internet" in message
    assert "pvc://" in message
    assert "s3://" in message


def test_unknown_architecture_rejected():
    with pytest.raises(InvalidInputError, match="unknown open_clip architecture 'ViT-Nope'"):
        load_clip("ViT-Nope:laion2b_s34b_b79k")


def test_unknown_tag_lists_known_ones():
    with pytest.raises(InvalidInputError, match="laion2b_s34b_b79k"):
        load_clip("ViT-B-32:no-such-tag")


def test_name_without_tag_rejected():
    with pytest.raises(InvalidInputError, match="ARCH:PRETRAINED_TAG"):
        load_clip("ViT-B-32")


def test_file_checkpoint_loads(checkpoint_folder):
    loaded = load_clip(checkpoint_folder.as_uri()).model.state_dict()
    built = build_tiny_clip().state_dict()

    for name in built:
        assert torch.equal(loaded[name], built[name]), name


def test_relative_file_uses_base_dir(checkpoint_folder, make_records):
    records = make_records(["a.png"])
    spec = CaptioningSpec(model="file://my%20clip", vocabulary=VOCABULARY)

    caption_records(records, spec, base_dir=checkpoint_folder.parent)

    assert records[0].caption_source == "generated"


def test_pvc_checkpoint_tags_images(checkpoint_folder, make_records, monkeypatch):
    monkeypatch.setenv("LORA_PVC_ROOT", str(checkpoint_folder.parent.parent))
    records = make_records(["a.png"])

    caption_records(records, CaptioningSpec(model="pvc://checkpoints/my clip", vocabulary=VOCABULARY))

    assert len(records[0].tags) == len(VOCABULARY)


def test_same_weights_same_tags(checkpoint_folder, make_records):
    builtin = make_records(["a.png"])
    from_file = make_records(["a.png"])

    caption_records(builtin, CaptioningSpec(vocabulary=VOCABULARY))
    caption_records(from_file, CaptioningSpec(model=checkpoint_folder.as_uri(), vocabulary=VOCABULARY))

    assert builtin[0].tags == from_file[0].tags


def test_folder_without_config_rejected(tmp_path):
    folder = tmp_path / "not-a-checkpoint"
    folder.mkdir()

    with pytest.raises(InvalidInputError, match="open_clip_config.json"):
        load_clip(folder.as_uri())


def test_missing_checkpoint_names_uri(make_records):
    records = make_records(["a.png"])

    with pytest.raises(InvalidInputError, match="file:///no/such/clip"):
        caption_records(records, CaptioningSpec(model="file:///no/such/clip", vocabulary=VOCABULARY))

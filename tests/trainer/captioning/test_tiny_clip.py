"""builtin://tiny-clip: deterministic weights, an open_clip checkpoint folder, no downloads."""

from __future__ import annotations

import json

import pytest
import torch

from lora_trainer.captioning.clip_loader import load_clip
from lora_trainer.models.builtin_clip import CONFIG_FILE, WEIGHTS_FILE, build_tiny_clip, tiny_clip_path

pytestmark = pytest.mark.trainer


def test_two_builds_have_equal_weights():
    first = build_tiny_clip().state_dict()
    second = build_tiny_clip().state_dict()

    assert first.keys() == second.keys()
    for name in first:
        assert torch.equal(first[name], second[name]), name


def test_build_keeps_global_rng_state():
    torch.manual_seed(123)
    expected = torch.rand(3)
    torch.manual_seed(123)

    build_tiny_clip()

    assert torch.equal(torch.rand(3), expected)


def test_cached_folder_is_open_clip_checkpoint(model_cache):
    folder = tiny_clip_path()

    assert folder == model_cache / "builtin" / "tiny-clip-v1"
    assert (folder / WEIGHTS_FILE).is_file()
    config = json.loads((folder / CONFIG_FILE).read_text())
    assert config["model_cfg"]["vision_cfg"]["image_size"] == 64
    assert config["model_cfg"]["text_cfg"]["vocab_size"] == 49408


def test_loaded_weights_match_build():
    loaded = load_clip("builtin://tiny-clip").model.state_dict()
    built = build_tiny_clip().state_dict()

    for name in built:
        assert torch.equal(loaded[name], built[name]), name


def test_preprocess_yields_64px_tensor():
    from PIL import Image

    clip = load_clip("builtin://tiny-clip")

    pixels = clip.preprocess(Image.new("RGB", (300, 200), (200, 30, 30)))

    assert pixels.shape == (3, 64, 64)


def test_tokenizer_uses_bundled_bpe():
    clip = load_clip("builtin://tiny-clip")

    tokens = clip.tokenizer(["a watercolor painting of a cat"])

    assert tokens.shape == (1, 77)
    # open_clip's SimpleTokenizer: start-of-text is 49406, end-of-text is 49407.
    assert tokens[0, 0].item() == 49406
    assert 49407 in tokens[0].tolist()

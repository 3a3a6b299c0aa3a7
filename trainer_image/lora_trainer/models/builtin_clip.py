"""builtin://tiny-clip: a tiny, randomly initialised open_clip model built in code.

It has the architecture of open_clip's ViT models (a ViT image tower on 64-px images with 16-px
patches, a causal text transformer with open_clip's BPE tokenizer and 77-token context) at about
180 thousand parameters plus 1.6 million in the token embedding. Its weights are random, so the
tags it produces are meaningless: it exists for wiring checks, demos and tests only. The
same version always builds the same weights.

The model is stored as an open_clip checkpoint folder (``open_clip_config.json`` plus
``open_clip_model.safetensors``), the layout open_clip reads with its ``local-dir:`` schema,
so it loads through the same code path as any local checkpoint.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from pathlib import Path
from typing import Any

import torch

from lora_trainer.models.cache_dir import cache_root

# Bump when the architecture, the preprocessing or the seed changes, so cached copies are rebuilt.
TINY_CLIP_VERSION = "1"
TINY_CLIP_SEED = 0
CONFIG_FILE = "open_clip_config.json"
WEIGHTS_FILE = "open_clip_model.safetensors"

# The CLIP normalisation constants: open_clip 3.3 OPENAI_DATASET_MEAN and OPENAI_DATASET_STD.
CLIP_MEAN = (0.48145466, 0.4578275, 0.40821073)
CLIP_STD = (0.26862954, 0.26130258, 0.27577711)

TINY_CLIP_MODEL_CONFIG: dict[str, Any] = {
    "embed_dim": 32,
    "vision_cfg": {"image_size": 64, "patch_size": 16, "width": 64, "layers": 2, "head_width": 16},
    # vocab_size matches open_clip's SimpleTokenizer, whose BPE file ships inside the open_clip package.
    "text_cfg": {"context_length": 77, "vocab_size": 49408, "width": 32, "heads": 4, "layers": 2},
}
TINY_CLIP_PREPROCESS_CONFIG: dict[str, Any] = {
    "mean": list(CLIP_MEAN),
    "std": list(CLIP_STD),
    "interpolation": "bicubic",
    "resize_mode": "shortest",
}


def tiny_clip_path() -> Path:
    """Return the checkpoint folder of builtin://tiny-clip, building it on first use."""
    folder = cache_root() / "builtin" / f"tiny-clip-v{TINY_CLIP_VERSION}"
    if (folder / CONFIG_FILE).is_file() and (folder / WEIGHTS_FILE).is_file():
        return folder
    folder.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(dir=folder.parent, prefix=".tiny-clip-"))
    try:
        save_open_clip_checkpoint(build_tiny_clip(), staging)
        # A concurrent builder may have won the race; both built identical weights.
        if not folder.exists():
            os.replace(staging, folder)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return folder


def build_tiny_clip() -> torch.nn.Module:
    """Build the tiny open_clip CLIP model with a fixed seed. The global RNG state is left unchanged."""
    import open_clip

    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(TINY_CLIP_SEED)
        model = open_clip.CLIP(**json.loads(json.dumps(TINY_CLIP_MODEL_CONFIG)))
    return model.eval()


def save_open_clip_checkpoint(
    model: torch.nn.Module,
    folder: Path,
    *,
    model_config: dict[str, Any] | None = None,
    preprocess_config: dict[str, Any] | None = None,
) -> None:
    """Write ``model`` as an open_clip checkpoint folder that ``local-dir:`` loading reads.

    The configs default to those of tiny-clip; pass the ones the model was built from otherwise.
    """
    from safetensors.torch import save_file

    folder.mkdir(parents=True, exist_ok=True)
    config = {
        "model_cfg": model_config if model_config is not None else TINY_CLIP_MODEL_CONFIG,
        "preprocess_cfg": preprocess_config if preprocess_config is not None else TINY_CLIP_PREPROCESS_CONFIG,
    }
    (folder / CONFIG_FILE).write_text(json.dumps(config, indent=2) + "\n", encoding="utf-8")
    state = {name: tensor.detach().contiguous().cpu() for name, tensor in model.state_dict().items()}
    save_file(state, str(folder / WEIGHTS_FILE))

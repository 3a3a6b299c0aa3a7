"""Load the open_clip model that captioning uses, from a model URI or an 'ARCH:PRETRAINED_TAG' name."""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import torch

from lora_trainer.errors import InvalidInputError, TrainerError
from lora_trainer.models.builtin_clip import CONFIG_FILE
from lora_trainer.models.resolve import hf_offline_mode, resolve_model_path


@dataclass
class LoadedClip:
    """An open_clip model in eval mode with its inference preprocessing and tokenizer."""

    model: torch.nn.Module
    preprocess: Callable
    """PIL image -> normalised tensor (resize, centre crop, normalise), as open_clip builds it."""
    tokenizer: Callable
    key: str
    """Identity of the weights (checkpoint folder or ARCH:TAG), used to cache text embeddings."""


def load_clip(
    source: str,
    *,
    device: str = "cpu",
    base_dir: Path | None = None,
    s3_endpoint: str = "",
    s3_secure: bool = True,
) -> LoadedClip:
    """Load ``source``: a model URI (builtin://, file://, pvc://, s3://, hf://) or 'ARCH:PRETRAINED_TAG'.

    A URI must lead to an open_clip checkpoint folder: ``open_clip_config.json`` (with
    ``model_cfg`` and optional ``preprocess_cfg``) next to the weights, for example
    ``open_clip_model.safetensors``.
    """
    if "://" in source:
        folder = resolve_model_path(source, s3_endpoint=s3_endpoint, s3_secure=s3_secure, base_dir=base_dir)
        return _load_checkpoint_folder(source, folder, device=device)
    return _load_pretrained_tag(source, device=device)


def _load_checkpoint_folder(source: str, folder: Path, *, device: str) -> LoadedClip:
    import open_clip

    if not (folder / CONFIG_FILE).is_file():
        raise InvalidInputError(
            f"captioning model {source!r} resolves to {folder}, which has no {CONFIG_FILE}: point it at an "
            f"open_clip checkpoint folder ({CONFIG_FILE} with 'model_cfg' plus open_clip_model.safetensors)"
        )
    name = f"local-dir:{folder}"
    try:
        model, _, preprocess = open_clip.create_model_and_transforms(name, device=device)
        tokenizer = open_clip.get_tokenizer(name)
    except (ValueError, RuntimeError, KeyError, FileNotFoundError) as error:
        raise InvalidInputError(f"failed to load captioning model {source!r} from {folder}: {error}") from error
    # The newest modification time distinguishes weights replaced in place, for example by a newer S3 download.
    newest = max(path.stat().st_mtime_ns for path in folder.iterdir() if path.is_file())
    key = f"{folder.resolve()}@{newest}"
    return LoadedClip(model=model.eval(), preprocess=preprocess, tokenizer=tokenizer, key=key)


def _load_pretrained_tag(source: str, *, device: str) -> LoadedClip:
    import open_clip

    arch, separator, tag = source.partition(":")
    if not separator or not arch or not tag:
        raise InvalidInputError(
            f"captioning model {source!r} is neither a URI nor 'ARCH:PRETRAINED_TAG': use for example "
            "'ViT-B-32:laion2b_s34b_b79k', builtin://tiny-clip, or a file://, pvc:// or s3:// checkpoint folder"
        )
    if arch not in open_clip.list_models():
        raise InvalidInputError(
            f"captioning model {source!r} names the unknown open_clip architecture {arch!r}: "
            "pick one from open_clip.list_models(), for example ViT-B-32"
        )
    tags = open_clip.list_pretrained_tags_by_model(arch)
    if tag not in tags:
        raise InvalidInputError(
            f"captioning model {source!r} names the unknown pretrained tag {tag!r}: {arch} has {', '.join(tags) or 'none'}"
        )
    if hf_offline_mode() and not _pretrained_weights_cached(open_clip.get_pretrained_cfg(arch, tag)):
        raise InvalidInputError(
            f"captioning model {source!r} must be downloaded but HF_HUB_OFFLINE is set: the cluster needs internet "
            "access, or save the model as an open_clip checkpoint folder on a volume or bucket and use its "
            "pvc:// or s3:// URI"
        )
    # NOTE: with the weights cached, open_clip still sends a request to the Hub unless HF_HUB_OFFLINE was
    # already set when huggingface_hub was imported, because huggingface_hub reads it at import time.
    try:
        model, _, preprocess = open_clip.create_model_and_transforms(arch, pretrained=tag, device=device)
    except RuntimeError as error:
        raise TrainerError(f"failed to download captioning model {source!r}: {error}") from error
    return LoadedClip(model=model.eval(), preprocess=preprocess, tokenizer=open_clip.get_tokenizer(arch), key=source)


def _pretrained_weights_cached(pretrained_cfg: dict) -> bool:
    """Tell whether the Hugging Face cache contains the weights of an open_clip pretrained tag, without traffic."""
    from huggingface_hub import try_to_load_from_cache

    hub_path = pretrained_cfg.get("hf_hub", "")
    if not hub_path:
        # Weights published only at a URL: open_clip would download them, which offline mode forbids.
        return False
    # open_clip reads "org/repo/file" or "org/repo/" (its default file name), and prefers a
    # safetensors file to a pickled one of the same stem.
    repo_id, filename = os.path.split(hub_path)
    filename = filename or "open_clip_pytorch_model.bin"
    safe_name = "open_clip_model.safetensors" if filename == "open_clip_pytorch_model.bin" else filename[:-4] + ".safetensors"
    for candidate in (safe_name, filename):
        cached = try_to_load_from_cache(repo_id, candidate, cache_dir=os.environ.get("HF_HUB_CACHE") or None)
        if isinstance(cached, str):
            return True
    return False

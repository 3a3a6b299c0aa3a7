"""The trainer's cache folder for builtin models and downloaded files."""

from __future__ import annotations

import os
from pathlib import Path


def cache_root() -> Path:
    """Return LORA_CACHE_DIR, else $XDG_CACHE_HOME/lora-operator, else ~/.cache/lora-operator."""
    explicit = os.environ.get("LORA_CACHE_DIR")
    if explicit:
        return Path(explicit)
    xdg = os.environ.get("XDG_CACHE_HOME")
    base = Path(xdg) if xdg else Path.home() / ".cache"
    return base / "lora-operator"

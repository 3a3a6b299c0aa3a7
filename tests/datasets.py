"""Paths of the test images; tests read them from here only.

LORA_TEST_DATASETS overrides the folder that contains photos/ and bad-images/.
"""

from __future__ import annotations

import os
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]
DATASETS_ENV = "LORA_TEST_DATASETS"

DATASETS_DIR = Path(os.environ.get(DATASETS_ENV) or REPO_ROOT.parent / "shared" / "datasets")
PHOTOS_DIR = DATASETS_DIR / "photos"
"""Real photographs (RGB, grayscale and RGBA; 371 to 1411 pixels a side)."""
BAD_IMAGES_DIR = DATASETS_DIR / "bad-images"
"""Broken and awkward images; its README.md table gives each file's expected outcome."""

"""Seeds derived from the run seed and a data position, so every random draw can be replayed."""

from __future__ import annotations

import numpy as np

# Purposes mixed into derived seeds, so two streams of the same position never coincide.
DATA_ORDER = 0
NOISE = 1
DROPOUT = 2


def derive_seed(seed: int, *parts: int) -> int:
    """Return a 63-bit seed that depends on ``seed`` and every part, in order.

    numpy's SeedSequence hashes the parts, so neighbouring positions such as
    (epoch 1, batch 0) and (epoch 0, batch 1) get unrelated seeds, which plain
    addition (seed + epoch + batch) would not.
    """
    state = np.random.SeedSequence([seed, *parts]).generate_state(1, dtype=np.uint64)[0]
    return int(state) & (2**63 - 1)

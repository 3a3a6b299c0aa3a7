"""SHA-256 of a safetensors file's tensor data, as `modelspec.hash_sha256` records it.

The Stability AI model spec 1.0.0 defines `hash_sha256` as the SHA-256 of all tensor
content, that is the file without its 8-byte length prefix and JSON header, written as
"0x" and lowercase hex.
"""

from __future__ import annotations

import hashlib
import struct
from pathlib import Path

import torch

_CHUNK_BYTES = 1 << 20


def state_dict_data_sha256(state_dict: dict[str, torch.Tensor]) -> str:
    """Hash the tensors' bytes in the order safetensors stores them in a file.

    safetensors (checked with 0.8) sorts tensors by dtype alignment, then by name, and
    packs them without gaps. Every tensor here is fp32, so name order is file order.
    The result then equals `file_data_sha256` of the saved file, which the exporter checks.
    """
    dtypes = {tensor.dtype for tensor in state_dict.values()}
    if dtypes - {torch.float32}:
        raise ValueError(f"Expected only fp32 tensors to hash, found dtypes {sorted(map(str, dtypes))}.")
    digest = hashlib.sha256()
    for key in sorted(state_dict):
        digest.update(state_dict[key].contiguous().numpy().tobytes())
    return "0x" + digest.hexdigest()


def file_data_sha256(path: Path) -> str:
    """Hash everything after the header of the safetensors file at `path`."""
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        (header_length,) = struct.unpack("<Q", handle.read(8))
        handle.seek(8 + header_length)
        while chunk := handle.read(_CHUNK_BYTES):
            digest.update(chunk)
    return "0x" + digest.hexdigest()

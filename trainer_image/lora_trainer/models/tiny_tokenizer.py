"""A byte-level CLIP tokenizer built in code, so builtin models need no download.

It has one token per byte (and per byte at the end of a word) and no merges, so it
encodes any UTF-8 text, one token per byte. It is meant for the tiny random models only.
"""

from __future__ import annotations

from transformers import CLIPTokenizer
from transformers.convert_slow_tokenizer import bytes_to_unicode

START_TOKEN = "<|startoftext|>"
END_TOKEN = "<|endoftext|>"


def byte_vocabulary() -> dict[str, int]:
    """Return the vocabulary: each byte symbol, each with the end-of-word suffix, then the two specials."""
    symbols = list(bytes_to_unicode().values())
    vocab: dict[str, int] = {}
    for symbol in symbols + [symbol + "</w>" for symbol in symbols]:
        vocab[symbol] = len(vocab)
    vocab[START_TOKEN] = len(vocab)
    vocab[END_TOKEN] = len(vocab)
    return vocab


def build_byte_tokenizer(*, max_length: int = 77) -> CLIPTokenizer:
    """Build the byte-level CLIPTokenizer."""
    return CLIPTokenizer(vocab=byte_vocabulary(), merges=[], model_max_length=max_length)


def byte_vocab_size() -> int:
    """Number of tokens in byte_vocabulary."""
    return 2 * 256 + 2

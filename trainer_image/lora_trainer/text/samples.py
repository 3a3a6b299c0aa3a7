"""The tokenised dataset: training and eval samples, with what tokenisation did to each record."""

from __future__ import annotations

import hashlib
import logging
import math
from collections import Counter
from dataclasses import dataclass
from typing import Any

from lora_operator.api.training_spec import TextSpec
from lora_trainer.errors import InvalidInputError
from lora_trainer.text.dataset import TextDataset
from lora_trainer.text.tokenize import TokenSample, TokenizedRecord, pack_samples, tokenize_record


@dataclass
class TokenizedDataset:
    train: list[TokenSample]
    eval: list[TokenSample]
    records: list[TokenizedRecord]
    """Every record, train then eval, with its token count and outcome."""

    def fingerprint(self) -> str:
        """Return a sha256 of every sample's tokens and labels, so a checkpoint resumes only on the same data."""
        digest = hashlib.sha256()
        for part, samples in (("train", self.train), ("eval", self.eval)):
            digest.update(part.encode())
            for sample in samples:
                digest.update(repr((sample.input_ids, sample.labels, sample.position_ids)).encode())
        return digest.hexdigest()

    def outcomes(self) -> dict[str, int]:
        return dict(Counter(record.outcome for record in self.records))


def tokenize_dataset(dataset: TextDataset, *, tokenizer, template: str, text: TextSpec, log: logging.Logger) -> TokenizedDataset:  # noqa: ANN001
    """Tokenise every record; pack the training samples when text.packing is set."""
    train_records = [tokenize_record(record, tokenizer=tokenizer, template=template, text=text) for record in dataset.train]
    eval_records = [tokenize_record(record, tokenizer=tokenizer, template=template, text=text) for record in dataset.eval]
    train = [sample for record in train_records for sample in record.samples]
    held_out = [sample for record in eval_records for sample in record.samples]
    result = TokenizedDataset(train=train, eval=held_out, records=train_records + eval_records)
    if text.packing and train:
        packed = pack_samples(train, max_length=text.max_seq_length)
        log.info("packed %d samples into %d sequences of at most %d tokens", len(train), len(packed), text.max_seq_length)
        result.train = packed
    log.info("tokenised: %d train and %d eval samples; record outcomes %s", len(result.train), len(held_out), result.outcomes())
    return result


def token_statistics(lengths: list[int]) -> dict[str, Any]:
    """Return count, total, min, max, mean and the 50th, 90th and 99th percentiles (nearest rank) of token lengths."""
    if not lengths:
        return {"count": 0, "total": 0}
    ordered = sorted(lengths)

    def percentile(share: float) -> int:
        return ordered[max(0, math.ceil(share * len(ordered)) - 1)]

    return {
        "count": len(ordered),
        "total": sum(ordered),
        "min": ordered[0],
        "max": ordered[-1],
        "mean": round(sum(ordered) / len(ordered), 2),
        "p50": percentile(0.5),
        "p90": percentile(0.9),
        "p99": percentile(0.99),
    }


def require_training_samples(tokenized: TokenizedDataset) -> None:
    """Raise InvalidInputError, naming what removed them, when tokenisation left no training sample."""
    if tokenized.train:
        return
    raise InvalidInputError(
        f"no training sample is left after tokenisation (record outcomes: {tokenized.outcomes()}): raise "
        "text.maxSeqLength, set text.overlong to split, or check that records have completions or assistant turns"
    )

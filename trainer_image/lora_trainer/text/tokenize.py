"""Tokenisation of records into training samples: labels, over-long records, packing.

A sample's ``labels`` repeat its ``input_ids`` where the loss trains and hold IGNORE_INDEX
elsewhere (prompts, system and user turns, padding). The model predicts token t+1 from
tokens up to t, so a label at position 0 is never a target.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from lora_operator.api.training_spec import TextSpec
from lora_trainer.text.chat_template import RenderedRecord, render_record
from lora_trainer.text.records import TextRecord

IGNORE_INDEX = -100


@dataclass
class TokenSample:
    input_ids: list[int]
    labels: list[int]
    position_ids: list[int] | None = None
    """Set for packed samples: positions restart at 0 for each record in the sequence."""

    def trained_tokens(self) -> int:
        return sum(1 for label in self.labels[1:] if label != IGNORE_INDEX)


@dataclass
class TokenizedRecord:
    """A record's samples and what the length policy did to it."""

    record: TextRecord
    tokens: int
    """Tokens of the whole record, before truncation or splitting."""
    samples: list[TokenSample] = field(default_factory=list)
    outcome: str = "fits"
    """fits, truncated, split, skipped (over-long with overlong: skip) or untrained (no trained token left)."""


def tokenize_record(record: TextRecord, *, tokenizer, template: str, text: TextSpec) -> TokenizedRecord:  # noqa: ANN001
    """Tokenise one record and apply text.overlong when it is longer than text.maxSeqLength."""
    rendered = render_record(record, tokenizer=tokenizer, template=template, completion_only=text.completion_only_loss)
    input_ids, labels = encode_segments(rendered, tokenizer=tokenizer)
    result = TokenizedRecord(record=record, tokens=len(input_ids))
    limit = text.max_seq_length
    if len(input_ids) <= limit:
        windows = [(input_ids, labels)]
    elif text.overlong == "skip":
        result.outcome = "skipped"
        return result
    elif text.overlong == "truncate":
        windows, result.outcome = [(input_ids[:limit], labels[:limit])], "truncated"
    else:
        windows = [(input_ids[start:start + limit], labels[start:start + limit]) for start in range(0, len(input_ids), limit)]
        result.outcome = "split"
    result.samples = [TokenSample(ids, window_labels) for ids, window_labels in windows]
    result.samples = [sample for sample in result.samples if sample.trained_tokens() > 0]
    if not result.samples:
        result.outcome = "untrained"
    return result


def encode_segments(rendered: RenderedRecord, *, tokenizer) -> tuple[list[int], list[int]]:  # noqa: ANN001
    """Tokenise the rendered text as one string and label the tokens that start inside trained segments.

    Tokenising the whole text, not segment by segment, gives the same tokens as at inference.
    Plain records get the tokenizer's own special tokens (a BOS for Llama tokenizers) and
    end with EOS, so the model learns where a text ends. Templated chats carry their own.
    """
    text = rendered.text
    encoding = tokenizer(text, add_special_tokens=not rendered.templated, return_offsets_mapping=True)
    input_ids = list(encoding["input_ids"])
    trained_spans = _trained_spans(rendered)
    labels = [
        token if end > start and any(low <= start < high for low, high in trained_spans) else IGNORE_INDEX
        for token, (start, end) in zip(input_ids, encoding["offset_mapping"])
    ]
    eos = tokenizer.eos_token_id
    if not rendered.templated and eos is not None and (not input_ids or input_ids[-1] != eos):
        input_ids.append(eos)
        labels.append(eos if rendered.segments[-1].trained else IGNORE_INDEX)
    return input_ids, labels


def _trained_spans(rendered: RenderedRecord) -> list[tuple[int, int]]:
    spans, position = [], 0
    for segment in rendered.segments:
        if segment.trained:
            spans.append((position, position + len(segment.text)))
        position += len(segment.text)
    return spans


def pack_samples(samples: list[TokenSample], *, max_length: int) -> list[TokenSample]:
    """Pack whole samples into sequences of at most ``max_length`` tokens, first fit by decreasing length.

    Positions restart at 0 for each packed sample, which is how the forward pass keeps the
    samples of one sequence from attending to each other (see batches.forward_inputs).
    """
    order = sorted(range(len(samples)), key=lambda index: (-len(samples[index].input_ids), index))
    bins: list[list[TokenSample]] = []
    sizes: list[int] = []
    for index in order:
        sample = samples[index]
        length = len(sample.input_ids)
        target = next((number for number, size in enumerate(sizes) if size + length <= max_length), None)
        if target is None:
            bins.append([sample])
            sizes.append(length)
        else:
            bins[target].append(sample)
            sizes[target] += length
    return [_concatenate(parts) for parts in bins]


def _concatenate(parts: list[TokenSample]) -> TokenSample:
    input_ids, labels, positions = [], [], []
    for part in parts:
        input_ids.extend(part.input_ids)
        # The first token of each part has no prediction from the part before it.
        labels.extend([IGNORE_INDEX, *part.labels[1:]])
        positions.extend(range(len(part.input_ids)))
    return TokenSample(input_ids=input_ids, labels=labels, position_ids=positions)

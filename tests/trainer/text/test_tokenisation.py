"""Tokenisation: loss masks of each record shape, chat templates, over-long records and packing."""

from __future__ import annotations

import pytest
from transformers import AutoTokenizer

from lora_operator.api.training_spec import TextSpec
from lora_trainer.errors import InvalidInputError
from lora_trainer.models.builtin_llama import tiny_llama_path
from lora_trainer.text.chat_template import DEFAULT_CHAT_TEMPLATE, resolve_chat_template
from lora_trainer.text.records import ChatMessage, TextRecord
from lora_trainer.text.tokenize import IGNORE_INDEX, TokenSample, pack_samples, tokenize_record

pytestmark = pytest.mark.trainer

CHAT = TextRecord(kind="chat", file="c.jsonl", line=1, messages=[
    ChatMessage("system", "Be brief."), ChatMessage("user", "Open today?"), ChatMessage("assistant", "Yes, until six."),
    ChatMessage("user", "Sunday?"), ChatMessage("assistant", "Closed on Sundays."),
])
PAIR = TextRecord(kind="prompt_completion", file="p.csv", line=2, prompt="Question: where are you?", completion=" On Mill Road.")
TEXT = TextRecord(kind="text", file="t.txt", line=1, text="We write the way we talk at the counter.")


@pytest.fixture(scope="module")
def tokenizer():  # noqa: ANN201
    return AutoTokenizer.from_pretrained(tiny_llama_path())


def trained_text(tokenizer, record: TextRecord, **text: object) -> str:  # noqa: ANN001
    result = tokenize_record(record, tokenizer=tokenizer, template=tokenizer.chat_template, text=TextSpec(**text))
    sample = result.samples[0]
    return tokenizer.decode([label for label in sample.labels if label != IGNORE_INDEX])


def test_chat_trains_assistant_turns(tokenizer) -> None:  # noqa: ANN001
    assert trained_text(tokenizer, CHAT) == "Yes, until six.<|im_end|>\nClosed on Sundays.<|im_end|>\n"


def test_chat_full_loss_option(tokenizer) -> None:  # noqa: ANN001
    rendered = tokenizer.apply_chat_template([{"role": m.role, "content": m.content} for m in CHAT.messages], tokenize=False)

    assert trained_text(tokenizer, CHAT, completion_only_loss=False) == rendered


def test_completion_trained_prompt_masked(tokenizer) -> None:  # noqa: ANN001
    assert trained_text(tokenizer, PAIR) == " On Mill Road.</s>"


def test_prompt_trained_without_masking(tokenizer) -> None:  # noqa: ANN001
    assert trained_text(tokenizer, PAIR, completion_only_loss=False) == "Question: where are you? On Mill Road.</s>"


def test_text_record_fully_trained(tokenizer) -> None:  # noqa: ANN001
    assert trained_text(tokenizer, TEXT) == "We write the way we talk at the counter.</s>"


def test_default_template_without_own(tokenizer) -> None:  # noqa: ANN001
    tokenizer = AutoTokenizer.from_pretrained(tiny_llama_path())
    tokenizer.chat_template = None

    assert resolve_chat_template(tokenizer, "") == (DEFAULT_CHAT_TEMPLATE, "default ChatML")
    assert resolve_chat_template(tokenizer, "{{ messages }}") == ("{{ messages }}", "text.chatTemplate")


def test_template_override_changes_masks(tokenizer) -> None:  # noqa: ANN001
    template = "{% for m in messages %}[{{ m['role'] }}] {{ m['content'] }}\n{% endfor %}{% if add_generation_prompt %}[assistant] {% endif %}"
    result = tokenize_record(CHAT, tokenizer=tokenizer, template=template, text=TextSpec())
    trained = tokenizer.decode([label for label in result.samples[0].labels if label != IGNORE_INDEX])

    assert trained == "Yes, until six.\nClosed on Sundays.\n"


def test_non_prefix_template_rejected(tokenizer) -> None:  # noqa: ANN001
    # Renders only the last message, so earlier turns are not a prefix of the whole.
    template = "{{ messages[-1]['content'] }}"

    with pytest.raises(InvalidInputError, match=r"c.jsonl:1: the chat template does not render .* text.completionOnlyLoss"):
        tokenize_record(CHAT, tokenizer=tokenizer, template=template, text=TextSpec())


@pytest.mark.parametrize(
    ("overlong", "outcome", "windows"), [("truncate", "truncated", 1), ("split", "split", 3), ("skip", "skipped", 0)]
)
def test_overlong_policy(tokenizer, overlong: str, outcome: str, windows: int) -> None:  # noqa: ANN001
    record = TextRecord(kind="text", file="long.txt", line=1, text="the quick brown fox " * 9)
    result = tokenize_record(record, tokenizer=tokenizer, template="", text=TextSpec(max_seq_length=16, overlong=overlong))

    assert result.tokens > 32
    assert result.tokens <= 48
    assert result.outcome == outcome
    assert len(result.samples) == windows
    assert all(len(sample.input_ids) <= 16 for sample in result.samples)


def test_truncated_completion_untrained(tokenizer) -> None:  # noqa: ANN001
    record = TextRecord(kind="prompt_completion", file="p.csv", line=9, prompt="word " * 40, completion="answer")
    result = tokenize_record(record, tokenizer=tokenizer, template="", text=TextSpec(max_seq_length=16, overlong="truncate"))

    assert result.outcome == "untrained"
    assert result.samples == []


def test_packing_keeps_tokens_and_limits() -> None:
    samples = [TokenSample(list(range(length)), list(range(length))) for length in (9, 7, 5, 4, 3)]
    packed = pack_samples(samples, max_length=12)

    assert [len(sample.input_ids) for sample in packed] == [12, 12, 4]
    assert sorted(token for sample in packed for token in sample.input_ids) == sorted(t for s in samples for t in s.input_ids)
    assert packed[0].position_ids == [*range(9), *range(3)]


def test_packing_masks_sample_boundaries() -> None:
    packed = pack_samples([TokenSample([1, 2, 3], [1, 2, 3]), TokenSample([4, 5], [4, 5])], max_length=8)

    assert packed[0].labels == [IGNORE_INDEX, 2, 3, IGNORE_INDEX, 5]

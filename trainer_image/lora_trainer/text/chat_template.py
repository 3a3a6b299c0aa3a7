"""Records to text segments with a chat template, marking the segments the loss trains on.

The template is text.chatTemplate when set, else the tokenizer's own, else DEFAULT_CHAT_TEMPLATE:
ChatML, where each message is ``<|im_start|>ROLE\\nCONTENT<|im_end|>\\n`` and a generation
prompt is ``<|im_start|>assistant\\n``. Its markers are plain text to a tokenizer that has no
such special tokens, so it works with every vocabulary.
"""

from __future__ import annotations

from dataclasses import dataclass

from lora_trainer.errors import InvalidInputError
from lora_trainer.text.records import TextRecord

DEFAULT_CHAT_TEMPLATE = (
    "{% for message in messages %}"
    "{{ '<|im_start|>' + message['role'] + '\\n' + message['content'] + '<|im_end|>\\n' }}"
    "{% endfor %}"
    "{% if add_generation_prompt %}{{ '<|im_start|>assistant\\n' }}{% endif %}"
)


@dataclass(frozen=True)
class Segment:
    text: str
    trained: bool


@dataclass(frozen=True)
class RenderedRecord:
    segments: list[Segment]
    templated: bool
    """True when a chat template produced the text: it carries its own special tokens, so none are added."""

    @property
    def text(self) -> str:
        return "".join(segment.text for segment in self.segments)


def resolve_chat_template(tokenizer, override: str) -> tuple[str, str]:  # noqa: ANN001 - a transformers tokenizer
    """Return (template, origin): the override, the tokenizer's own template, or the default ChatML."""
    if override:
        return override, "text.chatTemplate"
    own = getattr(tokenizer, "chat_template", None)
    if isinstance(own, str) and own:
        return own, "base model"
    return DEFAULT_CHAT_TEMPLATE, "default ChatML"


def render_record(record: TextRecord, *, tokenizer, template: str, completion_only: bool) -> RenderedRecord:  # noqa: ANN001
    """Return the record's text as segments; with ``completion_only`` only completions and assistant turns are trained."""
    if record.kind == "text":
        return RenderedRecord([Segment(record.text, True)], templated=False)
    if record.kind == "prompt_completion":
        return RenderedRecord([Segment(record.prompt, not completion_only), Segment(record.completion, True)], templated=False)
    return RenderedRecord(_chat_segments(record, tokenizer=tokenizer, template=template, completion_only=completion_only), templated=True)


def render_chat_prompt(prompt: str, *, tokenizer, template: str) -> str:  # noqa: ANN001
    """Return a single user turn with the generation prompt, as previews send it."""
    return _apply(tokenizer, [{"role": "user", "content": prompt}], template=template, add_generation_prompt=True)


def _chat_segments(record: TextRecord, *, tokenizer, template: str, completion_only: bool) -> list[Segment]:  # noqa: ANN001
    messages = [{"role": message.role, "content": message.content} for message in record.messages]
    full = _apply(tokenizer, messages, template=template, add_generation_prompt=False)
    if not completion_only:
        return [Segment(full, True)]
    # Each assistant turn is the text that its message adds to the conversation rendered up to it
    # with a generation prompt. That needs a template that renders every prefix as a prefix.
    segments: list[Segment] = []
    position = 0
    for index, message in enumerate(messages):
        if message["role"] != "assistant":
            continue
        before = _apply(tokenizer, messages[:index], template=template, add_generation_prompt=True)
        through = _apply(tokenizer, messages[: index + 1], template=template, add_generation_prompt=False)
        if not (through.startswith(before) and full.startswith(through) and len(before) >= position):
            raise InvalidInputError(
                f"{record.location()}: the chat template does not render the conversation up to assistant turn "
                f"{index} as a prefix of the whole, so the assistant tokens cannot be found. Set text.chatTemplate "
                "to a template that renders earlier turns unchanged, or set text.completionOnlyLoss to false"
            )
        segments.append(Segment(full[position:len(before)], False))
        segments.append(Segment(full[len(before):len(through)], True))
        position = len(through)
    segments.append(Segment(full[position:], False))
    return [segment for segment in segments if segment.text]


def _apply(tokenizer, messages: list[dict[str, str]], *, template: str, add_generation_prompt: bool) -> str:  # noqa: ANN001
    if not messages:
        # Templates differ on an empty conversation; the text before the first turn is empty.
        return ""
    try:
        return tokenizer.apply_chat_template(
            messages, chat_template=template, tokenize=False, add_generation_prompt=add_generation_prompt
        )
    except Exception as error:  # noqa: BLE001 - jinja raises many types; all mean the template failed
        raise InvalidInputError(f"the chat template failed to render a conversation: {error}. Check text.chatTemplate") from error

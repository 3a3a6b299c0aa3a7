"""Caption text: tags joined with commas, with the trigger word first."""

from __future__ import annotations

import re

SEPARATOR = ", "


def compose_caption(tags: list[str], *, trigger_word: str = "") -> str:
    """Return "TRIGGER, tag1, tag2, ...", or just the tags without a trigger word."""
    trigger = trigger_word.strip()
    parts = ([trigger] if trigger else []) + [tag for tag in tags if tag.casefold() != trigger.casefold()]
    return SEPARATOR.join(parts)


def with_trigger_word(caption: str, trigger_word: str) -> str:
    """Return ``caption`` with the trigger word put first, unless the caption already contains it.

    "Contains" means the trigger appears as a whole word, ignoring case, so a hand-written
    caption such as "a photo of sks dog" keeps its own wording.
    """
    trigger = trigger_word.strip()
    text = caption.strip()
    if not trigger:
        return text
    if not text:
        return trigger
    if re.search(rf"(?<!\w){re.escape(trigger)}(?!\w)", text, flags=re.IGNORECASE):
        return text
    return f"{trigger}{SEPARATOR}{text}"

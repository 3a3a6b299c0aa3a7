"""Tag vocabularies: the built-in default (package data) and the one a spec supplies."""

from __future__ import annotations

from importlib import resources

from lora_trainer.errors import InvalidInputError

DEFAULT_VOCABULARY_FILE = "default_vocabulary.txt"
CATEGORY_MARKER = "# category:"
MAX_TAG_CHARS = 200


def parse_vocabulary(text: str) -> dict[str, list[str]]:
    """Parse vocabulary text into {category: tags}.

    A line ``# category: NAME`` starts a category, other ``#`` lines are comments, and each
    remaining non-blank line is one tag. Tags before the first category line go to "uncategorised".
    """
    categories: dict[str, list[str]] = {}
    current = "uncategorised"
    for raw_line in text.splitlines():
        line = raw_line.strip()
        if line.lower().startswith(CATEGORY_MARKER):
            current = line[len(CATEGORY_MARKER):].strip()
            categories.setdefault(current, [])
        elif line and not line.startswith("#"):
            categories.setdefault(current, []).append(line)
    return categories


def default_vocabulary_categories() -> dict[str, list[str]]:
    """Return the built-in vocabulary grouped by category (style, subject, lighting, ...)."""
    text = resources.files("lora_trainer.captioning").joinpath(DEFAULT_VOCABULARY_FILE).read_text(encoding="utf-8")
    return parse_vocabulary(text)


def default_vocabulary() -> list[str]:
    """Return the built-in tags, in file order."""
    return [tag for tags in default_vocabulary_categories().values() for tag in tags]


def resolve_vocabulary(tags: list[str], *, trigger_word: str = "") -> list[str]:
    """Return the tags to score: ``tags`` cleaned, or the default vocabulary when ``tags`` is empty.

    Whitespace is stripped, blank entries and repeats (ignoring case) are dropped, and the
    trigger word is left out because every generated caption already starts with it.
    """
    candidates = tags if tags else default_vocabulary()
    seen = {trigger_word.strip().casefold()} if trigger_word.strip() else set()
    result: list[str] = []
    for tag in candidates:
        cleaned = " ".join(tag.split())
        if len(cleaned) > MAX_TAG_CHARS:
            raise InvalidInputError(
                f"captioning vocabulary tag {cleaned[:40]!r}... has {len(cleaned)} characters: "
                f"shorten it to at most {MAX_TAG_CHARS}"
            )
        if cleaned and cleaned.casefold() not in seen:
            seen.add(cleaned.casefold())
            result.append(cleaned)
    if not result:
        raise InvalidInputError(
            "the captioning vocabulary has no usable tags after removing blanks, repeats and the trigger word: "
            "list at least one tag, or leave the vocabulary empty to use the built-in one"
        )
    return result

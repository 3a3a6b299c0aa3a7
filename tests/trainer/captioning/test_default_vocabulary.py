"""The built-in tag vocabulary and how a spec's vocabulary is cleaned."""

from __future__ import annotations

import pytest

from lora_trainer.captioning.vocabulary import (
    default_vocabulary,
    default_vocabulary_categories,
    parse_vocabulary,
    resolve_vocabulary,
)
from lora_trainer.errors import InvalidInputError

pytestmark = pytest.mark.trainer

CATEGORIES = ["style", "subject", "lighting", "medium", "composition", "color"]


def test_default_has_every_category():
    categories = default_vocabulary_categories()

    for name in CATEGORIES:
        assert len(categories.get(name, [])) >= 10, name


def test_default_size_in_range():
    assert 150 <= len(default_vocabulary()) <= 300


def test_default_has_no_repeats():
    tags = [tag.casefold() for tag in default_vocabulary()]

    assert len(tags) == len(set(tags))


def test_default_includes_known_tags():
    tags = set(default_vocabulary())

    for tag in ["watercolor painting", "pixel art", "portrait", "golden hour", "3d render", "black and white"]:
        assert tag in tags, tag


def test_parse_reads_categories_and_comments():
    text = "# a comment\nloose tag\n# category: first\nalpha\n\n  beta  \n# category: second\n# note\ngamma\n"

    assert parse_vocabulary(text) == {"uncategorised": ["loose tag"], "first": ["alpha", "beta"], "second": ["gamma"]}


def test_resolve_empty_uses_default():
    assert resolve_vocabulary([]) == default_vocabulary()


def test_resolve_cleans_custom_tags():
    tags = ["  red  ", "Red", "", "dark   blue", "sks", "green"]

    assert resolve_vocabulary(tags, trigger_word="SKS") == ["red", "dark blue", "green"]


def test_resolve_rejects_only_blanks():
    with pytest.raises(InvalidInputError, match="no usable tags"):
        resolve_vocabulary(["  ", ""])


def test_resolve_rejects_overlong_tag():
    with pytest.raises(InvalidInputError, match="shorten it"):
        resolve_vocabulary(["x" * 300])

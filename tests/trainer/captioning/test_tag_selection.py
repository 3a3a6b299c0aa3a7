"""Generated tags: batching, top-k, threshold, vocabulary and caption layout."""

from __future__ import annotations

import pytest

from lora_operator.api.training_spec import CaptioningSpec
from lora_trainer.captioning import caption_records

pytestmark = pytest.mark.trainer

VOCABULARY = [f"tag number {index}" for index in range(12)]
NAMES = [f"image-{index:02d}.png" for index in range(9)]


def _all_tags_spec(**overrides) -> CaptioningSpec:
    """A spec that keeps every tag of VOCABULARY, so records carry the full score table."""
    fields = {"vocabulary": VOCABULARY, "top_k": len(VOCABULARY), "threshold": 0.0}
    fields.update(overrides)
    return CaptioningSpec(**fields)


def _scores(record) -> dict[str, float]:
    return dict(record.tags)


def test_batch_size_does_not_change_tags(make_records):
    single = make_records(NAMES)
    batched = make_records(NAMES)

    caption_records(single, _all_tags_spec(batch_size=1))
    caption_records(batched, _all_tags_spec(batch_size=8))

    for one, eight in zip(single, batched):
        assert _scores(one).keys() == _scores(eight).keys(), one.name
        for tag, probability in _scores(one).items():
            assert _scores(eight)[tag] == pytest.approx(probability, abs=2e-4), (one.name, tag)


def test_workers_do_not_change_tags(make_records):
    in_process = make_records(NAMES)
    with_workers = make_records(NAMES)

    caption_records(in_process, _all_tags_spec(batch_size=2), num_workers=0)
    caption_records(with_workers, _all_tags_spec(batch_size=2), num_workers=2)

    assert [record.tags for record in in_process] == [record.tags for record in with_workers]


def test_top_k_keeps_best_tags(make_records):
    full = make_records(NAMES[:3])
    limited = make_records(NAMES[:3])

    caption_records(full, _all_tags_spec())
    caption_records(limited, _all_tags_spec(top_k=2))

    for whole, top in zip(full, limited):
        assert len(top.tags) == 2, top.name
        assert [tag for tag, _ in top.tags] == [tag for tag, _ in whole.tags[:2]], top.name


def test_tags_sorted_best_first(make_records):
    records = make_records(NAMES[:3])

    caption_records(records, _all_tags_spec())

    for record in records:
        probabilities = [probability for _, probability in record.tags]
        assert probabilities == sorted(probabilities, reverse=True), record.name


def test_threshold_drops_weak_tags(make_records):
    full = make_records(NAMES[:3])
    caption_records(full, _all_tags_spec())
    all_scores = sorted(probability for record in full for _, probability in record.tags)
    threshold = all_scores[len(all_scores) // 2]

    filtered = make_records(NAMES[:3])
    caption_records(filtered, _all_tags_spec(threshold=threshold))

    for whole, kept in zip(full, filtered):
        expected = [tag for tag, probability in whole.tags if probability >= threshold]
        assert [tag for tag, _ in kept.tags] == expected, kept.name
        assert all(probability >= threshold for _, probability in kept.tags), kept.name


def test_threshold_above_all_leaves_trigger(make_records):
    records = make_records(NAMES[:2])

    caption_records(records, _all_tags_spec(threshold=1.0, trigger_word="sks"))

    for record in records:
        assert record.tags == [], record.name
        assert record.caption == "sks", record.name


def test_custom_vocabulary_used(make_records):
    records = make_records(NAMES[:3])
    vocabulary = ["velvet curtain", "brass lamp", "paper boat"]

    caption_records(records, CaptioningSpec(vocabulary=vocabulary, top_k=10))

    for record in records:
        assert {tag for tag, _ in record.tags} == set(vocabulary), record.name


def test_scores_ignore_other_tags(make_records):
    small = make_records(NAMES[:2])
    large = make_records(NAMES[:2])

    caption_records(small, _all_tags_spec(vocabulary=VOCABULARY[:3], top_k=3))
    caption_records(large, _all_tags_spec())

    for few, many in zip(small, large):
        for tag, probability in few.tags:
            assert _scores(many)[tag] == pytest.approx(probability, abs=2e-4), (few.name, tag)


def test_default_vocabulary_when_empty(make_records):
    from lora_trainer.captioning import default_vocabulary

    records = make_records(NAMES[:1])

    caption_records(records, CaptioningSpec(top_k=5))

    assert len(records[0].tags) == 5
    assert {tag for tag, _ in records[0].tags} <= set(default_vocabulary())


def test_caption_lists_trigger_then_tags(make_records):
    records = make_records(NAMES[:2])

    caption_records(records, CaptioningSpec(vocabulary=VOCABULARY, top_k=3, trigger_word="sks"))

    for record in records:
        assert record.caption == ", ".join(["sks"] + [tag for tag, _ in record.tags]), record.name
        assert record.caption_source == "generated", record.name


def test_caption_without_trigger_lists_tags(make_records):
    records = make_records(NAMES[:1])

    caption_records(records, CaptioningSpec(vocabulary=VOCABULARY, top_k=3))

    assert records[0].caption == ", ".join(tag for tag, _ in records[0].tags)


def test_trigger_word_not_repeated_as_tag(make_records):
    records = make_records(NAMES[:2])

    caption_records(records, CaptioningSpec(vocabulary=["sks", "red", "blue"], top_k=3, trigger_word="sks"))

    for record in records:
        assert record.caption.split(", ").count("sks") == 1, record.name
        assert "sks" not in {tag for tag, _ in record.tags}, record.name


def test_stats_count_tagged_images(make_records):
    records = make_records(NAMES[:4])

    stats = caption_records(records, CaptioningSpec(vocabulary=VOCABULARY, batch_size=3))

    assert stats.captioned == 4
    assert stats.kept_sidecar == 0
    assert stats.images_per_second is not None
    assert stats.images_per_second > 0
    assert stats.tagging_seconds > 0
    assert stats.seconds >= stats.tagging_seconds

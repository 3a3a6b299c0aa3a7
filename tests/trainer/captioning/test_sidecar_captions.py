"""Sidecar captions against generated ones: sidecar wins unless overwrite, trigger word first."""

from __future__ import annotations

import pytest

from lora_operator.api.training_spec import CaptioningSpec
from lora_trainer.captioning import caption_records

pytestmark = pytest.mark.trainer

VOCABULARY = ["red", "green", "blue", "round", "square"]


def _with_sidecar(record, caption: str):
    record.caption = caption
    record.caption_source = "sidecar"
    return record


def test_sidecar_kept_by_default(make_records):
    records = [_with_sidecar(record, "a hand-written caption") for record in make_records(["a.png"])]

    stats = caption_records(records, CaptioningSpec(vocabulary=VOCABULARY))

    assert records[0].caption == "a hand-written caption"
    assert records[0].caption_source == "sidecar"
    assert records[0].tags == []
    assert stats.kept_sidecar == 1
    assert stats.captioned == 0


def test_sidecar_gets_trigger_first(make_records):
    records = [_with_sidecar(record, "a hand-written caption") for record in make_records(["a.png"])]

    caption_records(records, CaptioningSpec(vocabulary=VOCABULARY, trigger_word="sks"))

    assert records[0].caption == "sks, a hand-written caption"


def test_sidecar_with_trigger_unchanged(make_records):
    records = [_with_sidecar(record, "a photo of SKS dog") for record in make_records(["a.png"])]

    caption_records(records, CaptioningSpec(vocabulary=VOCABULARY, trigger_word="sks"))

    assert records[0].caption == "a photo of SKS dog"


def test_trigger_inside_word_is_missing(make_records):
    records = [_with_sidecar(record, "asks nothing") for record in make_records(["a.png"])]

    caption_records(records, CaptioningSpec(vocabulary=VOCABULARY, trigger_word="sks"))

    assert records[0].caption == "sks, asks nothing"


def test_overwrite_replaces_sidecar(make_records):
    records = [_with_sidecar(record, "a hand-written caption") for record in make_records(["a.png"])]

    stats = caption_records(records, CaptioningSpec(vocabulary=VOCABULARY, overwrite=True, trigger_word="sks", top_k=2))

    assert records[0].caption_source == "generated"
    assert len(records[0].tags) == 2
    assert records[0].caption == ", ".join(["sks"] + [tag for tag, _ in records[0].tags])
    assert stats.captioned == 1
    assert stats.kept_sidecar == 0


def test_blank_sidecar_is_generated(make_records):
    records = [_with_sidecar(record, "   ") for record in make_records(["a.png"])]

    caption_records(records, CaptioningSpec(vocabulary=VOCABULARY))

    assert records[0].caption_source == "generated"
    assert records[0].tags != []


def test_mixed_records_each_handled(make_records):
    records = make_records(["sidecar.png", "plain.png"])
    _with_sidecar(records[0], "kept text")

    stats = caption_records(records, CaptioningSpec(vocabulary=VOCABULARY, trigger_word="sks"))

    assert records[0].caption == "sks, kept text"
    assert records[1].caption_source == "generated"
    assert records[1].caption.startswith("sks, ")
    assert (stats.kept_sidecar, stats.captioned) == (1, 1)


def test_disabled_loads_no_model(make_records):
    records = make_records(["sidecar.png", "plain.png"])
    _with_sidecar(records[0], "kept text")
    # An unloadable model proves that disabled captioning never loads one.
    spec = CaptioningSpec(enabled=False, model="file:///nonexistent/model", trigger_word="sks", overwrite=True)

    stats = caption_records(records, spec)

    assert records[0].caption == "sks, kept text"
    assert records[1].caption == "sks"
    assert records[1].caption_source == "none"
    assert (stats.kept_sidecar, stats.uncaptioned, stats.captioned) == (1, 1, 0)


def test_skipped_records_untouched(make_records):
    records = make_records(["skipped.png"])
    records[0].skip("skipped.png: too small")

    stats = caption_records(records, CaptioningSpec(vocabulary=VOCABULARY, trigger_word="sks"))

    assert records[0].caption == ""
    assert records[0].caption_source == "none"
    assert stats.captioned == 0


def test_unreadable_image_keeps_sidecar(make_records):
    records = make_records(["broken.png", "fine.png"])
    _with_sidecar(records[0], "kept text")
    records[0].image_path.write_bytes(b"not a png")

    stats = caption_records(records, CaptioningSpec(vocabulary=VOCABULARY, overwrite=True, trigger_word="sks"))

    assert records[0].caption == "sks, kept text"
    assert records[0].caption_source == "sidecar"
    assert any("broken.png" in warning for warning in records[0].warnings)
    assert records[1].caption_source == "generated"
    assert (stats.failed, stats.captioned) == (1, 1)


def test_non_ascii_names_survive(make_records):
    names = ["café/naïve ünïcode.png", "写真/猫の画像.png"]
    records = make_records(names)
    _with_sidecar(records[1], "ein Bild über Kätzchen")

    caption_records(records, CaptioningSpec(vocabulary=VOCABULARY, trigger_word="ñandú"))

    assert [record.name for record in records] == names
    assert records[0].caption.startswith("ñandú, ")
    assert records[0].caption_source == "generated"
    assert records[1].caption == "ñandú, ein Bild über Kätzchen"

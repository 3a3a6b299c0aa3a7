"""A captioning model read from an s3:// checkpoint folder."""

from __future__ import annotations

import pytest

from lora_operator.api.training_spec import CaptioningSpec
from lora_trainer.captioning import caption_records
from lora_trainer.models.builtin_clip import tiny_clip_path

pytestmark = [pytest.mark.trainer, pytest.mark.s3]


def test_s3_checkpoint_tags_images(s3, s3_bucket, make_records, monkeypatch):
    client = s3.client()
    for path in tiny_clip_path().iterdir():
        client.fput_object(s3_bucket, f"models/tiny-clip/{path.name}", str(path))
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", s3.access_key)
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", s3.secret_key)
    builtin = make_records(["a.png"])
    from_s3 = make_records(["a.png"])
    spec = CaptioningSpec(model=f"s3://{s3_bucket}/models/tiny-clip", vocabulary=["red", "green", "blue"])

    caption_records(builtin, CaptioningSpec(vocabulary=["red", "green", "blue"]))
    caption_records(from_s3, spec, s3_endpoint=s3.endpoint, s3_secure=s3.secure)

    assert from_s3[0].caption_source == "generated"
    assert from_s3[0].tags == builtin[0].tags

"""A checkpoint of another run is rejected; batch settings may change between attempts."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest
from PIL import Image
from PIL.PngImagePlugin import PngInfo

from lora_trainer.errors import InvalidInputError

from .builders import build_records, make_config, make_trainer

pytestmark = pytest.mark.trainer


def stopped_run(tmp_path: Path, records: list) -> None:
    config = make_config(tmp_path / "run", training={"maxSteps": 6})
    result = make_trainer(config, records, run_dir=tmp_path / "run", work_dir=tmp_path / "work", stop_at=2).run()
    assert result.stopped_early


def test_changed_rank_is_rejected(tmp_path: Path) -> None:
    records = build_records(tmp_path / "records")
    stopped_run(tmp_path, records)
    config = make_config(tmp_path / "run", training={"maxSteps": 6}, lora={"rank": 8})
    with pytest.raises(InvalidInputError) as raised:
        make_trainer(config, records, run_dir=tmp_path / "run", work_dir=tmp_path / "work").run()
    message = str(raised.value)
    assert "step-000002 belongs to a different run" in message
    assert "lora.rank was 4, the config now has 8" in message
    assert "delete the checkpoints folder" in message


def test_changed_dataset_is_rejected(tmp_path: Path) -> None:
    records = build_records(tmp_path / "records")
    stopped_run(tmp_path, records)
    records[1].caption = "zwx, something else"
    config = make_config(tmp_path / "run", training={"maxSteps": 6})
    with pytest.raises(InvalidInputError, match="the dataset changed"):
        make_trainer(config, records, run_dir=tmp_path / "run", work_dir=tmp_path / "work").run()


def test_halved_batch_resumes_with_warning(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    records = build_records(tmp_path / "records")
    stopped_run(tmp_path, records)
    config = make_config(tmp_path / "run", training={"maxSteps": 6, "batchSize": 1, "gradientAccumulation": 2})
    with caplog.at_level(logging.WARNING):
        result = make_trainer(config, records, run_dir=tmp_path / "run", work_dir=tmp_path / "work").run()
    assert result.resumed_from == 2
    assert result.global_step == 6
    assert "written with batchSize 2, gradientAccumulation 1 and 1 training process(es)" in caplog.text
    assert "uses batchSize 1, gradientAccumulation 2 and 1 training process(es) (the current settings win)" in caplog.text


def test_png_metadata_change_resumes(tmp_path: Path) -> None:
    records = build_records(tmp_path / "records")
    stopped_run(tmp_path, records)
    metadata = PngInfo()
    metadata.add_text("Comment", "written again by a later preparation")
    with Image.open(records[2].image_path) as image:
        image.load()
    image.save(records[2].image_path, pnginfo=metadata)

    config = make_config(tmp_path / "run", training={"maxSteps": 6})
    result = make_trainer(config, records, run_dir=tmp_path / "run", work_dir=tmp_path / "work").run()
    assert result.resumed_from == 2
    assert result.global_step == 6

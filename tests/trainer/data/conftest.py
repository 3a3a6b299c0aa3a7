"""Fixtures of the data-preparation tests: the awkward images prepared once per session."""

from __future__ import annotations

import pytest
from lora_operator.api.training_spec import DatasetSpec

from lora_trainer.data.prepare import prepare_image_dataset
from lora_trainer.data.records import ImageRecord
from tests.datasets import BAD_IMAGES_DIR

BAD_IMAGES_RESOLUTION = 256


@pytest.fixture(scope="session")
def bad_image_records(tmp_path_factory: pytest.TempPathFactory) -> dict[str, ImageRecord]:
    """The awkward images prepared at 256 px with the default checks, by file name."""
    spec = DatasetSpec(sources=[{"uri": BAD_IMAGES_DIR.as_uri()}], resolution=BAD_IMAGES_RESOLUTION)
    work_dir = tmp_path_factory.mktemp("bad-images")
    records = prepare_image_dataset(spec, work_dir=work_dir, base_dir=work_dir)
    return {record.name: record for record in records}

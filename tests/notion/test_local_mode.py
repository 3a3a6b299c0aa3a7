"""`lora-operator local notion`: a row becomes a local run with the real trainer, and is written back."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from tests.datasets import PHOTOS_DIR
from tests.notion_server.lora_database import example_source
from tests.notion_server.workspace import plain

pytestmark = [pytest.mark.e2e, pytest.mark.trainer]

PHOTOS = [PHOTOS_DIR / name for name in ("astronaut.png", "chelsea.png", "coffee.png", "horse.png")]


def local_notion(manifest: Path, output: Path, *, server, token: str, extra: list[str] | None = None):
    command = [sys.executable, "-m", "lora_operator.cli", "local", "notion", str(manifest), "--output", str(output),
               "--api-url", server.base_url, "--device", "cpu", "--once", *(extra or [])]
    environment = {**os.environ, "NOTION_TOKEN": token}
    return subprocess.run(command, capture_output=True, text=True, timeout=900, env=environment)


def write_manifest(folder: Path, database) -> Path:
    path = folder / "notionsource.yaml"
    path.write_text(yaml.safe_dump(example_source(database), allow_unicode=True), encoding="utf-8")
    return path


def run_folder(output: Path, page: str) -> Path:
    training = output / "default" / f"style-{page.replace('-', '')}"
    (folder,) = (path for path in training.iterdir() if path.name != "notion-dataset")
    return folder


def test_row_runs_locally_and_reports(tmp_path, notion_server, lora_database):
    page = lora_database.add_row("水彩城市", description="tinytok，水彩风格", images=PHOTOS)
    output = tmp_path / "runs"
    result = local_notion(write_manifest(tmp_path, lora_database), output, server=notion_server,
                          token=lora_database.token)
    assert result.returncode == 0, result.stdout + result.stderr

    folder = run_folder(output, page)
    weights = folder / "weights" / f"style-{page.replace('-', '')}.safetensors"
    assert lora_database.value(page, "状态") == "已完成"
    assert lora_database.value(page, "进度") == 100.0
    assert isinstance(lora_database.value(page, "损失"), float)
    assert lora_database.file_bytes(page, "输出权重") == [weights.read_bytes()]
    previews = sorted((folder / "previews").iterdir())
    assert lora_database.file_bytes(page, "预览图") == [path.read_bytes() for path in previews]
    assert lora_database.links(page, "下载链接") == [f"file://{weights}"]
    (comment,) = lora_database.comments(page)
    assert comment.rich_text[0]["mention"]["user"]["id"] == lora_database.submitter.id
    assert "“水彩城市”训练完成" in plain(comment.rich_text)


def test_missing_token_named(tmp_path, notion_server, lora_database):
    result = local_notion(write_manifest(tmp_path, lora_database), tmp_path / "runs", server=notion_server, token="")
    assert result.returncode == 2
    assert "NOTION_TOKEN" in result.stdout

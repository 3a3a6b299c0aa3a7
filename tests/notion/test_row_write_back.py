"""A training's state is written to its row: only what changed, text cut at 2000 characters."""

from __future__ import annotations

from pathlib import Path

import pytest

from lora_operator.api.notion_source import NotionSourceSpec
from lora_operator.notion.artifact_links import LocalArtifacts
from lora_operator.notion.gateway import NotionGateway
from lora_operator.notion.memory import WrittenValues
from lora_operator.notion.rows import SourceSchema
from lora_operator.notion.settings import NotionSettings
from lora_operator.notion.writeback import RowWriter, RunView
from tests.datasets import PHOTOS_DIR
from tests.notion_server.lora_database import example_source
from tests.notion_server.workspace import plain

pytestmark = pytest.mark.unit


def make_writer(server, database, **spec_changes) -> RowWriter:
    gateway = NotionGateway(token=database.token,
                            settings=NotionSettings(api_url=server.base_url, requests_per_second=50, backoff_seconds=0.05))
    spec = NotionSourceSpec.model_validate(example_source(database, **spec_changes)["spec"])
    schema = SourceSchema.from_data_source(gateway.retrieve_data_source(database.data_source_id))
    return RowWriter(gateway=gateway, spec=spec, schema=schema, memory=WrittenValues(), artifacts=LocalArtifacts())


def view(database, page: str, **fields) -> RunView:
    base = {"page_id": page, "title": "水彩城市", "creator_id": database.submitter.id, "namespace": "design",
            "name": "style-1", "phase": "Running"}
    return RunView(**{**base, **fields})


def patches(server) -> list:
    return server.requests(method="PATCH", path_prefix="/v1/pages/")


@pytest.fixture
def run_folder(tmp_path: Path) -> dict[str, str]:
    weights = tmp_path / "weights" / "style-1.safetensors"
    weights.parent.mkdir()
    weights.write_bytes(b"weights" * 100)
    previews = []
    for index, photo in enumerate(["coffee.png", "horse.png"]):
        target = tmp_path / "previews" / f"step-000004-0{index}.png"
        target.parent.mkdir(exist_ok=True)
        target.write_bytes((PHOTOS_DIR / photo).read_bytes())
        previews.append(f"file://{target}")
    return {"weights": f"file://{weights}", "previews": previews}


def test_progress_written(notion_server, lora_database):
    page = lora_database.add_row("水彩城市")
    make_writer(notion_server, lora_database).write(view(lora_database, page, percent=50.0, loss=0.125, epoch=1))
    assert lora_database.value(page, "状态") == "训练中"
    assert lora_database.value(page, "进度") == 50.0
    assert lora_database.value(page, "损失") == 0.125
    assert lora_database.value(page, "轮次") == 1
    assert lora_database.text(page, "训练资源") == "design/style-1"
    assert len(patches(notion_server)) == 1


def test_unchanged_state_sends_nothing(notion_server, lora_database):
    page = lora_database.add_row("水彩城市")
    writer = make_writer(notion_server, lora_database)
    writer.write(view(lora_database, page, percent=50.0, loss=0.125, epoch=1))
    writer.write(view(lora_database, page, percent=50.0, loss=0.125, epoch=1))
    assert len(patches(notion_server)) == 1


def test_changed_progress_sends_only_it(notion_server, lora_database):
    page = lora_database.add_row("水彩城市")
    writer = make_writer(notion_server, lora_database)
    writer.write(view(lora_database, page, percent=50.0, loss=0.125, epoch=1))
    writer.write(view(lora_database, page, percent=75.0, loss=0.125, epoch=1))
    second = patches(notion_server)[1]
    assert set(second.body["properties"]) == {"进度"}
    assert lora_database.value(page, "进度") == 75.0


def test_percent_format_gets_fraction(notion_server, lora_database):
    source = notion_server.workspace.data_sources[lora_database.data_source_id]
    source.properties["进度"]["number"]["format"] = "percent"
    page = lora_database.add_row("水彩城市")
    make_writer(notion_server, lora_database).write(view(lora_database, page, percent=40.0))
    assert lora_database.value(page, "进度") == 0.4


def test_success_written_with_files(notion_server, lora_database, run_folder):
    page = lora_database.add_row("水彩城市")
    done = view(lora_database, page, phase="Succeeded", percent=100.0, loss=0.0931, epoch=2,
                weights_uri=run_folder["weights"], preview_uris=tuple(run_folder["previews"]))
    assert make_writer(notion_server, lora_database).write(done) is True
    assert lora_database.value(page, "状态") == "已完成"
    assert lora_database.value(page, "进度") == 100.0
    assert lora_database.file_bytes(page, "输出权重") == [b"weights" * 100]
    assert lora_database.file_bytes(page, "预览图") == [(PHOTOS_DIR / "coffee.png").read_bytes(),
                                                      (PHOTOS_DIR / "horse.png").read_bytes()]
    assert lora_database.links(page, "下载链接") == [run_folder["weights"]]
    assert run_folder["weights"] in lora_database.text(page, "下载链接")


def test_success_comment_mentions_creator(notion_server, lora_database, run_folder):
    page = lora_database.add_row("水彩城市")
    done = view(lora_database, page, phase="Succeeded", percent=100.0, loss=0.0931, weights_uri=run_folder["weights"])
    make_writer(notion_server, lora_database).write(done)
    (comment,) = lora_database.comments(page)
    assert comment.rich_text[0]["mention"]["user"]["id"] == lora_database.submitter.id
    assert "“水彩城市”训练完成，最终损失 0.0931" in plain(comment.rich_text)


def test_large_weights_linked(notion_server, lora_database, run_folder):
    page = lora_database.add_row("水彩城市")
    done = view(lora_database, page, phase="Succeeded", percent=100.0, weights_uri=run_folder["weights"])
    make_writer(notion_server, lora_database, maxUploadBytes=100).write(done)
    (entry,) = lora_database.value(page, "输出权重")
    assert entry["external_url"] == run_folder["weights"]
    assert not notion_server.requests(path_prefix="/v1/file_uploads")


def test_failure_text_cut_at_limit(notion_server, lora_database):
    page = lora_database.add_row("水彩城市")
    failed = view(lora_database, page, phase="Failed", percent=30.0, message="out of memory " * 300)
    make_writer(notion_server, lora_database).write(failed)
    error = lora_database.text(page, "错误信息")
    assert len(error) == 2000
    assert error.endswith("…")
    assert lora_database.value(page, "状态") == "失败"


def test_failure_comment_has_error(notion_server, lora_database):
    page = lora_database.add_row("水彩城市")
    failed = view(lora_database, page, phase="Failed", message="the trainer exited with code 3")
    make_writer(notion_server, lora_database).write(failed)
    (comment,) = lora_database.comments(page)
    assert "“水彩城市”训练失败。训练程序每次尝试都失败了。请联系管理员查看详情。详情：the trainer exited with code 3" in plain(
        comment.rich_text
    )


def test_failure_comment_localises_cause(notion_server, lora_database):
    page = lora_database.add_row("水彩城市")
    failed = view(lora_database, page, phase="Failed", message="the trainer rejected its input: no usable image",
                  failure_reason="InvalidInput")
    make_writer(notion_server, lora_database).write(failed)
    (comment,) = lora_database.comments(page)
    text = plain(comment.rich_text)
    assert "参考图或设置无法使用，因此没有重试。" in text
    assert text.endswith("详情：the trainer rejected its input: no usable image")
    error = lora_database.text(page, "错误信息")
    assert error.startswith("参考图或设置无法使用")
    assert error.endswith("详情：the trainer rejected its input: no usable image")


def test_english_locale_comment(notion_server, lora_database):
    page = lora_database.add_row("watercolor")
    failed = view(lora_database, page, title="watercolor", phase="Failed", message="boom")
    make_writer(notion_server, lora_database, locale="en",
                statusValues={"failed": "失败", "queued": "排队中", "running": "训练中"}).write(failed)
    (comment,) = lora_database.comments(page)
    assert 'Training of "watercolor" failed. The trainer failed on every attempt.' in plain(comment.rich_text)
    assert plain(comment.rich_text).endswith("Details: boom")


def test_rewrite_without_comment(notion_server, lora_database):
    page = lora_database.add_row("水彩城市")
    done = view(lora_database, page, phase="Failed", message="boom")
    assert make_writer(notion_server, lora_database).write(done, comment=False) is True
    assert lora_database.value(page, "状态") == "失败"
    assert lora_database.comments(page) == []

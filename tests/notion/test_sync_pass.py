"""A sync pass turns each submitted row into exactly one training, or rejects it with a comment."""

from __future__ import annotations

import json
import threading
import time
from pathlib import Path

import pytest

from lora_operator.api.notion_source import NotionSourceSpec
from lora_operator.notion.artifact_links import LocalArtifacts
from lora_operator.notion.gateway import NotionGateway
from lora_operator.notion.local_sink import LocalSink
from lora_operator.notion.mapping import SourceRef
from lora_operator.notion.memory import WrittenValues
from lora_operator.notion.settings import NotionSettings
from lora_operator.notion.sync import SourceSync
from lora_operator.notion.writeback import RowWriter
from tests.datasets import PHOTOS_DIR
from tests.notion_server.lora_database import example_source
from tests.notion_server.workspace import plain

pytestmark = pytest.mark.unit

PHOTOS = [PHOTOS_DIR / "coffee.png", PHOTOS_DIR / "rocket.jpg"]


class CrashingSink(LocalSink):
    """Raises like a killed process, before or after creating the training, once."""

    def __init__(self, *args, crash: str, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.crash = crash

    def create(self, manifest):
        if self.crash == "before":
            self.crash = ""
            raise SystemExit("killed before creation")
        super().create(manifest)
        if self.crash == "after":
            self.crash = ""
            raise SystemExit("killed after creation")


def make_sync(server, database, sink: LocalSink, **spec_changes) -> SourceSync:
    gateway = NotionGateway(token=database.token,
                            settings=NotionSettings(api_url=server.base_url, requests_per_second=50, backoff_seconds=0.05))
    spec = NotionSourceSpec.model_validate(example_source(database, **spec_changes)["spec"])
    memory = WrittenValues()
    return SourceSync(
        source=SourceRef(namespace="design", name="team", spec=spec), gateway=gateway, sink=sink,
        make_writer=lambda schema: RowWriter(gateway=gateway, spec=spec, schema=schema, memory=memory,
                                             artifacts=LocalArtifacts()),
        max_attachment_bytes=50 * 1024 * 1024,
    )


@pytest.fixture
def sink(tmp_path: Path) -> LocalSink:
    return LocalSink(tmp_path / "state", output=f"file://{tmp_path / 'runs'}")


def manifests(sink: LocalSink) -> list[dict]:
    return [json.loads(path.read_text(encoding="utf-8"))["manifest"] for path in sink.state_dir.glob("*.json")]


def dataset_files(manifest: dict) -> dict[str, bytes]:
    folder = Path(manifest["spec"]["dataset"]["sources"][0]["uri"].removeprefix("file://"))
    return {path.name: path.read_bytes() for path in sorted(folder.iterdir())}


def test_row_becomes_training(notion_server, lora_database, sink):
    page = lora_database.add_row("水彩城市", description="wcstyle，水彩", images=PHOTOS)
    report = make_sync(notion_server, lora_database, sink).run_once()
    (manifest,) = manifests(sink)
    assert report.created == 1
    assert manifest["metadata"]["name"] == f"style-{page.replace('-', '')}"
    assert manifest["spec"]["captioning"]["triggerWord"] == "wcstyle"
    assert lora_database.value(page, "状态") == "排队中"
    assert lora_database.text(page, "训练资源") == f"design/{manifest['metadata']['name']}"


def test_images_copied_before_creation(notion_server, lora_database, sink):
    lora_database.add_row("水彩城市", images=PHOTOS)
    make_sync(notion_server, lora_database, sink).run_once()
    (manifest,) = manifests(sink)
    assert dataset_files(manifest) == {"00-coffee.png": PHOTOS[0].read_bytes(), "01-rocket.jpg": PHOTOS[1].read_bytes()}


def test_claim_is_one_update(notion_server, lora_database, sink):
    page = lora_database.add_row("水彩城市", images=PHOTOS)
    make_sync(notion_server, lora_database, sink).run_once()
    (claim,) = notion_server.requests(method="PATCH")
    assert claim.path == f"/v1/pages/{page}"
    assert claim.body["properties"]["状态"] == {"status": {"name": "排队中"}}


def test_second_pass_idle(notion_server, lora_database, sink):
    lora_database.add_row("水彩城市", images=PHOTOS)
    sync = make_sync(notion_server, lora_database, sink)
    sync.run_once()
    before = len(notion_server.requests())
    report = sync.run_once()
    assert report.created == 0
    assert not [record for record in notion_server.requests()[before:] if record.method != "POST"]
    assert len(manifests(sink)) == 1


def test_second_query_uses_watermark(notion_server, lora_database, sink):
    lora_database.add_row("水彩城市", images=PHOTOS)
    sync = make_sync(notion_server, lora_database, sink)
    sync.run_once()
    sync.run_once()
    last_query = notion_server.requests(method="POST", path_prefix="/v1/data_sources/")[-1]
    edited = last_query.body["filter"]["and"][1]
    assert edited["timestamp"] == "last_edited_time"
    assert edited["last_edited_time"]["on_or_after"] < sync.watermark


def test_unknown_type_rejected_with_comment(notion_server, lora_database, sink):
    page = lora_database.add_row("风景", row_type="风景画", images=PHOTOS)
    report = make_sync(notion_server, lora_database, sink).run_once()
    assert report.rejected == 1
    assert manifests(sink) == []
    assert lora_database.value(page, "状态") == "已拒绝"
    assert lora_database.text(page, "错误信息") == "未知类型“风景画”。请选择：图像风格、人物IP。"
    (comment,) = lora_database.comments(page)
    assert comment.rich_text[0]["mention"]["user"]["id"] == lora_database.submitter.id
    assert "“风景”未开始训练" in plain(comment.rich_text)


def test_stranger_rejected(notion_server, lora_database, sink):
    stranger = notion_server.workspace.add_user("韩梅梅", email="hanmeimei@example.com")
    page = lora_database.add_row("人像", images=PHOTOS, creator=stranger)
    make_sync(notion_server, lora_database, sink).run_once()
    assert manifests(sink) == []
    assert "韩梅梅 没有提交训练的权限" in lora_database.text(page, "错误信息")


def test_steps_out_of_bounds_rejected(notion_server, lora_database, sink):
    page = lora_database.add_row("水彩城市", images=PHOTOS, steps=99999)
    make_sync(notion_server, lora_database, sink).run_once()
    assert manifests(sink) == []
    assert lora_database.text(page, "错误信息") == "步数为 99999，超出允许范围 100 到 4000。"


def test_fixed_row_resubmitted(notion_server, lora_database, sink):
    page = lora_database.add_row("水彩城市", row_type="风景画", images=PHOTOS)
    sync = make_sync(notion_server, lora_database, sink)
    sync.run_once()
    workspace = notion_server.workspace
    with workspace.lock:
        workspace.pages[page].values.update({"类型": "图像风格", "状态": "待训练"})
    report = sync.run_once()
    assert report.created == 1
    assert lora_database.value(page, "状态") == "排队中"


def test_expired_url_fetched_again(notion_server, lora_database, sink):
    page = lora_database.add_row("水彩城市", images=PHOTOS)
    # The claim's response is held back while every URL handed out so far expires.
    notion_server.delay(method="PATCH", path_prefix="/v1/pages/", seconds=1.0)

    def expire_when_claimed() -> None:
        while not notion_server.requests(method="PATCH"):
            time.sleep(0.01)
        notion_server.files.expire_issued_urls()

    expirer = threading.Thread(target=expire_when_claimed)
    expirer.start()
    report = make_sync(notion_server, lora_database, sink).run_once()
    expirer.join()
    assert report.created == 1
    assert report.rejected == 0
    assert [status for _, status in notion_server.files.downloads].count(403) == 1
    assert len(notion_server.requests(method="GET", path_prefix=f"/v1/pages/{page}")) == 1
    (manifest,) = manifests(sink)
    assert len(dataset_files(manifest)) == 2


@pytest.mark.parametrize("crash", ["before", "after"])
def test_crash_leaves_one_training(notion_server, lora_database, sink, crash):
    lora_database.add_row("水彩城市", images=PHOTOS)
    crashing = CrashingSink(sink.state_dir, output=sink.output, crash=crash)
    with pytest.raises(SystemExit):
        make_sync(notion_server, lora_database, crashing).run_once()
    make_sync(notion_server, lora_database, crashing).run_once()  # A restarted process.
    make_sync(notion_server, lora_database, crashing).run_once()
    assert len(manifests(sink)) == 1


def test_private_external_url_rejected(notion_server, lora_database, sink):
    url = notion_server.add_external_file("ref.png", PHOTOS[0].read_bytes(), "image/png")
    page = lora_database.add_row("外链", external_images=[("ref.png", url)])
    make_sync(notion_server, lora_database, sink).run_once()
    assert manifests(sink) == []
    assert "不允许读取“ref.png”的链接" in lora_database.text(page, "错误信息")


def test_allowed_external_url_copied(notion_server, lora_database, sink):
    url = notion_server.add_external_file("ref.png", PHOTOS[0].read_bytes(), "image/png")
    lora_database.add_row("外链", external_images=[("ref.png", url)])
    make_sync(notion_server, lora_database, sink, externalUrls={"allowPrivateAddresses": True}).run_once()
    (manifest,) = manifests(sink)
    assert dataset_files(manifest) == {"00-ref.png": PHOTOS[0].read_bytes()}


def test_missing_external_file_rejected(notion_server, lora_database, sink):
    page = lora_database.add_row("外链", external_images=[("gone.png", f"{notion_server.base_url}/external/gone.png")])
    make_sync(notion_server, lora_database, sink, externalUrls={"allowPrivateAddresses": True}).run_once()
    assert manifests(sink) == []
    assert lora_database.text(page, "错误信息") == "图片“gone.png”无法复制：HTTP 404"


def test_database_id_finds_data_source(notion_server, lora_database, sink):
    database_id = notion_server.workspace.data_sources[lora_database.data_source_id].database_id
    lora_database.add_row("水彩城市", images=PHOTOS)
    sync = make_sync(notion_server, lora_database, sink, dataSourceId="", databaseId=database_id)
    assert sync.run_once().created == 1
    assert sync.data_source_id == lora_database.data_source_id

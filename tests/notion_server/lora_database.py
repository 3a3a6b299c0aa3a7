"""The Chinese training-request database of examples/notionsource.yaml, built in the local server.

Columns: 名称 (title), 类型 (select: 图像风格, 人物IP), 描述, 参考图 (files), 状态 (status),
输出权重 and 预览图 (files), 创建人 (created_by), plus the write-back columns 进度, 损失,
轮次, 下载链接, 错误信息, 训练资源 and the override column 步数.
"""

from __future__ import annotations

import mimetypes
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from tests.notion_server.server import NotionServer
from tests.notion_server.workspace import Comment, User, plain, text

REPO = Path(__file__).resolve().parents[2]
EXAMPLE_SOURCE = REPO / "examples" / "notionsource.yaml"
TOKEN = "ntn_local_test_token_0001"
STATUS_OPTIONS = ("待训练", "排队中", "训练中", "已暂停", "已完成", "失败", "已拒绝")
TYPES = ("图像风格", "人物IP")
PROPERTIES: dict[str, dict[str, Any]] = {
    "名称": {"type": "title"},
    "类型": {"type": "select", "select": {"options": list(TYPES)}},
    "描述": {"type": "rich_text"},
    "参考图": {"type": "files"},
    "状态": {"type": "status", "status": {"options": list(STATUS_OPTIONS)}},
    "输出权重": {"type": "files"},
    "预览图": {"type": "files"},
    "创建人": {"type": "created_by"},
    "进度": {"type": "number", "number": {"format": "number"}},
    "损失": {"type": "number", "number": {"format": "number"}},
    "轮次": {"type": "number", "number": {"format": "number"}},
    "下载链接": {"type": "rich_text"},
    "错误信息": {"type": "rich_text"},
    "训练资源": {"type": "rich_text"},
    "步数": {"type": "number", "number": {"format": "number"}},
}


@dataclass
class LoraDatabase:
    """The database, its integration token and a submitter, with helpers to add and read rows."""

    server: NotionServer
    token: str
    data_source_id: str
    submitter: User

    def add_row(
        self,
        title: str,
        *,
        row_type: str = "图像风格",
        description: str = "",
        images: list[Path] | None = None,
        external_images: list[tuple[str, str]] | None = None,
        status: str = "待训练",
        creator: User | None = None,
        steps: float | None = None,
    ) -> str:
        """Add a row as a person would in the Notion app, and return its page id."""
        workspace = self.server.workspace
        files: list[dict[str, Any]] = []
        for path in images or []:
            content_type = mimetypes.guess_type(path.name)[0] or "application/octet-stream"
            blob = workspace.files.add(path.name, path.read_bytes(), content_type)
            files.append({"name": path.name, "blob_id": blob.id})
        files += [{"name": name, "external_url": url} for name, url in external_images or []]
        values: dict[str, Any] = {"名称": text(title), "类型": row_type or None, "描述": text(description),
                                  "参考图": files, "状态": status, "步数": steps}
        page = workspace.add_page(self.data_source_id, values, created_by=(creator or self.submitter).id)
        return page.id

    def value(self, page_id: str, name: str) -> Any:
        return self.server.workspace.page_values(page_id)[name]

    def text(self, page_id: str, name: str) -> str:
        return plain(self.value(page_id, name))

    def links(self, page_id: str, name: str) -> list[str]:
        return [item["text"]["link"]["url"] for item in self.value(page_id, name) if (item.get("text") or {}).get("link")]

    def comments(self, page_id: str) -> list[Comment]:
        return self.server.workspace.comments_on(page_id)

    def file_bytes(self, page_id: str, name: str) -> list[bytes]:
        """Return the bytes of the Notion-hosted files in a files property."""
        found = []
        for entry in self.value(page_id, name):
            if "blob_id" in entry:
                found.append(self.server.files.blob(entry["blob_id"]).data)
        return found


def create_lora_database(server: NotionServer, *, token: str = TOKEN) -> LoraDatabase:
    workspace = server.workspace
    workspace.add_integration(token)
    submitter = workspace.add_user("李雷", email="lilei@example.com")
    source = workspace.add_data_source("LoRA 训练申请", PROPERTIES, shared_with=[token])
    return LoraDatabase(server=server, token=token, data_source_id=source.id, submitter=submitter)


def example_source(database: LoraDatabase, **spec_changes: Any) -> dict[str, Any]:
    """Return examples/notionsource.yaml pointed at the local database, with its presets on tiny test models."""
    manifest = yaml.safe_load(EXAMPLE_SOURCE.read_text(encoding="utf-8"))
    spec = manifest["spec"]
    spec["dataSourceId"] = database.data_source_id
    spec["pollIntervalSeconds"] = 5
    spec["allowedSubmitters"] = [database.submitter.email]
    for preset in spec["presets"]:
        preset["template"] = tiny_template()
    spec.update(spec_changes)
    return manifest


def tiny_template() -> dict[str, Any]:
    """A preset template that trains the builtin tiny models in seconds on a CPU."""
    return {
        "baseModel": "builtin://tiny-sd",
        "dataset": {"resolution": 64},
        "captioning": {"model": "builtin://tiny-clip", "topK": 3},
        "training": {"maxSteps": 4, "batchSize": 2, "checkpointEvery": 4},
        "previews": {"every": 4, "count": 1, "inferenceSteps": 2},
        "resources": {"gpus": 0, "cpu": "100m", "memory": "64Mi"},
    }

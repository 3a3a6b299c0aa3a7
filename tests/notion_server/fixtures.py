"""pytest fixtures of the local Notion server; the conftest.py of each Notion test folder imports them."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.notion_server.lora_database import LoraDatabase, create_lora_database
from tests.notion_server.server import NotionServer


@pytest.fixture
def notion_server() -> Iterator[NotionServer]:
    """A fresh local Notion server on 127.0.0.1."""
    server = NotionServer().start()
    yield server
    server.stop()


@pytest.fixture
def lora_database(notion_server: NotionServer) -> LoraDatabase:
    """The Chinese training-request database, shared with a test integration token."""
    return create_lora_database(notion_server)

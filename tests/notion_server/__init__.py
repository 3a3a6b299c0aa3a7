"""A local Notion API server for tests (Notion API 2025-09-03): the only simulated service.

It keeps a workspace in memory, checks bearer tokens and the Notion-Version header,
answers with the API's error bodies, and can inject faults and enforce a rate limit.
"""

from tests.notion_server.server import NotionServer

__all__ = ["NotionServer"]

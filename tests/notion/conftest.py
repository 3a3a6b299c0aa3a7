from tests.notion_server.fixtures import lora_database, notion_server  # noqa: F401 - pytest fixtures

"""Text records as read from the dataset files, and the errors that point at a file and line."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from typing import Literal

RecordKind = Literal["text", "prompt_completion", "chat"]
CHAT_ROLES = ("system", "user", "assistant")


@dataclass(frozen=True)
class ChatMessage:
    role: str
    content: str


@dataclass
class TextRecord:
    """One training example, in one of three shapes.

    ``text`` records set ``text``; ``prompt_completion`` records set ``prompt`` and
    ``completion``; ``chat`` records set ``messages``.
    """

    kind: RecordKind
    file: str
    """Name of the dataset file, relative to its source."""
    line: int
    """Line (from 1) where the record starts in its file."""
    text: str = ""
    prompt: str = ""
    completion: str = ""
    messages: list[ChatMessage] = field(default_factory=list)

    def content_key(self) -> str:
        """Return the sha256 of the record's content, the same for exact duplicates wherever they are."""
        content = {
            "text": [self.text],
            "prompt_completion": [self.prompt, self.completion],
            "chat": [[message.role, message.content] for message in self.messages],
        }[self.kind]
        payload = json.dumps([self.kind, content], ensure_ascii=False, separators=(",", ":"))
        return hashlib.sha256(payload.encode("utf-8")).hexdigest()

    def preview_prompt(self) -> str:
        """Return the prompt a preview completes: the prompt, the first user turn, or the text's first 200 characters."""
        if self.kind == "prompt_completion":
            return self.prompt
        if self.kind == "chat":
            users = [message.content for message in self.messages if message.role == "user"]
            return users[0] if users else ""
        return self.text[:200]

    def location(self) -> str:
        return f"{self.file}:{self.line}"


@dataclass(frozen=True)
class RecordError:
    """A problem with one record or file, where a user can find it."""

    file: str
    line: int
    message: str

    def __str__(self) -> str:
        return f"{self.file}:{self.line}: {self.message}"

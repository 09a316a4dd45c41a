"""LangChain objects as the plain JSON a decision holds (OpenTelemetry GenAI message shapes).

Runs on the sender's thread, never in a callback: a callback keeps references, this turns them
into JSON when the record is built.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping
from datetime import date, datetime
from enum import Enum
from typing import Any
from uuid import UUID

from langchain_core.documents import Document
from langchain_core.messages import BaseMessage, ToolMessage
from pydantic import BaseModel

MAX_DEPTH = 24  # the service accepts 64; deeper values are cut with a marker
MAX_STRING = 200_000
MAX_ITEMS = 1_000

ROLES = {"human": "user", "ai": "assistant", "system": "system", "tool": "tool",
         "function": "tool", "chat": "user", "AIMessageChunk": "assistant"}  # fmt: skip


def message_json(message: BaseMessage) -> dict[str, Any]:
    """A message as ``{"role", "content", "tool_calls"?, "tool_call_id"?, "name"?}``."""
    role = ROLES.get(message.type, message.type)
    if message.type == "chat":
        role = str(getattr(message, "role", role))
    out: dict[str, Any] = {"role": role, "content": to_json(message.content)}
    if message.name:
        out["name"] = message.name
    tool_calls = getattr(message, "tool_calls", None)
    if tool_calls:
        out["tool_calls"] = [tool_call_json(call) for call in tool_calls]
    if isinstance(message, ToolMessage):
        out["tool_call_id"] = message.tool_call_id
        if message.status != "success":
            out["status"] = message.status
    return out


def tool_call_json(call: Mapping[str, Any]) -> dict[str, Any]:
    return {"id": call.get("id"), "name": call.get("name"), "arguments": to_json(call.get("args"))}


def document_json(document: Document) -> dict[str, Any]:
    """A retrieved document by its id (and its metadata), not its text."""
    out: dict[str, Any] = {}
    identifier = document.id or document.metadata.get("id") or document.metadata.get("source")
    if identifier is not None:
        out["id"] = str(identifier)
    if document.metadata:
        out["metadata"] = to_json(document.metadata)
    return out


def to_json(value: Any, depth: int = 0) -> Any:
    """Any value as JSON the trail can canonicalize: messages and documents in their shapes,
    pydantic models and dataclasses as their fields, the rest as text."""
    if value is None or isinstance(value, bool | int):
        return value
    if isinstance(value, str):
        return value if len(value) <= MAX_STRING else value[:MAX_STRING] + "…[truncated]"
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if depth >= MAX_DEPTH:
        return "…[nested too deep]"
    if isinstance(value, BaseMessage):
        return message_json(value)
    if isinstance(value, Document):
        return document_json(value)
    if isinstance(value, Mapping):
        items = list(value.items())[:MAX_ITEMS]
        return {str(key): to_json(item, depth + 1) for key, item in items}
    if isinstance(value, list | tuple | set | frozenset):
        return [to_json(item, depth + 1) for item in list(value)[:MAX_ITEMS]]
    if isinstance(value, UUID):
        return str(value)
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, Enum):
        return to_json(value.value, depth + 1)
    if isinstance(value, BaseModel):
        try:
            return to_json(value.model_dump(mode="json"), depth + 1)
        except Exception:  # a model that cannot dump itself: its text
            return repr(value)[:MAX_STRING]
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return to_json(dataclasses.asdict(value), depth + 1)
    if isinstance(value, bytes):
        return f"<{len(value)} bytes>"
    return repr(value)[:MAX_STRING]

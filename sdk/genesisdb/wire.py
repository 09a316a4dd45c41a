"""The HTTP wire protocol's routes: one table shared by the server and the HTTP transport.

Every path is under ``/api/v1``. ``role`` is the least token role a route needs (None: no
token). ``streaming`` routes answer NDJSON: one JSON value per line, each ending in ``\\n``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

import orjson

__all__ = [
    "API_PREFIX",
    "DEFAULT_HEARTBEAT_SECONDS",
    "HEARTBEAT",
    "ROUTES",
    "Role",
    "Route",
    "is_heartbeat",
    "ndjson_line",
]

Role = Literal["read", "write", "admin"]
API_PREFIX = "/api/v1"
HEARTBEAT: dict[str, str] = {"payload": ""}
DEFAULT_HEARTBEAT_SECONDS = 10.0


@dataclass(frozen=True)
class Route:
    method: Literal["GET", "POST"]
    path: str
    role: Role | None
    streaming: bool = False


ROUTES: dict[str, Route] = {
    "commit": Route("POST", "/commit", "write"),
    "stream": Route("POST", "/stream", "read", streaming=True),
    "observe": Route("POST", "/observe", "read", streaming=True),
    "query": Route("POST", "/q", "read", streaming=True),
    "erase": Route("POST", "/erase", "admin"),
    "ping": Route("GET", "/status/ping", None),
    "audit": Route("GET", "/status/audit", "admin"),
    "status": Route("GET", "/status", "read"),
    "subjects": Route("GET", "/subjects", "read"),
    "types": Route("GET", "/types", "read"),
    "register_schema": Route("POST", "/schema/register", "admin"),
    "get_schema": Route("GET", "/schema/get", "read"),
    "backup": Route("GET", "/backup/create", "admin"),
    "restore": Route("POST", "/backup/restore", "admin"),
    "metrics": Route("GET", "/metrics", "read"),
}


def ndjson_line(value: Any) -> bytes:
    """One NDJSON line: compact JSON and a terminating newline."""
    return orjson.dumps(value) + b"\n"


def is_heartbeat(value: Any) -> bool:
    """The observe keep-alive line ``{"payload": ""}``."""
    return isinstance(value, dict) and len(value) == 1 and value.get("payload") == ""

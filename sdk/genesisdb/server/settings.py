"""Server settings: command line over ``GENESISDB_*`` environment over safe defaults."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field, fields, replace
from typing import Any

from genesisdb.engine import DEFAULT_MAX_EVENT_BYTES
from genesisdb.wire import DEFAULT_HEARTBEAT_SECONDS

__all__ = ["ServerSettings"]

DEFAULT_STORAGE_URL = "sqlite:///genesisdb.db"

_ENV: dict[str, str] = {
    "host": "GENESISDB_HOST",
    "port": "GENESISDB_PORT",
    "storage_url": "GENESISDB_STORAGE_URL",
    "auth_token": "GENESISDB_AUTH_TOKEN",
    "admin_token": "GENESISDB_ADMIN_TOKEN",
    "write_token": "GENESISDB_WRITE_TOKEN",
    "read_token": "GENESISDB_READ_TOKEN",
    "max_event_bytes": "GENESISDB_MAX_EVENT_BYTES",
    "max_body_bytes": "GENESISDB_MAX_BODY_BYTES",
    "heartbeat_seconds": "GENESISDB_HEARTBEAT_SECONDS",
    "max_observers": "GENESISDB_MAX_OBSERVERS",
    "query_seconds": "GENESISDB_QUERY_SECONDS",
    "max_queries": "GENESISDB_MAX_QUERIES",
    "max_queries_per_token": "GENESISDB_MAX_QUERIES_PER_TOKEN",
}


@dataclass(frozen=True)
class ServerSettings:
    """How the compatible server runs. Tokens are never shown in ``repr``.

    ``auth_token`` is one token with every role; ``admin_token``/``write_token``/``read_token``
    grant one role each (admin ⊃ write ⊃ read). At least one token is required.
    """

    host: str = "127.0.0.1"
    port: int = 8080
    storage_url: str = DEFAULT_STORAGE_URL
    auth_token: str | None = field(default=None, repr=False)
    admin_token: str | None = field(default=None, repr=False)
    write_token: str | None = field(default=None, repr=False)
    read_token: str | None = field(default=None, repr=False)
    max_event_bytes: int = DEFAULT_MAX_EVENT_BYTES
    max_body_bytes: int = 32 * 1024 * 1024
    heartbeat_seconds: float = DEFAULT_HEARTBEAT_SECONDS
    max_observers: int = 256
    #: Time budget of one GDBQL query (preconditions included), checked during evaluation.
    query_seconds: float = 30.0
    #: GDBQL queries running at once, in all (503 past it) and per token (429 past it).
    max_queries: int = 16
    max_queries_per_token: int = 4

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None, **overrides: Any) -> ServerSettings:
        """Settings from the environment, then ``overrides`` (None values are ignored)."""
        environ = os.environ if environ is None else environ
        values: dict[str, Any] = {}
        types = {item.name: item.type for item in fields(cls)}
        for name, env in _ENV.items():
            raw = environ.get(env)
            if raw:
                values[name] = _convert(name, raw, str(types[name]))
        values.update({key: value for key, value in overrides.items() if value is not None})
        return replace(cls(), **values).validated()

    def validated(self) -> ServerSettings:
        """Raise ValueError for settings the server cannot run with."""
        if not any(self.tokens().values()):
            raise ValueError(
                "no token configured: set --auth-token (or GENESISDB_AUTH_TOKEN), or "
                "--admin-token/--write-token/--read-token"
            )
        if not 0 < self.port < 65536:
            raise ValueError("port must be between 1 and 65535")
        if self.max_event_bytes < 1024 or self.max_body_bytes < self.max_event_bytes:
            raise ValueError("max_event_bytes must be ≥ 1024 and ≤ max_body_bytes")
        if self.heartbeat_seconds <= 0:
            raise ValueError("heartbeat_seconds must be positive")
        if self.query_seconds <= 0 or self.max_queries < 1 or self.max_queries_per_token < 1:
            raise ValueError(
                "query_seconds, max_queries and max_queries_per_token must be positive"
            )
        return self

    def tokens(self) -> dict[str, str | None]:
        """Each configured token and the role it grants."""
        return {
            "admin": self.admin_token,
            "write": self.write_token,
            "read": self.read_token,
            "auth": self.auth_token,
        }


def _convert(name: str, raw: str, kind: str) -> Any:
    try:
        if kind.startswith("int"):
            return int(raw)
        if kind.startswith("float"):
            return float(raw)
    except ValueError:
        raise ValueError(f"{_ENV[name]} must be a number") from None
    return raw

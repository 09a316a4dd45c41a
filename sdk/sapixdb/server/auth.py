"""API keys, scopes and per-key rate limits for the server.

Open mode when no root key is configured: every request is allowed. Otherwise a request needs
``Authorization: Bearer <key>`` — the root key (everything allowed) or an API key whose scopes
allow the request's ``verb:resource``. Keys are stored by the engine (SHA-256 only); usage
counters and rate-limit buckets live in memory and restart with the server.
"""

from __future__ import annotations

import fnmatch
import re
import secrets
import threading
import time
from dataclasses import dataclass, field
from typing import Any

from sapixdb.engine import SapixEngine
from sapixdb.exceptions import SapixError, SapixRateLimitError, rate_limit_message

__all__ = ["Authenticator", "required_scope"]

# POSTs that only read: a key with read scope may run them.
_READ_POSTS = ("/query", "/strand/query", "/graph/traverse", "/verify")
# A batch of records needs exactly the scope one record's write needs.
_RECORD_BATCH = re.compile(r"(agents/[^/]+/records/)batch")


def required_scope(method: str, path: str) -> tuple[str, str]:
    """The ``(verb, resource)`` a request needs: ``("write", "agents/orders/records/json")``."""
    resource = path.removeprefix("/v1/").strip("/")
    if resource.startswith("admin/"):
        return "admin", "api-keys"
    if resource == "blobs" or resource.startswith("blobs/"):
        resource = "blobs"
    if method in ("GET", "HEAD") or (method == "POST" and path.endswith(_READ_POSTS)):
        return "read", resource
    batch = _RECORD_BATCH.fullmatch(resource) if method == "POST" else None
    if batch is not None:
        resource = batch.group(1) + "json"
    return "write", resource


def scope_allows(scope: str, verb: str, resource: str) -> bool:
    """Whether one ``verb:resource-glob`` scope grants ``verb`` on ``resource``."""
    have_verb, _, glob = scope.partition(":")
    if have_verb == "admin" and glob == "*":
        return True
    return have_verb == verb and fnmatch.fnmatchcase(resource, glob)


@dataclass(slots=True)
class _Usage:
    count: int = 0
    last_used_ms: int | None = None
    tokens: float = -1.0
    refilled: float = field(default_factory=time.monotonic)


class Authenticator:
    """Checks one request's credentials, scope and rate; raises SapixError (401/403/429)."""

    def __init__(self, engine: SapixEngine, root_key: str | None) -> None:
        self.engine = engine
        self.root_key = root_key or None
        self._usage: dict[str, _Usage] = {}
        self._lock = threading.Lock()

    @property
    def open_mode(self) -> bool:
        """True when no root key is configured: nothing is checked."""
        return self.root_key is None

    def authorize(
        self, method: str, path: str, authorization: str | None, caller: str | None
    ) -> None:
        """Allow the request or raise. Never echoes the presented key."""
        if self.root_key is None:
            return
        scheme, _, secret = (authorization or "").partition(" ")
        secret = secret.strip()
        if scheme.lower() != "bearer" or not secret:
            raise SapixError(
                "missing API key: send Authorization: Bearer <key>", 401, "UNAUTHORIZED"
            )
        if secrets.compare_digest(secret.encode(), self.root_key.encode()):
            return
        state = self.engine.key_for_secret(secret)
        if state is None:
            raise SapixError("invalid API key", 401, "UNAUTHORIZED")
        if state["revoked"]:
            raise SapixError("this API key has been revoked", 401, "KEY_REVOKED")
        expires = state["expires_at_ms"]
        if expires is not None and expires <= time.time_ns() // 1_000_000:
            raise SapixError("this API key has expired", 401, "KEY_EXPIRED")
        if state["caller_id"] is not None and caller is not None and caller != state["caller_id"]:
            raise SapixError("X-Sapix-Caller does not match this API key", 401, "UNAUTHORIZED")
        verb, resource = required_scope(method, path)
        if not any(scope_allows(scope, verb, resource) for scope in state["scopes"]):
            raise SapixError(f"this API key lacks the scope {verb}:{resource}", 403, "FORBIDDEN")
        self._count(state)

    def _count(self, state: dict[str, Any]) -> None:
        rps = state["rate_limit_rps"]
        now = time.monotonic()
        with self._lock:
            usage = self._usage.setdefault(state["key_id"], _Usage())
            if rps is not None:
                # A token bucket holding one second of requests.
                if usage.tokens < 0:
                    usage.tokens = float(rps)
                usage.tokens = min(float(rps), usage.tokens + (now - usage.refilled) * rps)
                usage.refilled = now
                if usage.tokens < 1:
                    raise SapixRateLimitError(rate_limit_message(rps), rps)
                usage.tokens -= 1
            usage.count += 1
            usage.last_used_ms = time.time_ns() // 1_000_000

    def usage(self, key_id: str) -> dict[str, Any]:
        """``{key_id, label, request_count_since_restart, last_used_at_ms}``."""
        view = self.engine.get_key(key_id)
        with self._lock:
            usage = self._usage.get(key_id, _Usage())
            return {
                "key_id": key_id,
                "label": view["label"],
                "request_count_since_restart": usage.count,
                "last_used_at_ms": usage.last_used_ms,
            }

"""The service in process: its app on httpx's ASGI transport over a data directory, keys minted
through the key store, and Server-Sent Events read straight from the ASGI app."""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator, MutableMapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
from fastapi import FastAPI

from decisiontrail.apikeys import Scope
from decisiontrail.app import create_app
from decisiontrail.config import Settings
from decisiontrail.state import ServiceState

EVERY_SCOPE = frozenset(Scope) - {Scope.ADMIN}
DECISION: dict[str, Any] = {
    "agent": "support-bot",
    "action": "refund",
    "kind": "llm_call",
    "input": {"message": "Alice Example, born 1990-01-01"},
    "data_subjects": ["customer-17"],
    "personal": ["input"],
}


@dataclass
class Service:
    app: FastAPI
    client: httpx.AsyncClient
    state: ServiceState

    async def key(self, tenant: str, *scopes: Scope, **options: Any) -> dict[str, str]:
        """Headers with a new key of ``tenant`` (every scope but admin unless ``scopes``)."""
        text, _ = await self.state.keys.create(
            tenant=tenant, scopes=frozenset(scopes or EVERY_SCOPE), **options
        )
        return {"Authorization": f"Bearer {text}"}

    async def record(self, headers: dict[str, str], **changes: Any) -> dict[str, Any]:
        """Record :data:`DECISION` with ``changes``; the receipt."""
        response = await self.client.post(
            "/v1/decisions", json={**DECISION, **changes}, headers=headers
        )
        assert response.status_code == 201, response.text
        receipt: dict[str, Any] = response.json()
        return receipt


@contextlib.asynccontextmanager
async def running(data_dir: Path, **settings: Any) -> AsyncIterator[Service]:
    """The service on ``data_dir`` (no periodic checkpoints: tests issue them)."""
    config = Settings(data_dir=data_dir, checkpoint_interval_seconds=3600, **settings)
    state = await ServiceState.open(config)
    app = create_app(config, state=state)
    app.state.service = state
    transport = httpx.ASGITransport(app=app)
    try:
        async with httpx.AsyncClient(transport=transport, base_url="http://dt.test") as client:
            yield Service(app, client, state)
    finally:
        await state.close()


async def read_events(
    app: FastAPI, url: str, headers: dict[str, str], *, count: int
) -> list[dict[str, Any]]:
    """The first ``count`` SSE ``data`` payloads of a stream, then a client disconnect.

    httpx's ASGI transport waits for the whole body, which a stream never finishes, so this
    drives the ASGI app directly.
    """
    path, _, query = url.partition("?")
    scope = {
        "type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": "GET",
        "scheme": "http", "path": path, "raw_path": path.encode(), "root_path": "",
        "query_string": query.encode(), "server": ("dt.test", 80), "client": ("127.0.0.1", 1),
        "headers": [(b"host", b"dt.test")]
        + [(k.lower().encode(), v.encode()) for k, v in headers.items()],
    }  # fmt: skip
    chunks: asyncio.Queue[bytes] = asyncio.Queue()
    disconnect = asyncio.Event()
    requested = False

    async def receive() -> dict[str, Any]:
        nonlocal requested
        if not requested:
            requested = True
            return {"type": "http.request", "body": b"", "more_body": False}
        await disconnect.wait()
        return {"type": "http.disconnect"}

    async def send(message: MutableMapping[str, Any]) -> None:
        if message["type"] == "http.response.start":
            assert message["status"] == 200, message
        elif message["type"] == "http.response.body":
            await chunks.put(message.get("body", b""))

    task = asyncio.create_task(app(scope, receive, send))
    events: list[dict[str, Any]] = []
    buffer = b""
    try:
        while len(events) < count:  # a guard, not a timing assertion: fail instead of hanging
            buffer += await asyncio.wait_for(chunks.get(), timeout=60)
            *lines, buffer = buffer.split(b"\n")
            events += [json.loads(line[5:]) for line in lines if line.startswith(b"data:")]
    finally:
        disconnect.set()
        await asyncio.wait_for(task, timeout=60)
    return events[:count]

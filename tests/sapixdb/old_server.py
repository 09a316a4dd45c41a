"""Our server with its batch endpoints hidden, as a real SapixDB server (which lacks them).

``POST /v1/{G}/graph/edges`` and ``POST /v1/agents/{A}/records/batch`` answer ``status``
(404 or 405); the requests to them and to the single endpoints the SDK falls back to are
counted.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson
import uvicorn

from sapixdb.server import ServerSettings, create_app
from tests.ports import free_port


@dataclass
class OldServer:
    """Where a server without the batch endpoints runs, and what it was sent."""

    url: str
    status: int
    batch_hits: list[str] = field(default_factory=list)
    single_hits: list[str] = field(default_factory=list)
    record_batch_hits: list[str] = field(default_factory=list)
    record_single_hits: list[str] = field(default_factory=list)

    def clear(self) -> None:
        for hits in (
            self.batch_hits,
            self.single_hits,
            self.record_batch_hits,
            self.record_single_hits,
        ):
            hits.clear()


def _without_batches(app: Any, old: OldServer) -> Any:
    async def wrapped(scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] == "http" and scope["method"] == "POST":
            path = scope["path"]
            hidden = None
            if path.endswith("/graph/edges"):
                hidden = old.batch_hits
            elif path.endswith("/records/batch"):
                hidden = old.record_batch_hits
            if hidden is not None:
                hidden.append(path)
                body = orjson.dumps({"error": "not found", "message": "not found", "code": "X"})
                headers = [(b"content-type", b"application/json")]
                await send(
                    {"type": "http.response.start", "status": old.status, "headers": headers}
                )
                await send({"type": "http.response.body", "body": body})
                return
            if path.endswith("/graph/edge"):
                old.single_hits.append(path)
            elif path.endswith("/records/json"):
                old.record_single_hits.append(path)
        await app(scope, receive, send)

    return wrapped


@contextmanager
def serve(app: Any) -> Iterator[str]:
    """Serve an ASGI app with uvicorn in a thread; yields its URL."""
    port = free_port()
    config = uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning")
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        assert thread.is_alive() and time.monotonic() < deadline, "the server did not start"
        time.sleep(0.02)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=10)


@contextmanager
def old_server(directory: Path, status: int) -> Iterator[OldServer]:
    """Our server on a SQLite file in ``directory``, its batch endpoints answering ``status``."""
    old = OldServer("", status)
    app = create_app(ServerSettings(storage_url=f"sqlite:///{directory}/o.db"))
    with serve(_without_batches(app, old)) as url:
        old.url = url
        yield old

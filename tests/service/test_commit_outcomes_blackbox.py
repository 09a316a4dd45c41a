"""Unknown commit outcomes, black-box: the ledger talks to a real Genesis DB server process
through a TCP proxy that loses the first decision commit's connection, either after the server
committed it (before relaying the answer) or before forwarding it."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from decisiontrail.ledger import Ledger
from genesisdb import Client
from tests.genesisdb.gdb_server import TOKENS, start_server
from tests.ports import free_port
from tests.service.test_ledger import all_records, close_ledger, decision, open_ledger

HEAD_END = b"\r\n\r\n"


class LosingProxy:
    """Forwards HTTP/1.1 byte for byte, except the first ``POST /api/v1/commit`` whose body
    names a decision: ``after`` forwards it, waits for the server's answer to start (the
    commit is done) and drops both connections; ``before`` drops the client at once."""

    def __init__(self, upstream_port: int, mode: str) -> None:
        self.upstream_port = upstream_port
        self.mode = mode
        self.dropped = 0

    async def _read_request(self, reader: asyncio.StreamReader) -> bytes:
        head = await reader.readuntil(HEAD_END)
        length = 0
        for line in head.split(b"\r\n"):
            name, _, value = line.partition(b":")
            if name.strip().lower() == b"content-length":
                length = int(value.strip())
        return head + (await reader.readexactly(length) if length else b"")

    async def _pump(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        with contextlib.suppress(ConnectionError, asyncio.IncompleteReadError):
            while chunk := await reader.read(65536):
                writer.write(chunk)
                await writer.drain()

    async def handle(self, client_r: asyncio.StreamReader, client_w: asyncio.StreamWriter) -> None:
        up_r, up_w = await asyncio.open_connection("127.0.0.1", self.upstream_port)
        pump = asyncio.create_task(self._pump(up_r, client_w))
        try:
            while True:
                try:
                    request = await self._read_request(client_r)
                except (asyncio.IncompleteReadError, ConnectionError):
                    return
                target = request.startswith(b"POST /api/v1/commit") and b"/agents/" in request
                if target and not self.dropped:
                    self.dropped += 1
                    pump.cancel()
                    with contextlib.suppress(asyncio.CancelledError):
                        await pump  # it no longer reads the server's answers
                    if self.mode == "after":
                        up_w.write(request)
                        await up_w.drain()
                        await up_r.readuntil(HEAD_END)  # the server committed and answers
                    return
                up_w.write(request)
                await up_w.drain()
        finally:
            pump.cancel()
            for writer in (client_w, up_w):
                writer.close()


@contextlib.asynccontextmanager
async def ledger_through_proxy(tmp_path: Path, mode: str) -> AsyncIterator[tuple[Ledger, Client]]:
    server = start_server(tmp_path)
    upstream = int(server.url.rsplit(":", 1)[1])
    proxy = LosingProxy(upstream, mode)
    port = free_port()
    listening = await asyncio.start_server(proxy.handle, "127.0.0.1", port)
    token = TOKENS["admin"]
    through = Client(
        {"api_url": f"http://127.0.0.1:{port}", "auth_token": token, "api_version": "v1"}
    )
    direct = Client({"api_url": server.url, "auth_token": token, "api_version": "v1"})
    ledger = open_ledger(tmp_path, through)
    try:
        yield ledger, direct
        assert proxy.dropped == 1  # the fault was injected
    finally:
        await close_ledger(ledger)
        await direct.close()
        listening.close()
        server.stop()


@pytest.mark.parametrize("mode", ["after", "before"])
async def test_a_group_whose_commit_connection_is_lost_is_recorded_once(
    tmp_path: Path, mode: str
) -> None:
    async with ledger_through_proxy(tmp_path, mode) as (ledger, direct):
        calls = [ledger.writer.record("acme", [decision(f"bot{i}", i)]) for i in range(2)]
        results = await asyncio.gather(*calls)  # both answered as recorded
        stored = [r.record["id"] async for r in ledger.reads.records("acme")]
        assert sorted(stored) == sorted(r[0].record["id"] for r in results)  # two, not four
        assert len(await direct.stream_events("/tenants/acme/log")) >= 1


async def test_a_lone_request_whose_commit_landed_is_not_answered_503(tmp_path: Path) -> None:
    async with ledger_through_proxy(tmp_path, "after") as (ledger, _):
        receipts = await ledger.writer.record("acme", [decision("a", 0)])
        assert [r["id"] for r in await all_records(ledger, "acme")] == [receipts[0].record["id"]]

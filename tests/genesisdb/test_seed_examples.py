"""Every example of the seed document runs as printed, embedded and against a real server,
each on SQLite and on PostgreSQL.

The examples (``seed_examples``) are compiled verbatim with top-level ``await`` and run in one
namespace per scenario, configured only through the ``GENESISDB_*`` environment as the
document says. Each scenario starts from an empty store.
"""

from __future__ import annotations

import ast
import asyncio
import contextlib
import inspect
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest

from genesisdb import Client, PreconditionFailedError
from tests.genesisdb import seed_examples as ex
from tests.genesisdb.gdb_server import TOKENS, start_server

TARGETS = [
    "embedded-sqlite",
    pytest.param("embedded-postgres", marks=pytest.mark.postgres),
    "server-sqlite",
    pytest.param("server-postgres", marks=pytest.mark.postgres),
]


@pytest.fixture(params=TARGETS)
def seed_env(
    request: pytest.FixtureRequest, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[str]:
    for name in ("GENESISDB_API_URL", "GENESISDB_API_VERSION", "GENESISDB_AUTH_TOKEN"):
        monkeypatch.delenv(name, raising=False)
    target = str(request.param)
    storage = f"sqlite:///{tmp_path}/seed.db"
    if target.endswith("postgres"):
        storage = str(request.getfixturevalue("pg_url"))
    if target.startswith("embedded"):
        monkeypatch.setenv("GENESISDB_API_URL", storage)
        yield target
        return
    server = start_server(tmp_path, storage=storage, heartbeat=0.2)
    monkeypatch.setenv("GENESISDB_API_URL", server.url)
    monkeypatch.setenv("GENESISDB_API_VERSION", "v1")
    monkeypatch.setenv("GENESISDB_AUTH_TOKEN", TOKENS["admin"])
    yield target
    server.stop()


class Namespace(dict[str, Any]):
    """Globals for the examples, with ``print`` captured."""

    def __init__(self) -> None:
        super().__init__()
        self.printed: list[tuple[Any, ...]] = []
        self["print"] = lambda *args: self.printed.append(args)

    @property
    def client(self) -> Client:
        client = self["client"]
        assert isinstance(client, Client)
        return client


async def run(code: str, namespace: Namespace) -> None:
    compiled = compile(code, "<seed example>", "exec", flags=ast.PyCF_ALLOW_TOP_LEVEL_AWAIT)
    result = eval(compiled, namespace)
    if inspect.iscoroutine(result):
        await result


@pytest.fixture
async def namespace(seed_env: str) -> AsyncIterator[Namespace]:
    names = Namespace()
    await run(ex.BASIC_SETUP, names)
    yield names
    await names.client.close()


async def test_streaming_committing_querying_and_health(namespace: Namespace) -> None:
    for example in (ex.STREAM_BASIC, ex.STREAM_LOWER_BOUND, ex.STREAM_LATEST):
        await run(example, namespace)
        assert namespace["events"] == []
    await run(ex.COMMIT_BASIC, namespace)
    await run(ex.STREAM_BASIC, namespace)
    assert [e["data"]["firstName"] for e in namespace["events"]] == ["Bruce", "Alfred", "Angus"]
    await run(ex.STREAM_LATEST, namespace)
    assert namespace["events"] == []
    await run(ex.QUERY_EVENTS, namespace)
    assert namespace["results"] == [
        {"subject": "/customer", "firstName": "Alfred"},
        {"subject": "/customer", "firstName": "Bruce"},
    ]
    await run(ex.HEALTH, namespace)
    assert namespace.printed[-2] == ("Ping response:", "pong")
    assert namespace["audit_response"]["valid"] is True
    assert namespace["audit_response"]["events"] == 4


async def test_subject_preconditions(namespace: Namespace) -> None:
    await run(ex.IS_SUBJECT_NEW, namespace)
    await run(ex.IS_SUBJECT_EXISTING, namespace)
    with pytest.raises(PreconditionFailedError):
        await run(ex.IS_SUBJECT_NEW, namespace)
    assert len(await namespace.client.stream_events("/user/456")) == 2


async def test_query_preconditions(namespace: Namespace) -> None:
    await run(ex.QUERY_UNIQUENESS, namespace)
    with pytest.raises(PreconditionFailedError) as failure:
        await run(ex.QUERY_UNIQUENESS, namespace)
    assert failure.value.details["type"] == "isQueryResultTrue"
    await run(ex.QUERY_TRANSACTION_LIMIT, namespace)
    # GROUP BY over no events yields no row, and no row is false: the rule needs a group.
    with pytest.raises(PreconditionFailedError):
        await run(ex.QUERY_COMPLEX, namespace)
    await namespace.client.commit_events(
        [
            {
                "source": "io.genesisdb.events",
                "subject": "/conference/2024/registrations",
                "type": "registration-created",
                "data": {"attendeeId": "att-1", "ticketType": "premium"},
            }
        ]
    )
    await run(ex.QUERY_COMPLEX, namespace)
    assert len(await namespace.client.stream_events("/conference")) == 2


async def test_gdpr_examples(namespace: Namespace) -> None:
    await run(ex.STORE_AS_REFERENCE, namespace)
    (stored,) = await namespace.client.stream_events("/user/456")
    assert stored["data"]["email"] == "john.doe@example.com"
    await run(ex.ERASE, namespace)
    (erased,) = await namespace.client.stream_events("/user/456")
    assert erased["data"] == {"firstName": "", "lastName": "", "email": ""}
    assert erased["hash"] == stored["hash"]
    assert (await namespace.client.audit())["valid"] is True


async def _observe_until_printed(
    namespace: Namespace, example: str, event_type: str
) -> tuple[Any, ...]:
    task = asyncio.create_task(run(example, namespace))
    event = {"source": "io.genesisdb.app", "subject": "/customer", "type": event_type}
    try:
        # The observation goes live at some moment after the call; commit until it prints.
        for n in range(100):
            await namespace.client.commit_events([{**event, "data": {"n": n}}])
            for _ in range(10):
                if namespace.printed:
                    break
                await asyncio.sleep(0.02)
            if namespace.printed:
                break
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
    assert namespace.printed, "the example printed nothing"
    return namespace.printed[0]


@pytest.mark.parametrize(
    ("example", "label"),
    [
        (ex.OBSERVE_BASIC, "Received event:"),
        (ex.OBSERVE_LOWER_BOUND, "Received event:"),
        (ex.OBSERVE_LATEST, "Received latest event:"),
    ],
    ids=["basic", "lower-bound", "latest-by-type"],
)
async def test_observe_examples(namespace: Namespace, example: str, label: str) -> None:
    printed = await _observe_until_printed(namespace, example, "io.genesisdb.app.customer-updated")
    assert printed[0] == label
    assert printed[1]["type"] == "io.genesisdb.app.customer-updated"
    assert set(printed[1]["data"]) == {"n"}

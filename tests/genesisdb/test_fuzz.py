"""Hostile input on every route gets a 4xx, never a 500 (hypothesis, in-process ASGI)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from genesisdb import GenesisDBError, operations
from genesisdb.engine import Engine
from genesisdb.server import ServerSettings, create_app
from tests.genesisdb.gdb_server import TOKENS

FUZZ = settings(
    max_examples=60,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
HEADERS = {"Authorization": f"Bearer {TOKENS['admin']}"}

scalars = st.one_of(
    st.none(), st.booleans(), st.integers(min_value=-(2**63), max_value=2**63 - 1),
    st.floats(allow_nan=False, allow_infinity=False), st.text(max_size=20),
    st.sampled_from(["/", "/a", "/a/b", "", "isSubjectNew", "STREAM e FROM events"]),
)  # fmt: skip
json_values = st.recursive(
    scalars,
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4)
    ),
    max_leaves=12,
)
GDBQL_WORDS = [
    "STREAM", "e", "FROM", "events", "WHERE", "e.type", "e.subject", "e.data.a", "e.time", "==",
    "!=", "<", ">=", "AND", "OR", "NOT", "IN", "[", "]", "(", ")", "{", "}", ":", ",", "BETWEEN",
    "UNDER", "DESCENDANTS", "GROUP", "BY", "HAVING", "ORDER", "DESC", "LIMIT", "MAP", "COUNT()",
    "SUM(e.data.a)", "AVG(", "MIN(e.time)", "+", "-", "*", "/", "%", "'x'", '"/a"', "1", "0",
    "-1", "1e308", "null", "true", "TOP", "PROJECT", "INTO", "'2024-01-01T00:00:00Z'", ";",
]  # fmt: skip
queries = st.one_of(
    st.text(max_size=60),
    st.lists(st.sampled_from(GDBQL_WORDS), max_size=25).map(" ".join),
    st.lists(st.sampled_from(GDBQL_WORDS), max_size=20).map(
        lambda words: "STREAM e FROM events " + " ".join(words)
    ),
)
event_like = st.fixed_dictionaries(
    {},
    optional={
        "source": json_values, "subject": st.one_of(json_values, st.sampled_from(["/f", "/f/x"])),
        "type": json_values, "data": json_values,
        "options": st.one_of(
            json_values, st.fixed_dictionaries({"storeDataAsReference": json_values})
        ),
        "id": json_values, "time": json_values,
    },
)  # fmt: skip
preconditions = st.lists(
    st.fixed_dictionaries(
        {"type": st.sampled_from(["isSubjectNew", "isSubjectExisting", "isQueryResultTrue", "x"])},
        optional={"payload": st.one_of(json_values, st.fixed_dictionaries(
            {}, optional={"subject": json_values, "query": queries}))},
    ),
    max_size=3,
)  # fmt: skip
stream_bodies = st.fixed_dictionaries(
    {},
    optional={
        "subject": st.one_of(json_values, st.sampled_from(["/", "/f"])),
        "options": st.one_of(json_values, st.fixed_dictionaries({}, optional={
            "lowerBound": json_values, "upperBound": json_values,
            "includeLowerBoundEvent": json_values, "latestByEventType": json_values})),
        "lowerBound": json_values,
    },
)  # fmt: skip
raw_bodies = st.one_of(
    st.binary(max_size=200),
    json_values.map(lambda value: json.dumps(value).encode()),
    st.just(b'{"a": NaN}'), st.just(b"[" * 5000), st.just(b'{"n": 1' + b"0" * 400 + b"}"),
)  # fmt: skip


@pytest.fixture(scope="module")
def engine(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Engine]:
    engine = Engine.open(f"sqlite:///{tmp_path_factory.mktemp('fuzz')}/f.db")
    yield engine
    engine.close()


@pytest.fixture(scope="module")
def api(engine: Engine) -> Iterator[TestClient]:
    app = create_app(
        ServerSettings(auth_token=TOKENS["admin"], max_body_bytes=1 << 20), engine=engine
    )
    with TestClient(app, raise_server_exceptions=False) as client:
        client.post("/api/v1/commit", headers=HEADERS, json={"events": [
            {"source": "s", "subject": "/f", "type": "t", "data": {"a": 1}},
            {"source": "s", "subject": "/f/x", "type": "t", "data": {"a": "b"},
             "options": {"storeDataAsReference": True}}]})  # fmt: skip
        yield client


def check(response: Any) -> None:
    assert 200 <= response.status_code < 500, response.text[:300]
    if response.status_code >= 400:
        assert set(response.json()) == {"error", "code", "details"}


@FUZZ
@given(
    events=st.one_of(json_values, st.lists(event_like, max_size=3)),
    conditions=st.one_of(json_values, preconditions),
)
def test_commit(api: TestClient, events: Any, conditions: Any) -> None:
    check(
        api.post(
            "/api/v1/commit", headers=HEADERS, json={"events": events, "preconditions": conditions}
        )
    )


@FUZZ
@given(body=st.one_of(stream_bodies, json_values))
def test_stream(api: TestClient, body: Any) -> None:
    check(api.post("/api/v1/stream", headers=HEADERS, json=body))


@settings(FUZZ, max_examples=150)
@given(query=queries)
def test_query(api: TestClient, query: str) -> None:
    check(api.post("/api/v1/q", headers=HEADERS, json={"query": query}))


@FUZZ
@given(body=json_values)
def test_erase_schema_restore(api: TestClient, body: Any) -> None:
    check(api.post("/api/v1/erase", headers=HEADERS, json=body))
    check(api.post("/api/v1/erase", headers=HEADERS, json={"subject": body}))
    check(api.post("/api/v1/schema/register", headers=HEADERS, json={"type": "fz", "schema": body}))
    check(api.post("/api/v1/schema/register", headers=HEADERS, json=body))
    check(api.post("/api/v1/backup/restore", headers=HEADERS, json=body))


@FUZZ
@given(path=st.sampled_from(["/commit", "/stream", "/q", "/query", "/erase", "/schema/register",
                             "/backup/restore"]), raw=raw_bodies)  # fmt: skip
def test_raw_bodies(api: TestClient, path: str, raw: bytes) -> None:
    check(api.post(f"/api/v1{path}", headers=HEADERS, content=raw))


@FUZZ
@given(
    path=st.sampled_from(
        [
            "/schema/get",
            "/status",
            "/subjects",
            "/types",
            "/status/ping",
            "/status/audit",
            "/backup/create",
            "/metrics",
            "/x",
        ]
    ),
    params=st.dictionaries(st.sampled_from(["type", "a"]), st.text(max_size=10), max_size=2),
    token=st.sampled_from([None, "", "Bearer", "Bearer x", f"Bearer {TOKENS['admin']}", "Basic a"]),
)
def test_get_routes_and_tokens(
    api: TestClient, path: str, params: dict[str, str], token: str | None
) -> None:
    headers = {} if token is None else {"Authorization": token}
    check(api.get(f"/api/v1{path}", headers=headers, params=params))


@FUZZ
@given(body=st.one_of(stream_bodies, json_values))
def test_observe_validation(api: TestClient, engine: Engine, body: Any) -> None:
    """Observe never ends by itself, so its validation runs on the engine directly."""
    try:
        subject, options = operations.stream_arguments(body)
        observation = engine.observe(subject, options)
    except GenesisDBError as exc:
        assert 400 <= exc.status < 500
        return
    observation.next(0)
    observation.close()


def test_a_body_over_the_limit_is_413(api: TestClient) -> None:
    response = api.post("/api/v1/commit", headers=HEADERS, content=b" " * (2 << 20))
    assert response.status_code == 413
    assert response.json()["code"] == "EVENT_TOO_LARGE"


def test_a_chunked_body_is_counted_as_it_arrives(api: TestClient) -> None:
    """The servers' one body-size middleware (``body_limit``): no Content-Length, no escape."""

    def chunks(count: int) -> Iterator[bytes]:
        yield b'{"events": [{"source": "s", "subject": "/chunked", "type": "t", "data": {"p": "'
        for _ in range(count):
            yield b"x" * 1024
        yield b'"}}]}'

    refused = api.post("/api/v1/commit", headers=HEADERS, content=chunks(1100))
    assert refused.status_code == 413 and refused.json()["code"] == "EVENT_TOO_LARGE"
    accepted = api.post("/api/v1/commit", headers=HEADERS, content=chunks(10))
    assert accepted.status_code == 200  # replayed to the route whole
    assert accepted.json()["events"][0]["data"]["p"] == "x" * 10 * 1024


def test_a_content_length_that_is_no_number_is_a_400(api: TestClient) -> None:
    headers = {**HEADERS, "Content-Length": "12x"}
    response = api.post("/api/v1/commit", headers=headers, content=b"{}")
    assert response.status_code == 400 and response.json()["code"] == "BAD_REQUEST"

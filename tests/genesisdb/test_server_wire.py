"""The wire protocol of the real server process, byte for byte."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from typing import Any

import httpx
import orjson
import pytest

from tests.genesisdb.gdb_server import TOKENS, ServerProcess

FIELDS = [
    "source", "subject", "type", "specversion", "id", "time", "datacontenttype",
    "predecessorhash", "data", "hash",
]  # fmt: skip


@pytest.fixture
def http(http_server: ServerProcess) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=f"{http_server.url}/api/v1", timeout=30) as client:
        yield client


def auth(role: str = "admin") -> dict[str, str]:
    return {"Authorization": f"Bearer {TOKENS[role]}"}


def subject() -> str:
    return f"/wire/{uuid.uuid4().hex}"


def commit(http: httpx.Client, *events: dict[str, Any], role: str = "admin") -> httpx.Response:
    return http.post("/commit", json={"events": list(events)}, headers=auth(role))


def event(path: str, **data: Any) -> dict[str, Any]:
    return {"source": "io.wire", "subject": path, "type": "io.wire.t", "data": data}


def assert_error(response: httpx.Response, status: int, code: str) -> dict[str, Any]:
    assert response.status_code == status
    body = response.json()
    assert list(body) == ["error", "code", "details"]
    assert body["code"] == code and isinstance(body["error"], str)
    assert isinstance(body["details"], dict)
    return dict(body["details"])


def test_ping_needs_no_token(http: httpx.Client) -> None:
    response = http.get("/status/ping")
    assert response.status_code == 200 and response.text == "pong"
    assert response.headers["content-type"].startswith("text/plain")


def test_commit_answers_200_with_the_ten_fields_in_order(http: httpx.Client) -> None:
    path = subject()
    response = commit(http, event(path, a=1), {**event(path, b=2), "id": "x", "time": "y"})
    assert response.status_code == 200
    events = orjson.loads(response.content)["events"]
    assert [list(item) for item in events] == [FIELDS, FIELDS]
    assert events[1]["id"] != "x" and events[1]["time"] != "y"


def test_ndjson_framing_is_byte_exact(http: httpx.Client) -> None:
    path = subject()
    stored = commit(http, event(path, n=1), event(path, n=2)).json()["events"]
    response = http.post("/stream", json={"subject": path}, headers=auth("read"))
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("application/x-ndjson")
    assert response.content == b"".join(orjson.dumps(item) + b"\n" for item in stored)
    empty = http.post("/stream", json={"subject": path + "/none"}, headers=auth("read"))
    assert empty.status_code == 200 and empty.content == b""
    rows = http.post(
        "/q",
        json={"query": f"STREAM e FROM events WHERE e.subject == '{path}' MAP e.data.n"},
        headers=auth("read"),
    )
    assert rows.content == b"1\n2\n"
    alias = http.post(
        "/query", json={"query": "STREAM e FROM events WHERE false"}, headers=auth("read")
    )
    assert alias.status_code == 200 and alias.content == b""


def test_stream_options_are_accepted_at_top_level(http: httpx.Client) -> None:
    path = subject()
    first, second = commit(http, event(path, n=1), event(path, n=2)).json()["events"]
    response = http.post(
        "/stream", json={"subject": path, "lowerBound": first["id"]}, headers=auth("read")
    )
    assert [orjson.loads(line)["id"] for line in response.content.splitlines()] == [second["id"]]


@pytest.mark.parametrize(
    ("method", "path", "role", "body"),
    [
        ("POST", "/commit", "read", {"events": []}),
        ("POST", "/erase", "write", {"subject": "/x"}),
        ("POST", "/schema/register", "write", {"type": "t", "schema": {}}),
        ("GET", "/backup/create", "write", None),
        ("POST", "/backup/restore", "write", []),
        ("GET", "/status/audit", "read", None),
    ],
)
def test_a_token_without_the_role_gets_403(
    http: httpx.Client, method: str, path: str, role: str, body: Any
) -> None:
    response = http.request(method, path, json=body, headers=auth(role))
    assert_error(response, 403, "FORBIDDEN")


@pytest.mark.parametrize(
    ("method", "path"),
    [("POST", "/stream"), ("POST", "/commit"), ("GET", "/status"), ("GET", "/subjects"),
     ("POST", "/observe"), ("GET", "/metrics")],
)  # fmt: skip
def test_no_or_a_wrong_token_gets_401(http: httpx.Client, method: str, path: str) -> None:
    assert_error(http.request(method, path, json={"subject": "/"}), 401, "UNAUTHORIZED")
    wrong = {"Authorization": "Bearer nope"}
    assert_error(
        http.request(method, path, json={"subject": "/"}, headers=wrong), 401, "UNAUTHORIZED"
    )


def test_roles_allow_what_they_should(http: httpx.Client) -> None:
    path = subject()
    assert commit(http, event(path), role="write").status_code == 200
    assert http.post("/stream", json={"subject": path}, headers=auth("read")).status_code == 200
    assert http.get("/types", headers=auth("read")).status_code == 200
    erase = http.post("/erase", json={"subject": path}, headers=auth("admin"))
    assert erase.status_code == 200 and erase.json() == {"erased": 0}


def test_error_statuses(http: httpx.Client) -> None:
    path = subject()
    commit(http, event(path))
    guard = [{"type": "isSubjectNew", "payload": {"subject": path}}]
    failed = http.post(
        "/commit", json={"events": [event(path)], "preconditions": guard}, headers=auth()
    )
    details = assert_error(failed, 412, "PRECONDITION_FAILED")
    assert details == {"index": 0, "type": "isSubjectNew", "payload": {"subject": path}}
    assert_error(commit(http, event(path, blob="x" * 70_000)), 413, "EVENT_TOO_LARGE")
    bad_json = http.post("/commit", content=b"{not json", headers=auth())
    assert_error(bad_json, 400, "BAD_REQUEST")
    query = http.post("/q", json={"query": "STREAM e FROM events LIMIT"}, headers=auth())
    details = assert_error(query, 400, "INVALID_QUERY")
    assert details["position"] == 26 and details["expected"]
    kind = f"io.wire.schema.{uuid.uuid4().hex}"
    schema = {"properties": {"n": {"type": "integer", "required": True}}}
    assert (
        http.post(
            "/schema/register", json={"type": kind, "schema": schema}, headers=auth()
        ).status_code
        == 200
    )
    got = http.get("/schema/get", params={"type": kind}, headers=auth("read"))
    assert got.status_code == 200 and got.json()["schema"] == schema
    violation = commit(http, {**event(path), "type": kind, "data": {"n": "one"}})
    assert assert_error(violation, 422, "SCHEMA_VIOLATION")["violations"] == [
        "n must be of type integer"
    ]
    assert_error(http.get("/nowhere", headers=auth()), 404, "NOT_FOUND")
    restore = http.post("/backup/restore", json=[], headers=auth())
    assert restore.status_code == 200 and restore.json() == {"restored": 0}


def test_observe_sends_heartbeats_and_events(http: httpx.Client) -> None:
    path = subject()
    first = commit(http, event(path, n=0)).json()["events"][0]
    body = {"subject": path, "options": {"lowerBound": first["id"], "includeLowerBoundEvent": True}}
    with http.stream("POST", "/observe", json=body, headers=auth("read")) as response:
        assert response.status_code == 200
        lines = response.iter_lines()
        assert orjson.loads(next(lines))["id"] == first["id"]
        assert next(lines) == '{"payload":""}'  # the server's heartbeat is 0.2 s here
        commit(http, event(path, n=1))
        for _ in range(200):
            item = orjson.loads(next(lines))
            if item != {"payload": ""}:
                break
        assert list(item) == FIELDS and item["data"] == {"n": 1}


def test_status_audit_metrics_backup(http: httpx.Client) -> None:
    commit(http, event(subject()))
    status = http.get("/status", headers=auth("read")).json()
    assert set(status) == {"engine", "system", "license", "events"}
    assert set(status["events"]) == {"count", "subjects", "types", "storageSize"}
    audit = http.get("/status/audit", headers=auth()).json()
    assert audit["valid"] is True and audit["firstInvalid"] is None
    metrics = http.get("/metrics", headers=auth("read"))
    assert metrics.status_code == 200 and "genesisdb_http_requests_total" in metrics.text
    backup = http.get("/backup/create", headers=auth())
    assert backup.status_code == 200
    events = backup.json()
    assert len(events) == audit["events"] >= 1
    assert_error(http.post("/backup/restore", json=events, headers=auth()), 409, "CONFLICT")

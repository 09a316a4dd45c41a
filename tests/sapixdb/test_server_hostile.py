"""Hostile input: every malformed request gets a 4xx with the error triple, never a 500."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from sapixdb.server import ServerSettings, create_app

LIMIT = 64 * 1024


@pytest.fixture(scope="module")
def client(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TestClient]:
    directory: Path = tmp_path_factory.mktemp("hostile")
    app = create_app(
        ServerSettings(storage_url=f"sqlite:///{directory}/h.db", max_body_bytes=LIMIT)
    )
    with TestClient(app, raise_server_exceptions=False) as test_client:
        yield test_client


def assert_triple(response: Any, status: int | None = None) -> None:
    assert 400 <= response.status_code < 500, (response.status_code, response.text)
    if status is not None:
        assert response.status_code == status, response.text
    body = response.json()
    assert set(body) >= {"error", "message", "code"}
    assert body["error"] == body["message"] and body["message"]
    assert isinstance(body["code"], str) and body["code"]


@pytest.mark.parametrize(
    "body",
    [b"{", b"not json", b"[1,2", b'{"data": }', b"\xff\xfe\xfa", b'{"data": "\xc3\x28"}', b""],
)
def test_malformed_json_is_a_400(client: TestClient, body: bytes) -> None:
    response = client.post("/v1/agents/a/records/json", content=body)
    assert_triple(response, 400)
    assert response.json()["code"] == "INVALID_JSON"


@pytest.mark.parametrize(
    ("path", "body"),
    [
        ("/v1/agents/a/records/json", [1, 2]),
        ("/v1/agents/a/records/json", {"nodata": 1}),
        ("/v1/agents/a/query", {"type": "as_of", "timestamp_hlc": "yesterday"}),
        ("/v1/agents/a/query", {"type": "latest", "limit": "ten"}),
        ("/v1/agents/a/query", {"type": "latest", "limit": -1}),
        ("/v1/agents/a/query", {"type": "scan", "filter": "x"}),
        (
            "/v1/agents/a/query",
            {"type": "scan", "filter": {"field": "a", "op": "regex", "value": 1}},
        ),
        ("/v1/agents/a/query", {"type": "current"}),
        ("/v1/agents/a/query", {"type": "time_range", "from_ts": "a", "to_ts": 1}),
        ("/v1/agents/a/query", {"type": "time_range", "from_ts": 2**70, "to_ts": 1}),
        ("/v1/agents/a/query", "latest"),
        ("/v1/g/graph/edge", {"src": 1, "dst": "b"}),
        ("/v1/g/graph/edge", {"src": "a", "dst": "b", "weight": "heavy"}),
        ("/v1/g/graph/edge", {"src": "a", "dst": "b", "edge_type": ""}),
        ("/v1/g/graph/traverse", {"from": "a", "depth": 99}),
        ("/v1/g/graph/edges", [{"src": "a", "dst": "b"}]),
        ("/v1/g/graph/edges", {"src": "a", "dst": "b"}),
        ("/v1/g/graph/edges", {"edges": "a->b"}),
        ("/v1/g/graph/edges", {"edges": {"src": "a", "dst": "b"}}),
        ("/v1/g/graph/edges", {"edges": None}),
        ("/v1/g/graph/edges", {"edges": [["a", "b", "t"]]}),
        ("/v1/g/graph/edges", {"edges": [{"src": "a", "dst": "b"}, None]}),
        ("/v1/g/graph/edges", {"edges": [{"src": "a", "dst": "b"}, {"src": 1, "dst": "b"}]}),
        ("/v1/g/graph/edges", {"edges": [{"src": "a", "dst": "b", "weight": "heavy"}]}),
        ("/v1/g/graph/edges", {"edges": [{"src": "a", "dst": "b", "weight": None}]}),
        ("/v1/g/graph/edges", {"edges": [{"src": "a", "dst": "b", "edge_type": ""}]}),
        ("/v1/g/graph/edges", {"edges": [{"src": "a", "dst": "b", "edge_type": ["t"]}]}),
        ("/v1/g/graph/edges", {"edges": [{"src": "a\u0000", "dst": "b"}]}),
        ("/v1/g/graph/edges", {"edges": [{"src": "a" * 300, "dst": "b"}]}),
        ("/v1/..g/graph/edges", {"edges": [{"src": "a", "dst": "b"}]}),
        ("/v1/a/strand/write", {"collection": "../x", "data": {}}),
        ("/v1/agents/a/records/batch", [{"x": 1}]),
        ("/v1/agents/a/records/batch", {"data": {"x": 1}}),
        ("/v1/agents/a/records/batch", {"items": {"x": 1}}),
        ("/v1/agents/a/records/batch", {"items": "x"}),
        ("/v1/agents/a/records/batch", {"items": None}),
        ("/v1/agents/a/records/batch", {"items": [{"x": 1}], "collection": "../x"}),
        ("/v1/agents/a/records/batch", {"items": [{"x": 1}], "collection": ""}),
        ("/v1/agents/a/records/batch", {"items": [{"x": 1}], "collection": 7}),
        ("/v1/agents/a/records/batch", {"items": [{"x": 1}], "collection": ["c"]}),
        ("/v1/agents/a/records/batch", {"items": [0] * 10_001}),
        ("/v1/agents/..a/records/batch", {"items": [{"x": 1}]}),
        ("/v1/a/strand/query", {"collection": "c", "filter": [1]}),
        ("/v1/a/strand/query", {"as_of": "not-a-time"}),
        ("/v1/a/strand/query", {"latest": "yes"}),
        ("/v1/admin/api-keys", {"scopes": "everything"}),
        ("/v1/admin/api-keys", {"rate_limit_rps": -3}),
        ("/v1/admin/api-keys", {"is_root": True}),
    ],
)
def test_wrong_types_are_a_400(client: TestClient, path: str, body: Any) -> None:
    assert_triple(client.post(path, json=body), 400)


@pytest.mark.parametrize(
    "body",
    [
        b'{"edges": [{"src": "a", "dst": "b", "weight": 1e999}]}',
        b'{"edges": [{"src": "a", "dst": "b", "weight": NaN}]}',
        b'{"edges": [{"src": "a", "dst": "b"},]}',
        b'{"edges": ',
        b"",
    ],
)
def test_bad_edge_batches_are_a_400(client: TestClient, body: bytes) -> None:
    assert_triple(client.post("/v1/g/graph/edges", content=body), 400)


@pytest.mark.parametrize(
    "body",
    [
        b'{"items": [{"x": 1e999}]}',
        b'{"items": [NaN]}',
        b'{"items": [{"x": 1},]}',
        b'{"items": ["\\ud800"]}',
        b'{"items": [' + b"[" * 300 + b"]" * 300 + b"]}",  # deeper than a record may be
        b'{"items": [' + b"[" * 2000 + b"]" * 2000 + b"]}",  # deeper than JSON is parsed
        b'{"items": ',
        b"",
    ],
)
def test_bad_record_batches_are_a_400(client: TestClient, body: bytes) -> None:
    assert_triple(client.post("/v1/agents/a/records/batch", content=body), 400)


def test_a_bad_record_fails_its_whole_batch(client: TestClient) -> None:
    deep = b"[" * 300 + b"]" * 300
    body = b'{"items": [{"n": 0}, {"n": 1}, ' + deep + b', {"n": 3}]}'
    response = client.post("/v1/agents/whole/records/batch", content=body)
    assert_triple(response, 400)
    assert response.json()["code"] == "INVALID_PAYLOAD"
    assert client.get("/v1/agents/whole/strand/records").json() == {"records": []}
    limited = client.post("/v1/agents/whole/records/batch", json={"items": [0] * 10_001})
    assert_triple(limited, 400)
    assert limited.json()["code"] == "TOO_MANY_RECORDS"
    assert client.get("/v1/agents/whole/strand/records").json() == {"records": []}


def test_a_bad_edge_fails_its_whole_batch(client: TestClient) -> None:
    edges = [{"src": "x1", "dst": "y", "edge_type": "t"}, {"src": "x2", "dst": ""}]
    response = client.post("/v1/g/graph/edges", json={"edges": edges})
    assert_triple(response, 400)
    assert response.json()["message"].startswith("edges[1]: dst must be")
    assert client.get("/v1/g/graph/edges/x1").json() == {"edges": []}


def test_unknown_query_type_is_a_400(client: TestClient) -> None:
    response = client.post("/v1/agents/a/query", json={"type": "drop_table"})
    assert_triple(response, 400)
    assert response.json()["code"] == "UNKNOWN_QUERY_TYPE"


def test_huge_bodies_are_a_413(client: TestClient) -> None:
    huge = b'{"data": "' + b"x" * (LIMIT + 10) + b'"}'
    assert_triple(client.post("/v1/agents/a/records/json", content=huge), 413)
    assert_triple(client.put("/v1/blobs", content=b"\0" * (LIMIT + 1)), 413)
    many = {"items": [{"pad": "x" * 1000}] * (LIMIT // 1000 + 1)}
    assert_triple(client.post("/v1/agents/a/records/batch", json=many), 413)

    def chunks() -> Iterator[bytes]:  # no Content-Length: counted while read
        for _ in range(LIMIT // 1024 + 2):
            yield b"x" * 1024

    assert_triple(client.post("/v1/agents/a/records/json", content=chunks()), 413)
    assert client.get("/v1/health").status_code == 200


@pytest.mark.parametrize(
    "path",
    [
        "/v1/agents/../records/json",
        "/v1/agents/..%2F..%2Fetc/records/json",
        "/v1/agents/a%2Fb/records/json",
        "/v1/agents/a%00b/records/json",
        "/v1/agents/%FF%FE/records/json",
        "/v1/agents/" + "a" * 5000 + "/records/json",
        "/v1/agents/.hidden/records/json",
        "/v1/agents/a..b/records/json",
        "/v1/agents/%20/records/json",
    ],
)
def test_path_tricks_in_names_are_rejected(client: TestClient, path: str) -> None:
    response = client.post(path, json={"data": {"x": 1}})
    assert_triple(response)
    assert response.status_code in (400, 404, 405)


@pytest.mark.parametrize(
    "path",
    [
        "/v1/agents/a/records/..%2F..",
        "/v1/agents/a/records/%00",
        "/v1/agents/a/records/" + "f" * 5000,
        "/v1/blobs/../../etc/passwd",
        "/v1/blobs/%FF",
        "/v1/g%00/graph/traverse/x",
        "/v1/g/graph/traverse/x?depth=abc",
        "/v1/agents/a/strand/records?limit=-5",
        "/v1/agents/a/strand/records?offset=x",
        "/v1/agents/a/stream?since=yesterday",
        "/v1/nothing/here/at/all",
    ],
)
def test_bad_reads_are_4xx(client: TestClient, path: str) -> None:
    assert_triple(client.get(path))


def test_wrong_method_is_a_405_triple(client: TestClient) -> None:
    assert_triple(client.put("/v1/health"), 405)


def test_every_success_has_a_json_body(client: TestClient) -> None:
    written = client.post("/v1/agents/ok/records/json", json={"data": {"x": 1}}).json()
    h = written["content_hash"]
    requests: list[tuple[str, str, Any]] = [
        ("GET", "/v1/health", None),
        ("DELETE", f"/v1/agents/ok/records/{h}", None),
        ("POST", f"/v1/agents/ok/records/{h}/restore", None),
        ("POST", "/v1/g/graph/edge", {"src": "a", "dst": "b", "edge_type": "t"}),
        ("POST", "/v1/g/graph/edges", {"edges": [{"src": "a", "dst": "b", "edge_type": "t"}]}),
        ("POST", "/v1/g/graph/edges", {"edges": []}),
        ("POST", "/v1/agents/ok/records/batch", {"items": [{"x": 2}]}),
        ("POST", "/v1/agents/ok/records/batch", {"items": []}),
        ("DELETE", "/v1/g/graph/edge", {"src": "a", "dst": "b", "edge_type": "t"}),
        ("POST", "/v1/control/checkpoint", None),
    ]
    for method, path, body in requests:
        response = client.request(method, path, json=body)
        assert response.status_code == 200, response.text
        assert isinstance(response.json(), dict)


# --- fuzzing ------------------------------------------------------------------------------

json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=20),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4)
    ),
    max_leaves=12,
)
names = st.text(min_size=1, max_size=40)
FUZZ = settings(max_examples=150, deadline=None, suppress_health_check=list(HealthCheck))


@FUZZ
@given(body=json_values, agent=names)
def test_fuzz_query_bodies(client: TestClient, body: Any, agent: str) -> None:
    from urllib.parse import quote

    response = client.post(f"/v1/agents/{quote(agent, safe='')}/query", json=body)
    assert response.status_code < 500, response.text
    if response.status_code >= 400:
        assert_triple(response)


@FUZZ
@given(
    query_type=st.sampled_from(
        ["latest", "scan", "as_of", "current", "count_current", "chain_head", "hash", "time_range"]
    ),
    extra=st.dictionaries(
        st.sampled_from(
            ["limit", "filter", "timestamp_hlc", "key", "content_hash", "from_ts", "to_ts"]
        ),
        json_values,
        max_size=4,
    ),
)
def test_fuzz_every_query_type(client: TestClient, query_type: str, extra: dict[str, Any]) -> None:
    response = client.post("/v1/agents/fuzz/query", json={"type": query_type, **extra})
    assert response.status_code < 500, response.text
    if response.status_code >= 400:
        assert_triple(response)


edge_items = st.one_of(
    json_values,
    st.dictionaries(
        st.sampled_from(["src", "dst", "edge_type", "weight", "extra"]), json_values, max_size=5
    ),
)


@FUZZ
@given(
    graph=names,
    edges=st.one_of(json_values, st.lists(edge_items, max_size=6)),
    wrap=st.booleans(),
)
def test_fuzz_edge_batches(client: TestClient, graph: str, edges: Any, wrap: bool) -> None:
    from urllib.parse import quote

    body = {"edges": edges} if wrap else edges
    response = client.post(f"/v1/{quote(graph, safe='')}/graph/edges", json=body)
    assert response.status_code < 500, response.text
    if response.status_code >= 400:
        assert_triple(response)
    else:
        answer = response.json()
        assert isinstance(edges, list) and len(answer["edges"]) == len(edges)


@FUZZ
@given(
    agent=names,
    items=st.one_of(json_values, st.lists(json_values, max_size=6)),
    collection=st.one_of(st.none(), names, json_values),
    wrap=st.booleans(),
)
def test_fuzz_record_batches(
    client: TestClient, agent: str, items: Any, collection: Any, wrap: bool
) -> None:
    from urllib.parse import quote

    body: Any = {"items": items, "collection": collection} if wrap else items
    response = client.post(f"/v1/agents/{quote(agent, safe='')}/records/batch", json=body)
    assert response.status_code < 500, response.text
    if response.status_code >= 400:
        assert_triple(response)
    else:
        answer = response.json()
        assert isinstance(items, list) and len(answer["records"]) == len(items)


@FUZZ
@given(
    method=st.sampled_from(["GET", "POST", "PUT", "PATCH", "DELETE"]),
    path=st.sampled_from(
        [
            "/v1/agents/{n}/records/json",
            "/v1/agents/{n}/records/batch",
            "/v1/agents/{n}/records/{n}",
            "/v1/agents/{n}/query",
            "/v1/agents/{n}/strand/records",
            "/v1/agents/{n}/records/deleted",
            "/v1/agents/{n}/records/{n}/restore",
            "/v1/{n}/graph/edge",
            "/v1/{n}/graph/edges",
            "/v1/{n}/graph/traverse/{n}",
            "/v1/{n}/graph/traverse",
            "/v1/{n}/graph/edges/{n}",
            "/v1/blobs/{n}",
            "/v1/blobs",
            "/v1/{n}/strand/write",
            "/v1/{n}/ingest",
            "/v1/{n}/strand/{n}",
            "/v1/{n}/strand/query",
            "/v1/admin/api-keys",
            "/v1/admin/api-keys/{n}",
            "/v1/admin/api-keys/{n}/usage",
        ]
    ),
    segment=names,
    body=st.one_of(json_values, st.binary(max_size=64)),
)
def test_fuzz_routes(client: TestClient, method: str, path: str, segment: str, body: Any) -> None:
    from urllib.parse import quote

    url = path.replace("{n}", quote(segment, safe=""))
    if isinstance(body, bytes):
        response = client.request(method, url, content=body)
    else:
        response = client.request(method, url, json=body)
    assert response.status_code < 500, response.text
    if response.status_code >= 400:
        assert_triple(response)

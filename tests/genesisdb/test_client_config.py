"""Client configuration, error mapping and CloudEvent conversion (no server needed)."""

from __future__ import annotations

import httpx
import pytest

import ledgerstore
from genesisdb import (
    AuthenticationError,
    Client,
    CloudEvent,
    GenesisDBError,
    NetworkError,
    PermissionDeniedError,
    PreconditionFailedError,
    ServerError,
)
from genesisdb.config import resolve_config
from genesisdb.events import to_cloudevent, to_dict
from genesisdb.exceptions import error_for
from genesisdb.storage import storage_error
from genesisdb.transports import EmbeddedTransport, HTTPTransport


def test_missing_values_are_named() -> None:
    with pytest.raises(ValueError, match="GENESISDB_API_URL"):
        resolve_config(None, environ={})
    with pytest.raises(ValueError, match="GENESISDB_API_VERSION, GENESISDB_AUTH_TOKEN"):
        resolve_config({"api_url": "http://localhost:8080"}, environ={})


def test_environment_fills_what_the_dict_lacks() -> None:
    environ = {"GENESISDB_API_VERSION": "v1", "GENESISDB_AUTH_TOKEN": "secret"}
    config = resolve_config({"api_url": "http://h:8080/"}, environ=environ)
    assert (config.api_url, config.api_version, config.auth_token) == (
        "http://h:8080",
        "v1",
        "secret",
    )
    assert "secret" not in repr(config)


def test_an_embedded_url_needs_no_token(tmp_path: object) -> None:
    config = resolve_config({"api_url": "sqlite:///x.db"}, environ={})
    assert config.embedded and config.auth_token is None
    assert resolve_config({"api_url": "postgresql://u@h/db"}, environ={}).embedded


async def test_the_client_picks_the_transport(
    tmp_path: object, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("GENESISDB_API_URL", f"sqlite:///{tmp_path}/e.db")
    async with Client() as client:
        assert isinstance(client.transport, EmbeddedTransport)
        assert await client.ping() == "pong"
    http = Client({"api_url": "http://127.0.0.1:9", "api_version": "v1", "auth_token": "t"})
    assert isinstance(http.transport, HTTPTransport)
    with pytest.raises(NetworkError):
        await http.ping()
    await http.close()


def handler_client(status: int, body: bytes) -> Client:
    def handler(request: httpx.Request) -> httpx.Response:
        assert request.headers["authorization"] == "Bearer t"
        return httpx.Response(status, content=body)

    mock = httpx.AsyncClient(base_url="http://test", transport=httpx.MockTransport(handler))
    return Client(transport=HTTPTransport("http://test", auth_token="t", client=mock))


@pytest.mark.parametrize(
    ("status", "body", "error"),
    [
        (401, b'{"error":"no","code":"UNAUTHORIZED","details":{}}', AuthenticationError),
        (403, b"", PermissionDeniedError),
        (
            412,
            b'{"error":"p","code":"PRECONDITION_FAILED","details":{"index":0}}',
            PreconditionFailedError,
        ),
        (500, b"oops", ServerError),
        (502, b"", ServerError),
    ],
)
async def test_error_responses_map_to_the_error_tree(status: int, body: bytes, error: type) -> None:
    client = handler_client(status, body)
    with pytest.raises(error) as failure:
        await client.commit_events([{"source": "s", "subject": "/s", "type": "t", "data": {}}])
    assert failure.value.status == status or error is ServerError
    if error is PreconditionFailedError:
        assert failure.value.details == {"index": 0}
    await client.close()


def test_every_status_maps_to_a_genesisdb_error() -> None:
    for status in range(400, 600):
        assert issubclass(error_for(status, None), GenesisDBError)


async def test_heartbeats_are_skipped_and_options_become_camel_case() -> None:
    seen: list[bytes] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request.content)
        event = b'{"source":"s","subject":"/a","type":"t","specversion":"1.0","id":"1","data":{}}'
        return httpx.Response(
            200, content=b'{"payload":""}\n' + event + b"\n" + b'{"payload":""}\n'
        )

    mock = httpx.AsyncClient(base_url="http://test", transport=httpx.MockTransport(handler))
    client = Client(transport=HTTPTransport("http://test", client=mock))
    received = [
        e
        async for e in client.observe_events(
            "/a", {"lower_bound": "x", "latest_by_event_type": "t"}
        )
    ]
    assert [e["id"] for e in received] == ["1"]
    assert b'"lowerBound":"x"' in seen[0] and b'"latestByEventType":"t"' in seen[0]
    await client.close()


def test_cloudevents_support_item_and_data_access() -> None:
    stored = {"source": "s", "subject": "/a", "type": "t", "specversion": "1.0", "id": "i",
              "time": "2026-01-01T00:00:00.000000000Z", "datacontenttype": "application/json",
              "predecessorhash": "0" * 64, "data": {"k": [1]}, "hash": "f" * 64}  # fmt: skip
    event = to_cloudevent(stored)
    assert isinstance(event, CloudEvent)
    assert event["data"] == {"k": [1]} and event.data == {"k": [1]} and event["id"] == "i"
    assert to_dict(event) == stored


def _subclasses(cls: type) -> list[type]:
    found = [cls]
    for sub in cls.__subclasses__():
        found.extend(_subclasses(sub))
    return found


def test_every_storage_error_maps_to_a_genesisdb_error() -> None:
    for cls in _subclasses(ledgerstore.LedgerStoreError):
        error = storage_error(cls("boom") if cls is not ledgerstore.UnknownLogError else cls("x"))
        assert isinstance(error, GenesisDBError)
        assert 400 <= error.status < 600
        assert "boom" not in error.message  # driver messages may quote data


async def test_a_callers_client_is_left_as_it_was() -> None:
    """The token goes on each request (an ``httpx.Auth``), never into the caller's client."""
    seen: list[str | None] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request.headers.get("authorization"))
        return httpx.Response(200, content=b"pong")

    mock = httpx.AsyncClient(base_url="http://test", transport=httpx.MockTransport(handler))
    before = dict(mock.headers)
    client = Client(transport=HTTPTransport("http://test", auth_token="t", client=mock))
    assert await client.ping() == "pong"
    assert seen == ["Bearer t"]
    assert dict(mock.headers) == before and mock.auth is None
    await mock.get("/elsewhere")  # the caller's own requests carry no token of ours
    assert seen[-1] is None
    await client.close()
    assert not mock.is_closed  # a caller's client is the caller's to close
    await mock.aclose()

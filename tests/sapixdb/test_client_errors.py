"""The client's one error boundary, tested through a mock transport."""

from __future__ import annotations

import inspect
from collections.abc import Callable
from typing import Any

import httpx
import pytest

import ledgerstore
from sapixdb import (
    SapixClient,
    SapixError,
    SapixNetworkError,
    SapixNotFoundError,
    SapixRateLimitError,
)
from sapixdb.client import ERROR_MAP, map_error
from sapixdb.transports.base import Request, Response, Transport


class MockTransport(Transport):
    """Answers every request with ``handler(request)``."""

    def __init__(self, handler: Callable[[Request], Response]) -> None:
        self.handler = handler
        self.requests: list[Request] = []

    def handle(self, request: Request) -> Response:
        self.requests.append(request)
        return self.handler(request)

    def close(self) -> None:
        pass


def _exception_types(module: Any, base: type[BaseException]) -> list[type[BaseException]]:
    return [obj for _, obj in inspect.getmembers(module, inspect.isclass) if issubclass(obj, base)]


@pytest.mark.parametrize(
    "exc_type",
    _exception_types(httpx, Exception)
    + _exception_types(ledgerstore, ledgerstore.LedgerStoreError),
)
def test_every_lower_level_exception_has_a_mapping(exc_type: type[BaseException]) -> None:
    assert exc_type in ERROR_MAP, f"{exc_type.__module__}.{exc_type.__name__} has no mapping"


def test_connection_errors_become_network_errors() -> None:
    cause = httpx.ConnectError("refused")
    mapped = map_error(cause)
    assert isinstance(mapped, SapixNetworkError) and mapped.cause is cause
    assert isinstance(map_error(ledgerstore.OperationalError("busy")), SapixNetworkError)


def test_unreachable_server_raises_network_error() -> None:
    from tests.sapixdb.server_process import free_port

    db = SapixClient(url=f"http://127.0.0.1:{free_port()}", timeout=2)
    with pytest.raises(SapixNetworkError) as caught:
        db.collection("x").write({"a": 1})
    assert isinstance(caught.value.cause, httpx.ConnectError)
    assert db.ping() is False


def _answer(status: int, body: Any) -> MockTransport:
    return MockTransport(lambda request: Response(status, body))


def test_error_statuses_map_to_the_error_tree() -> None:
    triple = {"error": "nope", "message": "nope", "code": "NOT_FOUND"}
    with pytest.raises(SapixNotFoundError) as missing:
        SapixClient(transport=_answer(404, triple)).collection("c").get("abc")
    assert missing.value.record_id == "abc" and missing.value.status == 404

    limited = {"error": "x", "message": "rate limit of 25 req/s exceeded", "code": "RATE_LIMITED"}
    with pytest.raises(SapixRateLimitError) as rate:
        SapixClient(transport=_answer(429, limited)).collection("c").write({})
    assert rate.value.rps_limit == 25

    legacy_only = {"error": "old style message"}  # older servers send only `error`
    with pytest.raises(SapixError) as other:
        SapixClient(transport=_answer(500, legacy_only)).collection("c").write({})
    assert (other.value.status, other.value.message) == (500, "old style message")


def test_find_one_returns_none_and_filters_go_on_the_wire() -> None:
    transport = _answer(200, {"records": []})
    db = SapixClient(transport=transport)
    assert db.collection("c").find_one({"a": 1, "b": "x"}) is None
    body = transport.requests[0].args["body"]
    assert body["filter"] == [
        {"field": "a", "op": "eq", "value": 1},
        {"field": "b", "op": "eq", "value": "x"},
    ]


def test_as_of_reapplies_equality_filters_locally() -> None:
    records = [
        {"record_id": "1", "content_hash": "a", "payload": {"k": 1}, "timestamp_hlc": 1},
        {"record_id": "2", "content_hash": "b", "payload": {"k": 2}, "timestamp_hlc": 2},
    ]
    db = SapixClient(transport=_answer(200, {"records": records}))
    found = db.collection("c").as_of(10).find({"k": 2})
    assert [r.id for r in found] == ["2"]


def test_client_needs_exactly_one_target() -> None:
    with pytest.raises(SapixError):
        SapixClient()
    with pytest.raises(SapixError):
        SapixClient(url="ftp://example")

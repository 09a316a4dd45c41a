"""genesisdb.chain hashes with ledgerstore.jcs: the reference rfc8785 bytes, and errors that
never quote the (possibly personal) value."""

from __future__ import annotations

import hashlib
import math
from typing import Any

import pytest
import rfc8785

from genesisdb import InvalidEventError, chain

DATA = [
    {"amount": 12.5, "weight": 1.0, "discount": -0.0, "count": 3, "note": "Café ☕"},
    {"tiny": 1e-7, "huge": 1e21, "big": 2.0**60, "limit": 2**53 - 1},
    {"\U0001f600": "astral key", "\ue000": "private use key", "nested": [[1.0, {"x": None}]]},
    [True, False, None, "", 0.1, 0.30000000000000004, 1e-6],
]


def event(data: Any) -> dict[str, Any]:
    return {
        "source": "io.test",
        "subject": "/orders/1",
        "type": "io.test.placed",
        "specversion": "1.0",
        "id": "0190c3a6-0000-7000-8000-000000000000",
        "time": "2025-01-01T00:00:00.000000000Z",
        "datacontenttype": "application/json",
        "predecessorhash": chain.GENESIS,
        "data": data,
    }


@pytest.mark.parametrize("data", DATA)
def test_hashes_cover_the_rfc8785_bytes(data: Any) -> None:
    assert chain.canonical(data) == rfc8785.dumps(data)
    body = event(data)
    expected = hashlib.sha256(rfc8785.dumps(body)).hexdigest()
    assert chain.event_hash(body) == expected
    assert chain.event_hash({**body, "hash": "f" * 64}) == expected
    salt = bytes(range(16))
    assert chain.salted_digest(salt, data) == hashlib.sha256(salt + rfc8785.dumps(data)).hexdigest()


@pytest.mark.parametrize(
    "data",
    [
        {"email": "alice@example.com", "id": 2**60},
        {"email": "alice@example.com", "score": math.nan},
        {"email": "alice@example.com", "name": "alice\ud800"},
        {"email": "alice@example.com", "when": object()},
    ],
)
def test_errors_never_quote_the_value(data: Any) -> None:
    for encode in (chain.canonical, lambda value: chain.event_hash(event(value))):
        with pytest.raises(InvalidEventError) as caught:
            encode(data)
        message = str(caught.value)
        assert "not canonical JSON" in message
        assert "alice" not in message and str(2**60) not in message
        assert caught.value.__cause__ is None and caught.value.__suppress_context__

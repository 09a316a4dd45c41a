"""The sync and async clients are twins: the same methods with the same parameters."""

from __future__ import annotations

import inspect

import pytest

from sapixdb import (
    AsOfQuery,
    AsyncAsOfQuery,
    AsyncCollection,
    AsyncGraph,
    AsyncSapixClient,
    Collection,
    Graph,
    SapixClient,
)

PAIRS = [
    (SapixClient, AsyncSapixClient),
    (Collection, AsyncCollection),
    (AsOfQuery, AsyncAsOfQuery),
    (Graph, AsyncGraph),
]
ASYNC_ONLY = {"aclose"}  # the async client also offers close() as a coroutine
NOT_AWAITED = {"collection", "as_of", "subscribe_agent", "subscribe_global"}


def public(cls: type) -> dict[str, inspect.Signature]:
    return {
        name: inspect.signature(member)
        for name, member in inspect.getmembers(cls, inspect.isfunction)
        if not name.startswith("_")
    }


@pytest.mark.parametrize(("sync", "async_"), PAIRS, ids=[p[0].__name__ for p in PAIRS])
def test_same_methods_and_parameters(sync: type, async_: type) -> None:
    sync_api, async_api = public(sync), public(async_)
    assert set(async_api) - ASYNC_ONLY == set(sync_api)
    for name, signature in sync_api.items():
        if name == "__init__":
            continue
        assert list(signature.parameters) == list(async_api[name].parameters), name


@pytest.mark.parametrize(("sync", "async_"), PAIRS, ids=[p[0].__name__ for p in PAIRS])
def test_every_async_method_is_awaitable(sync: type, async_: type) -> None:
    for name, member in inspect.getmembers(async_, inspect.isfunction):
        if name.startswith("_") or name in NOT_AWAITED:
            continue
        assert inspect.iscoroutinefunction(member), name
    if async_ is AsyncSapixClient:  # subscriptions are async generators, not coroutines
        assert inspect.isasyncgenfunction(AsyncSapixClient._stream)

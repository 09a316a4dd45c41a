"""``Client``: the Genesis DB seed API, over an embedded or an HTTP transport.

The client owns all policy — configuration, snake_case → camelCase options, CloudEvent
conversion, skipping heartbeats — and calls its transport from one place, :meth:`_run`.
"""

from __future__ import annotations

import functools
import re
from collections.abc import AsyncIterator, Mapping, Sequence
from types import TracebackType
from typing import Any, Self

from genesisdb.config import ClientConfig, resolve_config
from genesisdb.events import CloudEvents, to_cloudevent
from genesisdb.exceptions import ServerError
from genesisdb.transports.base import AsyncTransport
from genesisdb.transports.embedded import EmbeddedTransport
from genesisdb.transports.http import HTTPTransport
from genesisdb.wire import is_heartbeat

__all__ = ["Client"]

_SNAKE = re.compile(r"_([a-z0-9])")


@functools.lru_cache(maxsize=1024)  # option names repeat on every event
def _camel(key: str) -> str:
    return _SNAKE.sub(lambda match: match.group(1).upper(), key)


def _wire_options(options: Mapping[str, Any] | None) -> dict[str, Any] | None:
    """snake_case option names to the wire's camelCase (camelCase passes through)."""
    if options is None:
        return None
    if not isinstance(options, Mapping):
        raise TypeError("options must be a mapping")
    return {_camel(str(key)): value for key, value in options.items()}


def _wire_event(event: Mapping[str, Any]) -> dict[str, Any]:
    if not isinstance(event, Mapping):
        raise TypeError("each event must be a mapping")
    wire = dict(event)
    if "options" in wire and isinstance(wire["options"], Mapping):
        wire["options"] = _wire_options(wire["options"])
    return wire


class Client:
    """A Genesis DB client (the seed API). All I/O methods are coroutines.

    ``config`` keys: ``api_url`` (``http(s)://…`` for a server; ``sqlite:///…``,
    ``postgresql://…`` or a path for the embedded engine), ``api_version`` and ``auth_token``
    (both needed for a server only); missing keys come from ``GENESISDB_API_URL``,
    ``GENESISDB_API_VERSION`` and ``GENESISDB_AUTH_TOKEN``. ``transport`` overrides the choice.
    Use as ``async with Client(...) as client:`` or call :meth:`close`.
    """

    def __init__(
        self, config: Mapping[str, Any] | None = None, *, transport: AsyncTransport | None = None
    ) -> None:
        self.config: ClientConfig | None = None
        if transport is None:
            self.config = resolve_config(config)
            if self.config.embedded:
                transport = EmbeddedTransport(self.config.api_url)
            else:
                transport = HTTPTransport(
                    self.config.api_url,
                    api_version=self.config.api_version,
                    auth_token=self.config.auth_token,
                )
        self.transport = transport

    # --- the one place the transport is called ---------------------------------------------

    async def _run(self, operation: str, body: Any = None) -> Any:
        result: Any = None
        async for value in self.transport.handle(operation, body):
            result = value
        return result

    async def _rows(self, operation: str, body: Any) -> list[Any]:
        return [row async for row in self.transport.handle(operation, body)]

    # --- the seed API ----------------------------------------------------------------------

    async def stream_events(
        self, subject: str, options: Mapping[str, Any] | None = None
    ) -> list[Any]:
        """The events at ``subject`` and below, oldest first, as CloudEvents.

        Options: ``lower_bound``/``upper_bound`` (event ids, exclusive unless
        ``include_lower_bound_event``/``include_upper_bound_event``), ``latest_by_event_type``.
        """
        body = {"subject": subject, "options": _wire_options(options) or {}}
        return [to_cloudevent(event) for event in await self._rows("stream", body)]

    async def commit_events(
        self,
        events: Sequence[Mapping[str, Any]],
        preconditions: Sequence[Mapping[str, Any]] | None = None,
    ) -> Sequence[Any]:
        """Commit ``events`` atomically; returns them as stored (CloudEvents, each built when
        first looked at).

        Raises PreconditionFailedError (with the server's ``details``) when a precondition
        does not hold; nothing is written then.
        """
        body: dict[str, Any] = {"events": [_wire_event(event) for event in events]}
        if preconditions:
            body["preconditions"] = [dict(item) for item in preconditions]
        response = await self._run("commit", body)
        return CloudEvents(_field(response, "events", list))

    async def erase_data(self, subject: str) -> int:
        """Erase the data stored as reference at ``subject`` and below; returns the count."""
        response = await self._run("erase", {"subject": subject})
        return int(_field(response, "erased", int))

    async def observe_events(
        self, subject: str, options: Mapping[str, Any] | None = None
    ) -> AsyncIterator[Any]:
        """Yield matching events as they are committed (after a replay from ``lower_bound``)."""
        body = {"subject": subject, "options": _wire_options(options) or {}}
        async for value in self.transport.handle("observe", body):
            if not is_heartbeat(value):
                yield to_cloudevent(value)

    async def iter_events(
        self, subject: str, options: Mapping[str, Any] | None = None
    ) -> AsyncIterator[Any]:
        """Like :meth:`stream_events`, but yields events as they arrive (no list in memory)."""
        body = {"subject": subject, "options": _wire_options(options) or {}}
        async for value in self.transport.handle("stream", body):
            yield to_cloudevent(value)

    async def iter_query(self, query: str) -> AsyncIterator[Any]:
        """Like :meth:`q`, but yields rows as they arrive (no list in memory)."""
        async for row in self.transport.handle("query", {"query": query}):
            yield row

    async def query_events(self, query: str) -> list[Any]:
        """The rows of a GDBQL query."""
        return await self._rows("query", {"query": query})

    async def q(self, query: str) -> list[Any]:
        """The rows of a GDBQL query (same as :meth:`query_events`)."""
        return await self.query_events(query)

    async def ping(self) -> str:
        """``"pong"`` when the server (or the embedded store) answers."""
        return str(await self._run("ping"))

    async def audit(self) -> dict[str, Any]:
        """Recompute the hash chain: ``{"valid", "events", "firstInvalid", "errors"}``."""
        return dict(_field({"report": await self._run("audit")}, "report", dict))

    # --- beyond the seed: the rest of the wire protocol ------------------------------------

    async def status(self) -> dict[str, Any]:
        """Engine, system, license and event counts."""
        return dict(await self._run("status"))

    async def subjects(self) -> list[str]:
        """Every subject with an event, sorted."""
        return list(await self._run("subjects"))

    async def types(self) -> list[str]:
        """Every committed event type, sorted."""
        return list(await self._run("types"))

    async def register_schema(self, event_type: str, schema: Mapping[str, Any]) -> dict[str, Any]:
        """Validate future commits of ``event_type`` against ``schema`` (422 on violation)."""
        return dict(await self._run("register_schema", {"type": event_type, "schema": schema}))

    async def get_schema(self, event_type: str) -> dict[str, Any]:
        """The schema registered for ``event_type`` (NotFoundError when none)."""
        return dict(await self._run("get_schema", {"type": event_type}))

    async def backup(self) -> list[dict[str, Any]]:
        """Every stored event (with what restore needs for data stored as reference)."""
        return list(await self._run("backup"))

    async def restore(self, events: Sequence[Mapping[str, Any]]) -> int:
        """Load a backup into an empty store (the chain is re-verified); returns the count."""
        response = await self._run("restore", [dict(event) for event in events])
        return int(_field(response, "restored", int))

    # --- lifecycle -------------------------------------------------------------------------

    async def close(self) -> None:
        """Close the connection pool (or the embedded store)."""
        await self.transport.aclose()

    aclose = close

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        await self.close()


def _field(response: Any, name: str, kind: type) -> Any:
    if not isinstance(response, dict) or not isinstance(response.get(name), kind):
        raise ServerError(f"the response lacks {name!r}")
    return response[name]

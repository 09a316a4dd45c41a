"""The transport interface: one request-style method plus ``close`` (httpx's shape).

A :class:`Request` names an operation of :class:`sapixdb.engine.SapixEngine` (``write``,
``get``, ``query``, ``stream``, …) and its arguments. A transport answers with a
:class:`Response`: the wire status and JSON body (an error body is the ``{error, message,
code}`` triple), or for ``stream`` an iterator of event dictionaries. Transports never raise
for an error status — the client turns statuses into exceptions — and let lower-level
exceptions propagate for the client to map.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import AsyncIterator, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

__all__ = ["AsyncResponse", "AsyncTransport", "Request", "Response", "Transport", "error_body"]


@dataclass(frozen=True, slots=True)
class Request:
    """An engine operation and its keyword arguments."""

    operation: str
    args: Mapping[str, Any] = field(default_factory=dict)


@dataclass(slots=True)
class Response:
    """A status and a JSON body (or raw bytes for blobs), or a stream of events."""

    status: int
    body: Any = None
    events: Iterator[dict[str, Any]] | None = None


@dataclass(slots=True)
class AsyncResponse:
    """The async twin of :class:`Response`."""

    status: int
    body: Any = None
    events: AsyncIterator[dict[str, Any]] | None = None


def error_body(message: str, code: str) -> dict[str, str]:
    """The error triple every non-2xx answer carries."""
    return {"error": message, "message": message, "code": code}


class Transport(ABC):
    """Runs requests for a :class:`sapixdb.SapixClient`."""

    #: Whether ``write_batch`` is one operation (else the client writes record by record).
    supports_batch = False

    @abstractmethod
    def handle(self, request: Request) -> Response:
        """Run one request."""

    @abstractmethod
    def close(self) -> None:
        """Release connections or the store."""


class AsyncTransport(ABC):
    """Runs requests for a :class:`sapixdb.AsyncSapixClient`."""

    supports_batch = False

    @abstractmethod
    async def handle(self, request: Request) -> AsyncResponse:
        """Run one request."""

    @abstractmethod
    async def aclose(self) -> None:
        """Release connections or the store."""

"""The transport interface: one method that runs an operation, plus ``aclose``.

An operation is a name from :data:`genesisdb.wire.ROUTES` and its JSON request body. The
transport yields the wire response's JSON values: one value for a JSON response (the text for
``ping``/``metrics``), one per line for NDJSON (observe heartbeats included — the client skips
them). Errors are :mod:`genesisdb.exceptions` errors whatever the transport.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import AsyncIterator
from typing import Any

__all__ = ["AsyncTransport"]


class AsyncTransport(ABC):
    """Runs operations for a client."""

    @abstractmethod
    def handle(self, operation: str, body: Any = None) -> AsyncIterator[Any]:
        """Run ``operation`` with ``body``; yields the response's JSON values."""

    @abstractmethod
    async def aclose(self) -> None:
        """Release connections or the store."""

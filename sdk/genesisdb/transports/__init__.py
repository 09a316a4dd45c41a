"""Transports: how a :class:`genesisdb.Client` reaches the engine (in-process or over HTTP)."""

from genesisdb.transports.base import AsyncTransport
from genesisdb.transports.embedded import EmbeddedTransport
from genesisdb.transports.http import HTTPTransport

__all__ = ["AsyncTransport", "EmbeddedTransport", "HTTPTransport"]

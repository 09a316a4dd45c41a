"""Transports: one request method plus close; the embedded engine or HTTP."""

from sapixdb.transports.base import AsyncResponse, AsyncTransport, Request, Response, Transport
from sapixdb.transports.embedded import AsyncEmbeddedTransport, EmbeddedTransport
from sapixdb.transports.http import AsyncHTTPTransport, HTTPTransport

__all__ = [
    "AsyncEmbeddedTransport",
    "AsyncHTTPTransport",
    "AsyncResponse",
    "AsyncTransport",
    "EmbeddedTransport",
    "HTTPTransport",
    "Request",
    "Response",
    "Transport",
]

"""The SDK's one error tree.

Every failure a client method reports is a :class:`SapixError` or a subclass, whatever the
transport: the server's ``{error, message, code}`` triple, a transport failure, or a storage
failure of the embedded engine are all mapped at one boundary in :mod:`sapixdb.client`.
"""

from __future__ import annotations

import re

__all__ = [
    "SapixError",
    "SapixNetworkError",
    "SapixNotFoundError",
    "SapixRateLimitError",
    "rate_limit_message",
]

_RATE_LIMIT = re.compile(r"rate limit of (\d+(?:\.\d+)?) req/s")


class SapixError(Exception):
    """A request failed. ``status`` is the HTTP status (or its embedded equivalent)."""

    def __init__(self, message: str, status: int | None = None, code: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.status = status
        self.code = code

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.message!r}, status={self.status}, code={self.code!r})"


class SapixNetworkError(SapixError):
    """The server or the database could not be reached; ``cause`` is the lower-level error."""

    def __init__(self, message: str, cause: BaseException | None = None) -> None:
        super().__init__(message, None, "NETWORK_ERROR")
        self.cause = cause


class SapixNotFoundError(SapixError):
    """A record (or blob) does not exist; ``record_id`` is the reference asked for."""

    def __init__(self, message: str, record_id: str | None = None) -> None:
        super().__init__(message, 404, "NOT_FOUND")
        self.record_id = record_id


class SapixRateLimitError(SapixError):
    """The API key exceeded its request rate; ``rps_limit`` is the limit the server named."""

    def __init__(self, message: str, rps_limit: float | None = None) -> None:
        super().__init__(message, 429, "RATE_LIMITED")
        self.rps_limit = rps_limit if rps_limit is not None else parse_rps_limit(message)


def parse_rps_limit(message: str) -> float | None:
    """The N of ``rate limit of N req/s`` in a server message, if present."""
    match = _RATE_LIMIT.search(message)
    if match is None:
        return None
    value = float(match.group(1))
    return int(value) if value.is_integer() else value


def rate_limit_message(rps: float) -> str:
    """The 429 message the server sends; clients parse the limit back out of it."""
    shown = int(rps) if float(rps).is_integer() else rps
    return f"rate limit of {shown} req/s exceeded for this API key"

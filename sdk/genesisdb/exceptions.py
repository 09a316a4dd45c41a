"""The one error tree of the Genesis DB SDK, shared by the engine, both transports and the server.

Every error that reaches a caller is a :class:`GenesisDBError`. Errors the server answers with
carry the HTTP ``status`` and a stable ``code``; the HTTP transport maps a response back to the
same class by its ``code`` (then by its status), so code written against the embedded transport
catches the same exceptions over HTTP. Messages never contain event data: only names, counts and
positions.
"""

from __future__ import annotations

from typing import Any, ClassVar

__all__ = [
    "AuthenticationError",
    "BadRequestError",
    "ConflictError",
    "EventTooLargeError",
    "GenesisDBError",
    "InvalidEventError",
    "NetworkError",
    "NotFoundError",
    "PermissionDeniedError",
    "PreconditionFailedError",
    "QueryBudgetError",
    "QueryError",
    "SchemaViolationError",
    "ServerBusyError",
    "ServerError",
    "StorageError",
    "TooManyQueriesError",
    "error_for",
]


class GenesisDBError(Exception):
    """Base of every error the SDK raises.

    ``code`` is stable and machine-readable; ``details`` is a JSON object with specifics
    (never personal data).
    """

    status: ClassVar[int] = 500
    default_code: ClassVar[str] = "INTERNAL_ERROR"

    def __init__(
        self, message: str, *, code: str | None = None, details: dict[str, Any] | None = None
    ) -> None:
        super().__init__(message)
        self.message = message
        self.code = code or self.default_code
        self.details: dict[str, Any] = details if details is not None else {}

    def to_body(self) -> dict[str, Any]:
        """The wire form: ``{"error", "code", "details"}``."""
        return {"error": self.message, "code": self.code, "details": self.details}


class BadRequestError(GenesisDBError):
    """The request is malformed (HTTP 400)."""

    status = 400
    default_code = "BAD_REQUEST"


class InvalidEventError(BadRequestError):
    """An event to commit lacks a field or has a field of the wrong shape (HTTP 400)."""

    default_code = "INVALID_EVENT"


class QueryError(BadRequestError):
    """A GDBQL query does not parse or means nothing (HTTP 400).

    ``details`` holds ``position``, ``line``, ``column`` and ``expected``.
    """

    default_code = "INVALID_QUERY"


class QueryBudgetError(QueryError):
    """A GDBQL query ran past the server's per-query time or work budget (HTTP 400);
    narrow it (a subject, a type, a time range) or add a LIMIT."""

    default_code = "QUERY_BUDGET_EXCEEDED"


class TooManyQueriesError(GenesisDBError):
    """This token already runs as many queries as the server allows at once (HTTP 429)."""

    status = 429
    default_code = "TOO_MANY_QUERIES"


class AuthenticationError(GenesisDBError):
    """The token is missing or unknown (HTTP 401)."""

    status = 401
    default_code = "UNAUTHORIZED"


class PermissionDeniedError(GenesisDBError):
    """The token is valid but lacks the role the operation needs (HTTP 403)."""

    status = 403
    default_code = "FORBIDDEN"


class NotFoundError(GenesisDBError):
    """The named thing (a schema, a route) does not exist (HTTP 404)."""

    status = 404
    default_code = "NOT_FOUND"


class ConflictError(GenesisDBError):
    """The store is not in a state that allows the operation, e.g. restore into data (409)."""

    status = 409
    default_code = "CONFLICT"


class PreconditionFailedError(GenesisDBError):
    """A commit precondition does not hold; nothing was written (HTTP 412).

    ``details`` names the failing precondition: ``index``, ``type`` and ``payload``.
    """

    status = 412
    default_code = "PRECONDITION_FAILED"


class EventTooLargeError(GenesisDBError):
    """An event or a request body exceeds the size limit (HTTP 413)."""

    status = 413
    default_code = "EVENT_TOO_LARGE"


class SchemaViolationError(GenesisDBError):
    """An event's data violates the schema registered for its type (HTTP 422)."""

    status = 422
    default_code = "SCHEMA_VIOLATION"


class ServerError(GenesisDBError):
    """The server failed (HTTP 5xx)."""

    status = 500
    default_code = "INTERNAL_ERROR"


class StorageError(ServerError):
    """The storage engine failed or was busy; the operation had no effect (HTTP 503)."""

    status = 503
    default_code = "STORAGE_ERROR"


class ServerBusyError(ServerError):
    """The server runs as many queries as it allows at once; retry later (HTTP 503)."""

    status = 503
    default_code = "SERVER_BUSY"


class NetworkError(GenesisDBError):
    """The server could not be reached, or the connection broke (no HTTP status)."""

    status = 0
    default_code = "NETWORK_ERROR"


_BY_CODE: dict[str, type[GenesisDBError]] = {
    cls.default_code: cls
    for cls in (
        BadRequestError,
        InvalidEventError,
        QueryError,
        QueryBudgetError,
        TooManyQueriesError,
        AuthenticationError,
        PermissionDeniedError,
        NotFoundError,
        ConflictError,
        PreconditionFailedError,
        EventTooLargeError,
        SchemaViolationError,
        StorageError,
        ServerBusyError,
    )
}
_BY_STATUS: dict[int, type[GenesisDBError]] = {
    400: BadRequestError,
    401: AuthenticationError,
    403: PermissionDeniedError,
    404: NotFoundError,
    409: ConflictError,
    412: PreconditionFailedError,
    413: EventTooLargeError,
    422: SchemaViolationError,
    429: TooManyQueriesError,
    503: StorageError,
}


def error_for(status: int, code: str | None) -> type[GenesisDBError]:
    """The most specific error class for an HTTP status and error code."""
    by_code = _BY_CODE.get(code or "")
    if by_code is not None and by_code.status == status:
        return by_code
    by_status = _BY_STATUS.get(status)
    if by_status is not None:
        return by_status
    if status >= 500:
        return ServerError
    return BadRequestError if 400 <= status < 500 else GenesisDBError

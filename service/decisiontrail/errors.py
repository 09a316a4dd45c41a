"""The service's errors and their RFC 9457 problem+json rendering, in one place.

Every error a client can see has a stable ``code``. Validation errors become 422 with the
offending fields (never their values: they may be personal data); anything unexpected becomes
a 500 problem without internals, logged with its request id.
"""

from __future__ import annotations

import logging
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from decisiontrail.ledger import failures
from genesisdb import GenesisDBError
from sapixdb import SapixError

PROBLEM_TYPE = "application/problem+json"
STREAM_RETRY_SECONDS = 5  # Retry-After when no live stream may open
log = logging.getLogger("decisiontrail")

# What every error response looks like, for the OpenAPI document.
PROBLEM_SCHEMA: dict[str, Any] = {
    "title": "Problem",
    "description": "RFC 9457 problem details with a stable code",
    "type": "object",
    "required": ["type", "title", "status", "detail", "code"],
    "properties": {
        "type": {"type": "string"},
        "title": {"type": "string"},
        "status": {"type": "integer"},
        "detail": {"type": "string"},
        "code": {"type": "string"},
        "instance": {"type": "string"},
        "errors": {
            "type": "array",
            "items": {
                "type": "object",
                "properties": {
                    "loc": {"type": "array", "items": {"type": "string"}},
                    "msg": {"type": "string"},
                },
            },
        },
    },
}


class ServiceError(Exception):
    """A domain error with its HTTP status and stable code."""

    status = 400
    code = "bad_request"
    title = "Bad request"

    def __init__(self, detail: str, *, headers: dict[str, str] | None = None, **extra: Any):
        super().__init__(detail)
        self.detail = detail
        self.headers = headers or {}
        self.extra = extra


class Unauthorized(ServiceError):
    status, code, title = 401, "unauthorized", "Missing or invalid API key"


class Forbidden(ServiceError):
    status, code, title = 403, "forbidden", "The API key lacks the scope"


class NotFound(ServiceError):
    status, code, title = 404, "not_found", "Not found"


class Conflict(ServiceError):
    status, code, title = 409, "conflict", "Conflict"


class LegalHold(Conflict):
    code, title = "legal_hold", "A legal hold prevents this"


class UntrustedCheckpoint(Conflict):
    code, title = "untrusted_checkpoint", "The stored checkpoint does not verify"


class BadIdempotencyKey(ServiceError):
    status, code, title = 400, "bad_idempotency_key", "The Idempotency-Key header is not valid"


class IdempotencyKeyInUse(Conflict):
    code, title = "idempotency_key_in_flight", "A request with this Idempotency-Key is running"


class IdempotencyKeyReused(ServiceError):
    status, code, title = 422, "idempotency_key_reused", "Idempotency-Key reused with another body"


class PayloadTooLarge(ServiceError):
    status, code, title = 413, "payload_too_large", "Request body too large"


class Unprocessable(ServiceError):
    status, code, title = 422, "validation_error", "The request is not valid"


class RateLimited(ServiceError):
    status, code, title = 429, "rate_limited", "Too many requests"


class StoreUnavailable(ServiceError):
    status, code, title = 503, "store_unavailable", "Storage is unavailable; retry"


class TooManyStreams(ServiceError):
    status, code, title = 503, "too_many_streams", "Too many live streams are open; retry"

    def __init__(self, detail: str, **extra: Any) -> None:
        super().__init__(detail, headers={"Retry-After": str(STREAM_RETRY_SECONDS)}, **extra)


class OutcomeUnknown(StoreUnavailable):
    code, title = "outcome_unknown", "Whether the request was recorded is not known; retry it"


class StoreCorrupted(ServiceError):
    status, code, title = 500, "store_corrupted", "The store holds data the service never wrote"


# The ledger's and the SDKs' exceptions, as the client sees them (the first match wins).
_FAILURES: tuple[tuple[type[Exception], type[ServiceError]], ...] = (
    (failures.TooManyStreamsError, TooManyStreams),
    (failures.IdempotencyKeyInFlightError, IdempotencyKeyInUse),
    (failures.IdempotencyKeyReusedError, IdempotencyKeyReused),
    (failures.LegalHoldError, LegalHold),
    (failures.InvalidTreeSizeError, Unprocessable),
    (failures.StoreCorruptedError, StoreCorrupted),
    (failures.CommitOutcomeUnknownError, OutcomeUnknown),
    (failures.LedgerError, StoreUnavailable),
    (GenesisDBError, StoreUnavailable),
    (SapixError, StoreUnavailable),
)


def service_error(exc: Exception) -> ServiceError | None:
    """The client-facing error for a ledger or store exception (None: not one of those)."""
    for kind, mapped in _FAILURES:
        if isinstance(exc, kind):
            if mapped is StoreUnavailable and not isinstance(exc, failures.LedgerError):
                return StoreUnavailable(f"the store did not answer ({type(exc).__name__}); retry")
            return mapped(str(exc))
    return None


def problem(
    status: int,
    code: str,
    title: str,
    detail: str,
    *,
    instance: str | None = None,
    headers: dict[str, str] | None = None,
    **extra: Any,
) -> JSONResponse:
    body = {
        "type": f"https://decisiontrail.dev/problems/{code}",
        "title": title,
        "status": status,
        "detail": detail,
        "code": code,
        **extra,
    }
    if instance:
        body["instance"] = instance
    return JSONResponse(body, status_code=status, media_type=PROBLEM_TYPE, headers=headers)


def _validation_errors(exc: RequestValidationError) -> list[dict[str, Any]]:
    """Where and why, without the input values (they may hold personal data)."""
    return [
        {"loc": [str(part) for part in error.get("loc", ())], "msg": str(error.get("msg", ""))}
        for error in exc.errors()
    ]


def _document_problems(app: FastAPI) -> None:
    """Make the OpenAPI document say what the handlers below send: every error (422 included)
    is ``application/problem+json``, not FastAPI's default ``HTTPValidationError`` JSON."""
    generate = app.openapi

    def openapi() -> dict[str, Any]:
        document = app.openapi_schema
        if document is None:
            document = generate()  # FastAPI caches it in app.openapi_schema: amend it in place
            schemas = document.setdefault("components", {}).setdefault("schemas", {})
            schemas["Problem"] = PROBLEM_SCHEMA
            content = {PROBLEM_TYPE: {"schema": {"$ref": "#/components/schemas/Problem"}}}
            for operations in document.get("paths", {}).values():
                for operation in operations.values():
                    responses = operation.setdefault("responses", {})
                    if "422" in responses:
                        responses["422"] = {"description": "Invalid request", "content": content}
                    responses["default"] = {"description": "An error", "content": content}
        return document

    app.openapi = openapi  # type: ignore[method-assign]


def _instance(request: Request) -> str:
    """The route template the request matched (``/v1/data-subjects/{subject_id}``), not its
    path: a path can hold a data subject's id, which no error message may carry."""
    route = request.scope.get("route")
    template = getattr(route, "path", None)
    return template if isinstance(template, str) else request.url.path


def install_problem_handlers(app: FastAPI) -> None:
    _document_problems(app)

    @app.exception_handler(ServiceError)
    async def _service_error(request: Request, exc: ServiceError) -> JSONResponse:
        return problem(
            exc.status, exc.code, exc.title, exc.detail, instance=_instance(request),
            headers=exc.headers, **exc.extra,
        )  # fmt: skip

    @app.exception_handler(RequestValidationError)
    async def _validation(request: Request, exc: RequestValidationError) -> JSONResponse:
        return problem(
            422, "validation_error", "The request is not valid",
            "see errors for the fields that are wrong", instance=_instance(request),
            errors=_validation_errors(exc),
        )  # fmt: skip

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        code = {404: "not_found", 405: "method_not_allowed"}.get(exc.status_code, "http_error")
        return problem(
            exc.status_code, code, str(exc.detail), str(exc.detail), instance=_instance(request),
            headers=dict(exc.headers or {}),
        )  # fmt: skip

    async def _store_failure(request: Request, exc: Exception) -> JSONResponse:
        mapped = service_error(exc)
        assert mapped is not None  # registered only for the classes service_error maps
        if isinstance(mapped, StoreCorrupted):  # alerted: an operator must look at it
            log.error("store corruption: %s", exc, extra={"path": request.url.path})
        elif isinstance(mapped, StoreUnavailable):
            log.warning("store unavailable (%s)", type(exc).__name__)
        return await _service_error(request, mapped)

    for failure in (failures.LedgerError, GenesisDBError, SapixError):
        app.add_exception_handler(failure, _store_failure)

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, exc: Exception) -> JSONResponse:
        log.exception("unexpected error", extra={"path": request.url.path})
        return problem(
            500, "internal_error", "Internal error", "an unexpected error occurred",
            instance=_instance(request),
        )  # fmt: skip

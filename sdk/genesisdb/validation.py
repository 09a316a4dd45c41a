"""Validation of request values: what the engine accepts, and the 400s it answers otherwise.

Messages name the offending field and the rule, never the value (it may be personal data).
"""

from __future__ import annotations

from typing import Any

from genesisdb.exceptions import BadRequestError, InvalidEventError

__all__ = ["MAX_TEXT", "json_object", "not_canonical", "subject_path", "text"]

MAX_TEXT = 4096  # ledgerstore's limit on metadata columns


def text(
    value: object,
    what: str,
    *,
    limit: int = MAX_TEXT,
    error: type[BadRequestError] = BadRequestError,
) -> str:
    if not isinstance(value, str) or not value:
        raise error(f"{what} must be a non-empty string")
    if len(value) > limit or "\x00" in value:
        raise error(f"{what} must be at most {limit} characters without NUL")
    try:
        value.encode()
    except UnicodeEncodeError:
        raise error(f"{what} is not valid Unicode text") from None
    return value


def subject_path(
    value: object, what: str = "subject", *, error: type[BadRequestError] = BadRequestError
) -> str:
    subject = text(value, what, error=error)
    if not subject.startswith("/"):
        raise error(f"{what} must start with '/'")
    return subject


def json_object(value: object, what: str) -> dict[str, Any]:
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise BadRequestError(f"{what} must be a JSON object")
    return value


def not_canonical(index: int) -> InvalidEventError:
    return InvalidEventError(
        f"events[{index}].data is not canonical JSON: numbers must be finite and integers "
        "within ±(2**53 − 1), strings valid Unicode"
    )

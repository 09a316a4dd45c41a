"""What the console's pages take in and how they fail: form and query fields, the CSRF
check, and a service error rendered as a page with its status."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import Annotated

from fastapi import Form, Query, Request, Response

from decisiontrail.console.auth import ConsoleUser
from decisiontrail.console.rendering import render
from decisiontrail.console.sessions import csrf_matches
from decisiontrail.errors import Forbidden, ServiceError, Unprocessable

Text = Annotated[str, Form(max_length=200)]
OptionalQuery = Annotated[str | None, Query(max_length=200)]


async def guarded(
    request: Request, user: ConsoleUser | None, build: Callable[[], Awaitable[Response]]
) -> Response:
    """The page, or the service's error rendered as a page with its status."""
    try:
        return await build()
    except ServiceError as exc:
        context = {"user": user, "status": exc.status, "title": exc.title, "detail": exc.detail}
        return render(request, "error.html", context, status_code=exc.status)


def check_csrf(user: ConsoleUser, token: str | None) -> None:
    if not csrf_matches(user.session, token):
        raise Forbidden("the form is stale or was not sent by this console; reload the page")


def filled_in(**given: str | None) -> dict[str, str]:
    """The fields that were filled in, trimmed."""
    return {name: value.strip() for name, value in given.items() if value and value.strip()}


def parse_time(value: str | None, name: str) -> datetime | None:
    """A date and time from a form (a naive one means UTC)."""
    if not value:
        return None
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        raise Unprocessable(f"{name} is not a date and time (like 2026-12-01T09:00)") from None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)

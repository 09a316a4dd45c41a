"""One ASGI middleware that refuses request bodies over a size limit, for every server here.

The SapixDB and Genesis DB compatible servers (and the DecisionTrail service) each answer
errors in their own format, so the middleware decides *when* to refuse and the app passes
*how*: ``reject(status)`` returns the ASGI response to send (413 for a body over the limit,
400 for a ``Content-Length`` that is not a number). A body with a valid ``Content-Length``
within the limit passes through untouched (the HTTP server delivers no more than it
declares); a body without one (chunked) is read as it arrives, refused once past the limit,
and otherwise replayed to the app whole, so a route never sees a truncated body.

Starlette has no body-size limit of its own, hence this module.
"""

from __future__ import annotations

from collections.abc import Callable

from starlette.types import ASGIApp, Message, Receive, Scope, Send

__all__ = ["BodyLimit", "Reject"]

#: Builds the response refusing a request: called with 413 (too large) or 400 (bad length).
Reject = Callable[[int], ASGIApp]


class BodyLimit:
    """Refuse request bodies over ``limit`` bytes with the response ``reject`` builds."""

    def __init__(self, app: ASGIApp, *, limit: int, reject: Reject) -> None:
        self.app = app
        self.limit = limit
        self.reject = reject

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        for name, value in scope.get("headers", []):
            if name == b"content-length":
                if not value.isdigit():
                    await self.reject(400)(scope, receive, send)
                elif int(value) > self.limit:
                    await self.reject(413)(scope, receive, send)
                else:
                    await self.app(scope, receive, send)
                return
        chunks: list[bytes] = []
        size = 0
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                return
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > self.limit:
                await self.reject(413)(scope, receive, send)
                return
            chunks.append(chunk)
            if not message.get("more_body", False):
                break
        buffered: list[Message] = [{"type": "http.request", "body": b"".join(chunks)}]

        async def replay() -> Message:
            return buffered.pop() if buffered else await receive()

        await self.app(scope, replay, send)

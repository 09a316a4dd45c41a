"""The HTTP transport: one pooled ``httpx.AsyncClient`` to a Genesis DB server.

Errors map at this one boundary: connection and protocol failures become
:class:`~genesisdb.exceptions.NetworkError`; an error response becomes the class its ``code``
(else its status) names, carrying the server's message and ``details``.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Generator
from typing import Any

import httpx
import orjson

from genesisdb.exceptions import GenesisDBError, NetworkError, ServerError, error_for
from genesisdb.transports.base import AsyncTransport
from genesisdb.wire import ROUTES

__all__ = ["BearerAuth", "HTTPTransport"]

USER_AGENT = "genesisdb-sdk (decisiontrail)"
_TEXT_OPERATIONS = ("ping", "metrics")


class BearerAuth(httpx.Auth):
    """``Authorization: Bearer <token>`` on each request, leaving the client untouched."""

    def __init__(self, token: str) -> None:
        self._header = f"Bearer {token}"

    def auth_flow(self, request: httpx.Request) -> Generator[httpx.Request, httpx.Response, None]:
        request.headers["Authorization"] = self._header
        yield request


class HTTPTransport(AsyncTransport):
    """Talks to ``{api_url}/api/{api_version}/…`` with a bearer token.

    ``observe_read_timeout`` bounds the silence tolerated on an observation (the server sends
    a heartbeat every ~10 s, so the default of 60 s means the server is gone). A ``client``
    passed in stays the caller's: the token and user agent go on each request, not into it.
    """

    def __init__(
        self,
        api_url: str,
        *,
        api_version: str = "v1",
        auth_token: str | None = None,
        client: httpx.AsyncClient | None = None,
        timeout: float = 30.0,
        observe_read_timeout: float = 60.0,
    ) -> None:
        self._auth: httpx.Auth | None = BearerAuth(auth_token) if auth_token else None
        self._prefix = f"/api/{api_version}"
        self._owns_client = client is None
        self._client = client or httpx.AsyncClient(base_url=api_url, timeout=timeout)
        self._observe_timeout = httpx.Timeout(timeout, read=observe_read_timeout)

    async def handle(self, operation: str, body: Any = None) -> AsyncIterator[Any]:
        route = ROUTES[operation]
        url = self._prefix + route.path
        params = body if route.method == "GET" and isinstance(body, dict) else None
        content = orjson.dumps(body) if route.method == "POST" else None
        headers = {"User-Agent": USER_AGENT}
        if content is not None:
            headers["Content-Type"] = "application/json"
        if route.streaming:
            headers["Accept"] = "application/x-ndjson"
        timeout = self._observe_timeout if operation == "observe" else httpx.USE_CLIENT_DEFAULT
        try:
            request = self._client.build_request(
                route.method, url, content=content, params=params, headers=headers,
                timeout=timeout,
            )  # fmt: skip
            auth = self._auth or httpx.USE_CLIENT_DEFAULT
            response = await self._client.send(request, stream=True, auth=auth)
            try:
                if response.status_code != 200:
                    await response.aread()
                    raise _error(response)
                if route.streaming:
                    async for line in response.aiter_lines():
                        if line.strip():
                            yield _json(line)
                else:
                    raw = await response.aread()
                    yield raw.decode() if operation in _TEXT_OPERATIONS else _json(raw)
            finally:
                await response.aclose()
        except httpx.TransportError as exc:
            raise NetworkError(f"cannot reach the Genesis DB server: {type(exc).__name__}") from exc

    async def aclose(self) -> None:
        if self._owns_client:
            await self._client.aclose()


def _json(raw: str | bytes) -> Any:
    try:
        return orjson.loads(raw)
    except orjson.JSONDecodeError:
        raise ServerError("the server sent a response that is not JSON") from None


def _error(response: httpx.Response) -> GenesisDBError:
    message = f"HTTP {response.status_code}"
    code: str | None = None
    details: dict[str, Any] = {}
    try:
        body = orjson.loads(response.content)
    except orjson.JSONDecodeError:
        body = None
    if isinstance(body, dict):
        message = str(body.get("error") or body.get("message") or message)
        code = body.get("code") if isinstance(body.get("code"), str) else None
        found = body.get("details")
        details = found if isinstance(found, dict) else {}
    cls = error_for(response.status_code, code)
    return cls(message, code=code, details=details)

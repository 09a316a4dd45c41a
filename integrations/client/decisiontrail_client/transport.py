"""How a batch reaches a trail: over HTTP (``POST /v1/decisions/batch``) or, embedded, in-process.

A transport sends one batch under its idempotency key and says what happened, in terms the
sender acts on: delivered, retry later (maybe after ``Retry-After``), refused for the key
(report once, keep the records), or rejected as invalid (nothing was recorded; split it).
"""

from __future__ import annotations

import email.utils
import time
from dataclasses import dataclass
from enum import Enum
from typing import Any, Protocol

import httpx

from decisiontrail_client import __version__


class Outcome(Enum):
    DELIVERED = "delivered"
    RETRY = "retry"  # the service is down, slow, overloaded, or the answer was lost
    UNAUTHORIZED = "unauthorized"  # 401 / 403: the key is missing, wrong or lacks a scope
    REJECTED = "rejected"  # 400 / 413 / 422: the batch is invalid; nothing was recorded


@dataclass(frozen=True)
class SendResult:
    outcome: Outcome
    retry_after: float | None = None
    detail: str = ""  # the service's problem title and code: never a record's values


class Transport(Protocol):
    def send(self, key: str, records: list[dict[str, Any]]) -> SendResult: ...

    def close(self) -> None: ...

    def after_fork(self) -> None: ...


def retry_after_seconds(value: str | None) -> float | None:
    """``Retry-After`` as seconds (delta-seconds or an HTTP date), or None."""
    if not value:
        return None
    if value.strip().isdigit():
        return float(value.strip())
    try:
        moment = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, moment.timestamp() - time.time())


class HttpTransport:
    """Keep-alive HTTP/1.1 to the service's batch endpoint (one connection is enough: the
    sender sends one batch at a time, in order)."""

    def __init__(self, url: str, api_key: str | None, *, timeout: float = 30.0) -> None:
        self._url, self._api_key, self._timeout = url.rstrip("/"), api_key, timeout
        self._client = self._open()

    def _open(self) -> httpx.Client:
        headers = {"User-Agent": f"decisiontrail-client/{__version__}"}
        if self._api_key:
            headers["Authorization"] = f"Bearer {self._api_key}"
        return httpx.Client(
            base_url=self._url,
            headers=headers,
            timeout=httpx.Timeout(self._timeout, connect=min(self._timeout, 5.0)),
            limits=httpx.Limits(max_connections=2, max_keepalive_connections=2),
        )

    def send(self, key: str, records: list[dict[str, Any]]) -> SendResult:
        try:
            response = self._client.post(
                "/v1/decisions/batch", json=records, headers={"Idempotency-Key": key}
            )
        except httpx.HTTPError as exc:  # down, reset, timed out: the outcome is unknown
            return SendResult(Outcome.RETRY, detail=type(exc).__name__)
        status = response.status_code
        if status in (200, 201):
            return SendResult(Outcome.DELIVERED)
        detail = _problem_summary(response)
        if status in (401, 403):
            return SendResult(Outcome.UNAUTHORIZED, detail=detail)
        if status in (400, 413, 422):
            return SendResult(Outcome.REJECTED, detail=detail)
        wait = retry_after_seconds(response.headers.get("retry-after"))
        return SendResult(Outcome.RETRY, retry_after=wait, detail=detail)

    def close(self) -> None:
        self._client.close()

    def after_fork(self) -> None:
        """In a forked child: the parent's pooled sockets are not ours to use or close, so
        the old client is dropped unclosed and a new one opens its own connections."""
        self._client = self._open()


def _problem_summary(response: httpx.Response) -> str:
    try:
        body = response.json()
    except ValueError:
        return f"HTTP {response.status_code}"
    if isinstance(body, dict):
        return f"HTTP {response.status_code} {body.get('code', '')} {body.get('title', '')}"
    return f"HTTP {response.status_code}"

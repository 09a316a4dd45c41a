"""API keys stored as Genesis DB events (hashes only), with a short-lived cache, and a
per-key token bucket for rate limits.

``/api-keys/{key_id}``: ``io.decisiontrail.api-key.created`` (the stored key) then optionally
``io.decisiontrail.api-key.revoked``. A revocation made by another replica takes effect here
within ``cache_seconds``.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, replace
from datetime import UTC, datetime

from decisiontrail import apikeys
from decisiontrail.apikeys import ApiKey, Scope
from genesisdb import Client
from genesisdb.events import to_dict

CREATED_TYPE = "io.decisiontrail.api-key.created"
REVOKED_TYPE = "io.decisiontrail.api-key.revoked"


class KeyStore:
    def __init__(self, genesis: Client, *, cache_seconds: float = 5.0) -> None:
        self.genesis = genesis
        self.cache_seconds = cache_seconds
        self._cache: dict[str, tuple[float, ApiKey | None]] = {}

    async def create(
        self,
        *,
        tenant: str,
        scopes: frozenset[Scope],
        label: str = "",
        expires_at: datetime | None = None,
        rate_limit_per_second: float | None = None,
    ) -> tuple[str, ApiKey]:
        text, key = apikeys.generate(
            tenant=tenant,
            scopes=scopes,
            label=label,
            expires_at=expires_at,
            rate_limit_per_second=rate_limit_per_second,
        )
        subject = f"/api-keys/{key.key_id}"
        await self.genesis.commit_events(
            [{"source": "decisiontrail", "subject": subject, "type": CREATED_TYPE,
              "data": key.to_json()}],
            [{"type": "isSubjectNew", "payload": {"subject": subject}}],
        )  # fmt: skip
        self._cache[key.key_id] = (time.monotonic(), key)
        return text, key

    async def get(self, key_id: str) -> ApiKey | None:
        events = await self.genesis.stream_events(f"/api-keys/{key_id}")
        key: ApiKey | None = None
        for event in events:
            data = to_dict(event)
            if data["type"] == CREATED_TYPE:
                key = ApiKey.from_json(data["data"])
            elif data["type"] == REVOKED_TYPE and key is not None:
                key = replace(key, revoked_at=datetime.fromisoformat(data["data"]["revoked_at"]))
        self._cache[key_id] = (time.monotonic(), key)
        return key

    async def revoke(self, key_id: str) -> ApiKey | None:
        key = await self.get(key_id)
        if key is None or key.revoked_at is not None:
            return key
        now = datetime.now(UTC)
        await self.genesis.commit_events(
            [{"source": "decisiontrail", "subject": f"/api-keys/{key_id}", "type": REVOKED_TYPE,
              "data": {"revoked_at": now.isoformat()}}]
        )  # fmt: skip
        revoked = key.revoked(now)
        self._cache[key_id] = (time.monotonic(), revoked)
        return revoked

    async def list(self, tenant: str | None = None) -> list[ApiKey]:
        events = await self.genesis.stream_events("/api-keys")
        key_ids = {to_dict(e)["subject"].rsplit("/", 1)[-1] for e in events}
        keys = [key for key_id in sorted(key_ids) if (key := await self.get(key_id)) is not None]
        return [key for key in keys if tenant is None or key.tenant == tenant]

    async def authenticate(self, text: str) -> ApiKey | None:
        """The usable key the text names, or None (unknown, wrong secret, revoked, expired)."""
        parsed = apikeys.parse(text)
        if parsed is None:
            return None
        key_id, secret = parsed
        cached = self._cache.get(key_id)
        if cached is not None and time.monotonic() - cached[0] < self.cache_seconds:
            key = cached[1]
        else:
            key = await self.get(key_id)
        if key is None or not key.matches(secret) or not key.usable():
            return None
        return key


@dataclass
class _Bucket:
    tokens: float
    updated: float


class RateLimiter:
    """A token bucket per key: ``rate`` requests a second, bursts up to ``rate`` (at least 1)."""

    def __init__(self) -> None:
        self._buckets: dict[str, _Bucket] = {}

    def take(self, key_id: str, rate: float) -> float | None:
        """None if allowed; else the seconds until a request would be."""
        now = time.monotonic()
        capacity = max(rate, 1.0)
        bucket = self._buckets.setdefault(key_id, _Bucket(capacity, now))
        bucket.tokens = min(capacity, bucket.tokens + (now - bucket.updated) * rate)
        bucket.updated = now
        if bucket.tokens >= 1.0:
            bucket.tokens -= 1.0
            return None
        return (1.0 - bucket.tokens) / rate

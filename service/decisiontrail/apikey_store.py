"""API keys stored as Genesis DB events (hashes only), with a short-lived, bounded cache.

``/api-keys/{key_id}``: ``io.decisiontrail.api-key.created`` (the stored key) then optionally
``io.decisiontrail.api-key.revoked``. A revocation made by another replica takes effect here
within ``cache_seconds``. Unknown key ids are cached too (so a flood of them does not reach the
store), but the cache keeps at most ``cache_size`` entries, least recently used going first.
"""

from __future__ import annotations

import time
from collections import OrderedDict
from dataclasses import replace
from datetime import UTC, datetime

from decisiontrail import apikeys
from decisiontrail.apikeys import ApiKey, Scope
from genesisdb import Client
from genesisdb.events import to_dict

CREATED_TYPE = "io.decisiontrail.api-key.created"
REVOKED_TYPE = "io.decisiontrail.api-key.revoked"


class ApiKeyStore:
    def __init__(
        self, genesis: Client, *, cache_seconds: float = 5.0, cache_size: int = 10_000
    ) -> None:
        self.genesis = genesis
        self.cache_seconds = cache_seconds
        self.cache_size = cache_size
        self._cache: OrderedDict[str, tuple[float, ApiKey | None]] = OrderedDict()

    def _remember(self, key_id: str, key: ApiKey | None) -> None:
        self._cache[key_id] = (time.monotonic(), key)
        self._cache.move_to_end(key_id)
        while len(self._cache) > self.cache_size:
            self._cache.popitem(last=False)

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
        self._remember(key.key_id, key)
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
        self._remember(key_id, key)
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
        self._remember(key_id, revoked)
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

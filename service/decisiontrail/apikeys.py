"""API keys: format, hashing, scopes.

A key reads ``dtk_<key id>_<secret>``: the key id (16 hex) finds the stored key, the secret
(32 random bytes, base32) is never stored — only its SHA-256 — and is compared in constant
time. A key belongs to exactly one tenant and carries scopes; it may expire or be revoked.

Tenant names are 1 to 100 of ``a-z 0-9 _ -``: they appear in store subjects, graph node ids
(``decision:{tenant}:{id}``) and checkpoint origins, where a ``:`` or ``/`` could make two
tenants' names collide (``acme`` and ``acme:eu``).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
import secrets
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any

KEY_PREFIX = "dtk_"
TENANT_PATTERN = re.compile(r"[a-z0-9_-]{1,100}")


class InvalidTenantName(ValueError):
    """A tenant name outside the safe character set."""


def check_tenant(name: str) -> str:
    if not TENANT_PATTERN.fullmatch(name):
        raise InvalidTenantName(f"a tenant name is 1 to 100 of a-z 0-9 _ -, not {name!r}")
    return name


class Scope(StrEnum):
    INGEST = "ingest"  # record decisions
    READ = "read"  # read decisions (personal values stay committed)
    READ_PERSONAL = "read-personal"  # see personal values in clear
    AUDIT = "audit"  # verify, export, reports, checkpoints
    ERASE = "erase"  # GDPR erasure and legal holds
    METRICS = "metrics"  # scrape /metrics (every tenant's figures, no tenant's name)
    ADMIN = "admin"  # everything, including key management


@dataclass(frozen=True)
class ApiKey:
    """A stored API key (its secret's hash only)."""

    key_id: str
    tenant: str
    label: str
    scopes: frozenset[Scope]
    secret_hash: str  # hex SHA-256 of the secret
    created_at: datetime
    expires_at: datetime | None = None
    revoked_at: datetime | None = None
    rate_limit_per_second: float | None = None
    meta: dict[str, Any] = field(default_factory=dict)

    def allows(self, scope: Scope) -> bool:
        return Scope.ADMIN in self.scopes or scope in self.scopes

    def usable(self, now: datetime | None = None) -> bool:
        now = now or datetime.now(UTC)
        if self.revoked_at is not None and self.revoked_at <= now:
            return False
        return self.expires_at is None or now < self.expires_at

    def matches(self, secret: str) -> bool:
        presented = hashlib.sha256(secret.encode()).hexdigest()
        return hmac.compare_digest(presented, self.secret_hash)

    def revoked(self, at: datetime) -> ApiKey:
        return replace(self, revoked_at=at)

    def public(self) -> dict[str, Any]:
        """What listing keys shows: never the secret or its hash."""
        return {
            "key_id": self.key_id,
            "tenant": self.tenant,
            "label": self.label,
            "scopes": sorted(self.scopes),
            "created_at": _iso(self.created_at),
            "expires_at": _iso(self.expires_at),
            "revoked_at": _iso(self.revoked_at),
            "rate_limit_per_second": self.rate_limit_per_second,
        }

    def to_json(self) -> dict[str, Any]:
        return {**self.public(), "secret_hash": self.secret_hash}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> ApiKey:
        return cls(
            key_id=str(data["key_id"]),
            tenant=str(data["tenant"]),
            label=str(data.get("label", "")),
            scopes=frozenset(Scope(s) for s in data["scopes"]),
            secret_hash=str(data["secret_hash"]),
            created_at=datetime.fromisoformat(data["created_at"]),
            expires_at=_parse(data.get("expires_at")),
            revoked_at=_parse(data.get("revoked_at")),
            rate_limit_per_second=data.get("rate_limit_per_second"),
        )


def _iso(moment: datetime | None) -> str | None:
    return None if moment is None else moment.astimezone(UTC).isoformat()


def _parse(text: str | None) -> datetime | None:
    return None if text is None else datetime.fromisoformat(text)


def generate(
    *,
    tenant: str,
    scopes: frozenset[Scope],
    label: str = "",
    expires_at: datetime | None = None,
    rate_limit_per_second: float | None = None,
    now: datetime | None = None,
) -> tuple[str, ApiKey]:
    """A new key: the full key text (shown once) and what is stored."""
    check_tenant(tenant)
    key_id = secrets.token_hex(8)
    secret = base64.b32encode(secrets.token_bytes(32)).decode().rstrip("=").lower()
    stored = ApiKey(
        key_id=key_id,
        tenant=tenant,
        label=label,
        scopes=scopes,
        secret_hash=hashlib.sha256(secret.encode()).hexdigest(),
        created_at=now or datetime.now(UTC),
        expires_at=expires_at,
        rate_limit_per_second=rate_limit_per_second,
    )
    return f"{KEY_PREFIX}{key_id}_{secret}", stored


def parse(text: str) -> tuple[str, str] | None:
    """Split presented key text into (key id, secret); None if it is not a key's shape."""
    if not text.startswith(KEY_PREFIX):
        return None
    key_id, sep, secret = text[len(KEY_PREFIX) :].partition("_")
    if not sep or len(key_id) != 16 or not secret or len(secret) > 128:
        return None
    try:
        int(key_id, 16)
    except ValueError:
        return None
    return key_id, secret

"""Bearer tokens and roles: read ⊂ write ⊂ admin.

read → stream, observe, q, subjects, types, schema get, status, metrics;
write → + commit; admin → + erase, schema register, backup, restore, audit.
Tokens are compared in constant time and never logged.
"""

from __future__ import annotations

import hmac

from genesisdb.exceptions import AuthenticationError, PermissionDeniedError
from genesisdb.server.settings import ServerSettings
from genesisdb.wire import Role

__all__ = ["RANK", "TokenAuthority"]

RANK: dict[Role, int] = {"read": 1, "write": 2, "admin": 3}


class TokenAuthority:
    """Decides what a request's ``Authorization`` header allows."""

    def __init__(self, settings: ServerSettings) -> None:
        grants: list[tuple[bytes, Role]] = []
        for name, token in settings.tokens().items():
            if token:
                role: Role = "admin" if name in ("auth", "admin") else name  # type: ignore[assignment]
                grants.append((token.encode(), role))
        self._grants = grants

    def role_of(self, authorization: str | None) -> Role | None:
        """The role the header's token grants, or None for no or an unknown token."""
        if not authorization:
            return None
        scheme, _, credential = authorization.strip().partition(" ")
        token = credential.strip() if scheme.lower() == "bearer" else authorization.strip()
        presented = token.encode("utf-8", "replace")
        best: Role | None = None
        for known, role in self._grants:
            # Compare with every token, so timing says nothing about which one matched.
            if hmac.compare_digest(presented, known) and (best is None or RANK[role] > RANK[best]):
                best = role
        return best

    def require(self, authorization: str | None, needed: Role | None) -> None:
        """Raise 401 without a valid token, 403 when its role is below ``needed``."""
        if needed is None:
            return
        role = self.role_of(authorization)
        if role is None:
            raise AuthenticationError("a valid bearer token is required")
        if RANK[role] < RANK[needed]:
            raise PermissionDeniedError(f"this operation needs the {needed} role")

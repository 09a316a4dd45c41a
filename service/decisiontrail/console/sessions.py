"""Console sessions: an API key, presented once on the sign-in form, exchanged for a random
session id in a short-lived ``HttpOnly; SameSite=Strict`` cookie.

The cookie holds nothing but the session id; the key's text is never kept (only its id, so
that every request re-reads the key and a revoked or expired key ends its sessions at once).
Each session carries a CSRF token that every form that changes something (sign-out, a
verification run) must send back; SameSite=Strict already keeps other sites' forms out, the
token also covers same-site pages. Sessions live in this process: a restart signs everyone
out, which a short-lived session can afford.
"""

from __future__ import annotations

import hmac
import secrets
import time
from dataclasses import dataclass

COOKIE = "dt_console"
LIFETIME_SECONDS = 15 * 60
MAX_SESSIONS = 10_000  # the oldest go first when a flood of sign-ins arrives


@dataclass(frozen=True)
class ConsoleSession:
    key_id: str
    csrf: str
    expires: float  # time.monotonic()


class SessionStore:
    def __init__(self, lifetime_seconds: float = LIFETIME_SECONDS) -> None:
        self.lifetime_seconds = lifetime_seconds
        self._sessions: dict[str, ConsoleSession] = {}

    def open(self, key_id: str) -> tuple[str, ConsoleSession]:
        self._drop_expired()
        while len(self._sessions) >= MAX_SESSIONS:
            del self._sessions[next(iter(self._sessions))]
        session_id = secrets.token_urlsafe(32)
        session = ConsoleSession(
            key_id, secrets.token_urlsafe(32), time.monotonic() + self.lifetime_seconds
        )
        self._sessions[session_id] = session
        return session_id, session

    def get(self, session_id: str | None) -> ConsoleSession | None:
        if not session_id:
            return None
        session = self._sessions.get(session_id)
        if session is None or session.expires <= time.monotonic():
            self._sessions.pop(session_id, None)
            return None
        return session

    def close(self, session_id: str | None) -> None:
        if session_id:
            self._sessions.pop(session_id, None)

    def _drop_expired(self) -> None:
        now = time.monotonic()
        for session_id in [s for s, v in self._sessions.items() if v.expires <= now]:
            del self._sessions[session_id]


def csrf_matches(session: ConsoleSession, presented: str | None) -> bool:
    return presented is not None and hmac.compare_digest(session.csrf, presented)

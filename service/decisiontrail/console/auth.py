"""Who is using the console: the session cookie resolved to a usable API key, re-read on every
request so that the key's tenant, scopes, expiry and revocation hold exactly as on the API."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, Request

from decisiontrail.apikeys import ApiKey, Scope
from decisiontrail.console.sessions import COOKIE, ConsoleSession, SessionStore
from decisiontrail.deps import StateDep
from decisiontrail.errors import Forbidden


class SignInRequired(Exception):
    """No session, an expired one, or one whose key is no longer usable."""


@dataclass(frozen=True)
class ConsoleUser:
    key: ApiKey
    session: ConsoleSession

    @property
    def tenant(self) -> str:
        return self.key.tenant

    def can(self, scope: Scope) -> bool:
        return self.key.allows(scope)

    def require(self, scope: Scope) -> None:
        if not self.key.allows(scope):
            raise Forbidden(f"this page needs the {scope.value!r} scope")


def sessions_of(request: Request) -> SessionStore:
    store: SessionStore = request.app.state.console_sessions
    return store


async def console_user(request: Request, state: StateDep) -> ConsoleUser:
    store = sessions_of(request)
    session_id = request.cookies.get(COOKIE)
    session = store.get(session_id)
    if session is None:
        raise SignInRequired
    key = await state.keys.get(session.key_id)
    if key is None or not key.usable():
        store.close(session_id)
        raise SignInRequired
    return ConsoleUser(key, session)


UserDep = Annotated[ConsoleUser, Depends(console_user)]

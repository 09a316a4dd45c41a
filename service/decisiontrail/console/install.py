"""Mounting the console on the service's app: its routes, assets, sessions and sign-in redirect."""

from __future__ import annotations

from fastapi import FastAPI, Request
from fastapi.responses import RedirectResponse
from fastapi.staticfiles import StaticFiles

from decisiontrail.console import audit_pages, pages
from decisiontrail.console.auth import SignInRequired
from decisiontrail.console.rendering import STATIC
from decisiontrail.console.sessions import SessionStore


def install_console(app: FastAPI) -> None:
    app.state.console_sessions = SessionStore()
    app.state.console_verifications = {}
    app.include_router(pages.router)
    app.include_router(audit_pages.router)
    app.mount("/console/static", StaticFiles(directory=STATIC), name="console-static")

    @app.exception_handler(SignInRequired)
    async def _sign_in(request: Request, exc: SignInRequired) -> RedirectResponse:
        return RedirectResponse("/console/sign-in", status_code=303)

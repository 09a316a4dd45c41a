"""The console's Jinja2 environment (autoescape on for every template) and the filters its
templates share with the HTML compliance report."""

from __future__ import annotations

import base64
import binascii
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from fastapi import Request, Response
from fastapi.templating import Jinja2Templates
from jinja2 import Environment, FileSystemLoader

TEMPLATES = Path(__file__).parent / "templates"
STATIC = Path(__file__).parent / "static"


def display_time(value: str | None) -> str:
    """An RFC 3339 time shown in UTC to the second; verbatim when it does not parse."""
    if not value:
        return "—"
    try:
        moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return value
    if moment.tzinfo is None:
        return value
    return moment.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


def b64hex(value: str) -> str:
    """A root as people read it everywhere (hex), from the base64 a standard carries."""
    try:
        return base64.b64decode(value, validate=True).hex()
    except (ValueError, binascii.Error):
        return value


def short_hash(value: str, length: int = 16) -> str:
    return value if len(value) <= length else f"{value[:length]}…"


environment = Environment(loader=FileSystemLoader(TEMPLATES), autoescape=True)
environment.filters["display_time"] = display_time
environment.filters["short_hash"] = short_hash
environment.filters["b64hex"] = b64hex
templates = Jinja2Templates(env=environment)


def render(
    request: Request, name: str, context: dict[str, Any], *, status_code: int = 200
) -> Response:
    return templates.TemplateResponse(request, name, context, status_code=status_code)

"""Client configuration: a config dict, else the ``GENESISDB_*`` environment.

``api_url`` selects the transport: ``http://`` / ``https://`` talk to a server; ``sqlite:///…``,
``postgresql://…`` or a file path run the engine in-process (no token or version needed).
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

__all__ = ["ClientConfig", "is_embedded_url", "resolve_config"]

_ENV = {
    "api_url": "GENESISDB_API_URL",
    "api_version": "GENESISDB_API_VERSION",
    "auth_token": "GENESISDB_AUTH_TOKEN",
}


@dataclass(frozen=True)
class ClientConfig:
    """Where the client talks to and how; ``auth_token`` is never shown in ``repr``."""

    api_url: str
    api_version: str
    auth_token: str | None

    @property
    def embedded(self) -> bool:
        return is_embedded_url(self.api_url)

    def __repr__(self) -> str:
        token = "None" if self.auth_token is None else "'***'"
        return (
            f"ClientConfig(api_url={self.api_url!r}, api_version={self.api_version!r}, "
            f"auth_token={token})"
        )


def is_embedded_url(url: str) -> bool:
    """True for a storage URL or path (embedded), False for ``http(s)://``."""
    return not url.lower().startswith(("http://", "https://"))


def resolve_config(
    config: Mapping[str, Any] | None, environ: Mapping[str, str] | None = None
) -> ClientConfig:
    """Merge ``config`` over the environment; missing values raise ValueError naming them."""
    environ = os.environ if environ is None else environ
    given = dict(config or {})
    values = {key: given.get(key) or environ.get(env) or None for key, env in _ENV.items()}
    url = values["api_url"]
    embedded = isinstance(url, str) and is_embedded_url(url)
    required = ["api_url"] if embedded else list(_ENV)
    missing = [_ENV[key] for key in required if not values[key]]
    if missing:
        raise ValueError(f"Missing required configuration: {', '.join(missing)}")
    for key, value in values.items():
        if value is not None and not isinstance(value, str):
            raise ValueError(f"{key} must be a string")
    return ClientConfig(
        api_url=str(url).rstrip("/") if not embedded else str(url),
        api_version=str(values["api_version"] or "v1"),
        auth_token=values["auth_token"],
    )

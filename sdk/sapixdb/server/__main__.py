"""``python -m sapixdb.server [--host H] [--port P] [--storage URL] [--root-key KEY]``.

Each option falls back to its ``SAPIX_*`` environment variable (``SAPIX_HOST``,
``SAPIX_PORT``, ``SAPIX_STORAGE_URL``, ``SAPIX_ROOT_KEY``), then to the default: 127.0.0.1,
port 7475, a SQLite file ``sapixdb.db`` in the working directory, open mode.
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
from collections.abc import MutableMapping

import uvicorn

from sapixdb.server.app import ServerSettings, create_app


def parse_settings(
    argv: list[str] | None = None, environ: MutableMapping[str, str] | None = None
) -> ServerSettings:
    """Settings from the command line over the environment (``environ``) over the defaults."""
    env = ServerSettings.from_env(environ)
    parser = argparse.ArgumentParser(prog="python -m sapixdb.server", description=__doc__)
    parser.add_argument("--host", default=env.host)
    parser.add_argument("--port", type=int, default=env.port)
    parser.add_argument("--storage", default=env.storage_url, help="ledgerstore URL or path")
    parser.add_argument("--root-key", default=env.root_key, help="enables API keys")
    parser.add_argument("--heartbeat", type=float, default=env.heartbeat_seconds)
    args = parser.parse_args(argv)
    return dataclasses.replace(
        env,
        host=args.host,
        port=args.port,
        storage_url=args.storage,
        root_key=args.root_key or None,
        heartbeat_seconds=args.heartbeat,
    )


def main(argv: list[str] | None = None) -> int:
    """Run the server until interrupted."""
    try:
        settings = parse_settings(argv)
    except ValueError as exc:
        print(f"sapixdb.server: {exc}", file=sys.stderr)
        return 2
    uvicorn.run(
        create_app(settings),
        host=settings.host,
        port=settings.port,
        log_level="warning",
        timeout_graceful_shutdown=2,
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())

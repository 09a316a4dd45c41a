"""``python -m genesisdb.server [--host H] [--port P] [--storage URL] [--auth-token T] …``.

Every option also comes from the environment (``GENESISDB_HOST``, ``GENESISDB_PORT``,
``GENESISDB_STORAGE_URL``, ``GENESISDB_AUTH_TOKEN``, ``GENESISDB_ADMIN_TOKEN``,
``GENESISDB_WRITE_TOKEN``, ``GENESISDB_READ_TOKEN``, ``GENESISDB_HEARTBEAT_SECONDS``, …);
the command line wins. Default: 127.0.0.1:8080, SQLite file ``genesisdb.db`` here.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

import uvicorn

from genesisdb.server.app import create_app
from genesisdb.server.settings import ServerSettings


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m genesisdb.server", description=__doc__)
    parser.add_argument("--host", help="interface to listen on (default 127.0.0.1)")
    parser.add_argument("--port", type=int, help="port to listen on (default 8080)")
    parser.add_argument("--storage", dest="storage_url", help="sqlite:///file.db or postgresql://…")
    parser.add_argument("--auth-token", help="one token with every role")
    parser.add_argument("--admin-token", help="token with the admin role")
    parser.add_argument("--write-token", help="token with the write role")
    parser.add_argument("--read-token", help="token with the read role")
    parser.add_argument("--heartbeat-seconds", type=float, help="observe heartbeat interval")
    parser.add_argument("--max-event-bytes", type=int, help="largest serialized event")
    parser.add_argument("--query-seconds", type=float, help="time budget of one query (30)")
    parser.add_argument("--max-queries", type=int, help="queries running at once (16)")
    parser.add_argument(
        "--max-queries-per-token", type=int, help="queries one token runs at once (4)"
    )
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    """Run the server until interrupted."""
    args = parse_args(argv)
    try:
        settings = ServerSettings.from_env(**vars(args))
    except ValueError as exc:
        print(f"genesisdb.server: {exc}", file=sys.stderr)
        return 2
    uvicorn.run(
        create_app(settings),
        host=settings.host,
        port=settings.port,
        log_level="warning",
        timeout_graceful_shutdown=3,
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())

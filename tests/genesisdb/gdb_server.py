"""Start and stop a real ``python -m genesisdb.server`` process for tests."""

from __future__ import annotations

import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import httpx

from tests.ports import free_port
from tests.processes import stop_process, wait_until_answering

TOKENS = {"admin": "admin-token", "write": "write-token", "read": "read-token"}


@dataclass
class ServerProcess:
    url: str
    storage: str
    process: subprocess.Popen[bytes]

    def stop(self) -> None:
        stop_process(self.process)


def start_server(
    directory: Path, *extra: str, storage: str | None = None, heartbeat: float = 0.2
) -> ServerProcess:
    """A server on a free port with an auth token plus admin/write/read tokens."""
    port = free_port()
    storage = storage or f"sqlite:///{directory}/g.db"
    command = [
        sys.executable, "-m", "genesisdb.server", "--host", "127.0.0.1", "--port", str(port),
        "--storage", storage, "--auth-token", TOKENS["admin"],
        "--write-token", TOKENS["write"], "--read-token", TOKENS["read"],
        "--heartbeat-seconds", str(heartbeat), *extra,
    ]  # fmt: skip
    log = open(directory / "server.log", "wb")  # noqa: SIM115 - the process owns it
    env = {key: value for key, value in os.environ.items() if not key.startswith("GENESISDB_")}
    process = subprocess.Popen(
        command, stdout=log, stderr=subprocess.STDOUT, cwd=directory, env=env
    )
    url = f"http://127.0.0.1:{port}"

    def answers() -> bool:
        return httpx.get(f"{url}/api/v1/status/ping", timeout=1).text == "pong"

    wait_until_answering(process, answers, log=directory / "server.log", timeout=30)
    return ServerProcess(url, storage, process)

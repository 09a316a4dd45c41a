"""A real ``python -m sapixdb.server`` process on 127.0.0.1 and a free port, for tests."""

from __future__ import annotations

import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import httpx

from tests.ports import free_port
from tests.processes import stop_process, wait_until_answering


@dataclass
class ServerProcess:
    process: subprocess.Popen[bytes]
    url: str

    def stop(self) -> None:
        stop_process(self.process)


def start_server(directory: Path, *extra: str, storage: str | None = None) -> ServerProcess:
    """Start a server on ``storage`` (default: a SQLite file in ``directory``); returns once
    /v1/health answers."""
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("SAPIX_")}
    log_path = directory / "server.log"
    log = log_path.open("wb")
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "sapixdb.server",
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--storage",
            storage or f"sqlite:///{directory}/s.db",
            *extra,
        ],
        cwd=directory,
        env=env,
        stdout=subprocess.DEVNULL,
        # A file, not a pipe: nobody reads the log during the session, and a full pipe
        # would block the server.
        stderr=log,
    )
    url = f"http://127.0.0.1:{port}"

    def answers() -> bool:
        return httpx.get(f"{url}/v1/health", timeout=1).status_code == 200

    try:
        wait_until_answering(process, answers, log=log_path, timeout=30)
    finally:
        log.close()  # the child keeps its own descriptor
    return ServerProcess(process, url)

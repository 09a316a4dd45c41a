"""A real DecisionTrail server process on 127.0.0.1 and a free port, for end-to-end tests."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import httpx

from tests.ports import free_port
from tests.processes import stop_process, wait_until_answering


@dataclass
class ServerProcess:
    data_dir: Path
    port: int
    env: dict[str, str]
    process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> None:
        log_path = self.data_dir.parent / f"server-{self.port}.log"
        with log_path.open("ab") as log:  # the child keeps its own descriptor
            self.process = subprocess.Popen(
                [sys.executable, "-m", "decisiontrail", "serve", "--port", str(self.port)],
                env=self.env, stdout=log, stderr=subprocess.STDOUT, cwd=self.data_dir.parent,
            )  # fmt: skip

        def answers() -> bool:
            return httpx.get(f"{self.url}/healthz", timeout=1).status_code == 200

        wait_until_answering(self.process, answers, log=log_path, timeout=60)

    def kill(self) -> None:
        """kill -9: no shutdown hooks, no flushing."""
        if self.process is not None:
            os.kill(self.process.pid, signal.SIGKILL)
            self.process.wait(timeout=30)
            self.process = None

    def stop(self) -> None:
        if self.process is not None:
            stop_process(self.process, timeout=30)
            self.process = None

    def cli(self, *args: str) -> str:
        result = subprocess.run(
            [sys.executable, "-m", "decisiontrail", *args], env=self.env, capture_output=True,
            text=True, timeout=120, cwd=self.data_dir.parent, check=True,
        )  # fmt: skip
        return result.stdout


def make_server(tmp_path: Path, **settings: str) -> ServerProcess:
    data_dir = tmp_path / "data"
    env = {**os.environ, "DECISIONTRAIL_DATA_DIR": str(data_dir)}
    env.update({f"DECISIONTRAIL_{name.upper()}": value for name, value in settings.items()})
    return ServerProcess(data_dir, free_port(), env)

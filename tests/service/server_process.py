"""A real DecisionTrail server process on 127.0.0.1 and a free port, for end-to-end tests."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import httpx

from tests.ports import free_port


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
        log = (self.data_dir.parent / f"server-{self.port}.log").open("ab")
        self.process = subprocess.Popen(
            [sys.executable, "-m", "decisiontrail", "serve", "--port", str(self.port)],
            env=self.env, stdout=log, stderr=subprocess.STDOUT, cwd=self.data_dir.parent,
        )  # fmt: skip
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"the server exited with {self.process.returncode}")
            try:
                if httpx.get(f"{self.url}/healthz", timeout=1).status_code == 200:
                    return
            except httpx.HTTPError:
                time.sleep(0.1)
        raise RuntimeError("the server did not come up")

    def kill(self) -> None:
        """kill -9: no shutdown hooks, no flushing."""
        if self.process is not None:
            os.kill(self.process.pid, signal.SIGKILL)
            self.process.wait(timeout=30)
            self.process = None

    def stop(self) -> None:
        if self.process is not None:
            self.process.terminate()
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.process.kill()
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

"""`python3 tasks.py serve` as a user runs it: the banner, and Ctrl-C stopping the service
cleanly (stores closed, no traceback) instead of killing it."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
from pathlib import Path

import httpx

from tests.ports import free_port
from tests.processes import wait_until_answering

ROOT = Path(__file__).resolve().parents[2]


def test_ctrl_c_on_tasks_serve_stops_the_service_cleanly(tmp_path: Path) -> None:
    port = free_port()
    data = tmp_path / "data"
    log = tmp_path / "serve.log"
    env = {**os.environ, "DECISIONTRAIL_DATA_DIR": str(data), "COLUMNS": "80"}
    with log.open("wb") as out:
        process = subprocess.Popen(
            [sys.executable, "tasks.py", "serve", "--port", str(port)],
            cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT,
        )  # fmt: skip
    try:
        url = f"http://127.0.0.1:{port}"
        wait_until_answering(
            process, lambda: httpx.get(f"{url}/healthz").status_code == 200, log=log, timeout=90
        )
        process.send_signal(signal.SIGINT)  # to tasks.py alone, as `kill -INT` would
        assert process.wait(timeout=60) == 0
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    output = log.read_text()
    assert "Traceback" not in output
    assert "leaked semaphore" not in output
    assert list(data.glob("*.db-wal")) == [] or all(
        p.stat().st_size == 0 for p in data.glob("*.db-wal")
    )
    # The banner: the full command to create a key, erase scope included, on one line.
    (line,) = [line for line in output.splitlines() if "keys create" in line]
    command = line.strip()
    assert re.fullmatch(
        r"\S*\.venv/bin/decisiontrail keys create --tenant default --scope ingest "
        r"--scope read --scope audit --scope erase",
        command,
    ), command

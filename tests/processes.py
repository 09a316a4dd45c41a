"""The real server processes the tests start: wait until one answers, stop one."""

from __future__ import annotations

import subprocess
import time
from collections.abc import Callable
from pathlib import Path

import httpx


def wait_until_answering(
    process: subprocess.Popen[bytes], answers: Callable[[], bool], *, log: Path, timeout: float
) -> None:
    """Poll ``answers`` until it is true; raise (with the log's tail) if the process exits or
    ``timeout`` seconds pass first, killing it then."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            tail = log.read_text(errors="replace")[-3000:] if log.exists() else ""
            raise RuntimeError(f"the server exited with {process.returncode}: {tail}")
        try:
            if answers():
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.05)
    process.kill()
    process.wait()
    raise RuntimeError(f"the server did not answer within {timeout:.0f} s")


def stop_process(process: subprocess.Popen[bytes], timeout: float = 10) -> None:
    """SIGTERM (a graceful shutdown), then SIGKILL if it takes longer than ``timeout``."""
    process.terminate()
    try:
        process.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait(timeout=timeout)

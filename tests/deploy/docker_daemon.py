"""A Docker daemon for the image tests: the one that answers, or Debian's dockerd started in
the background (CI starts from a fresh machine); skipped only where none can be started, and
never in CI."""

from __future__ import annotations

import os
import shutil
import subprocess
import time
from pathlib import Path

import pytest


def answers() -> bool:
    if shutil.which("docker") is None:
        return False
    result = subprocess.run(["docker", "info"], capture_output=True, timeout=30)
    return result.returncode == 0


def ensure_daemon(log: Path) -> None:
    if answers():
        return
    problem = start_daemon(log)
    if problem is None:
        return
    if os.environ.get("CI"):
        pytest.fail(f"CI must run the container tests: {problem}")
    pytest.skip(f"no Docker daemon can be started here: {problem}")


def start_daemon(log: Path) -> str | None:
    """Start dockerd (left running, as a system service would be); what went wrong, or None."""
    dockerd = shutil.which("dockerd")
    if dockerd is None or shutil.which("docker") is None:
        return "docker.io is not installed (apt-get install docker.io)"
    if os.geteuid() != 0:
        return "dockerd needs root"
    with log.open("ab") as out:
        process = subprocess.Popen(
            [dockerd], stdout=out, stderr=subprocess.STDOUT, start_new_session=True
        )
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if answers():
            return None
        if process.poll() is not None:
            return f"dockerd exited with {process.returncode}: {log.read_text()[-2000:]}"
        time.sleep(0.5)
    return "dockerd did not answer within 60 s"

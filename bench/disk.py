"""Disk use per decision: what the real service keeps on disk for ~1 KB decisions, beside the
bytes of the same decisions as sent (their compact JSON), measured in the same run.

    .venv/bin/python bench/disk.py              # 20,000 decisions
    .venv/bin/python bench/disk.py --count 2000 # a short run

The service (``decisiontrail serve``, embedded SQLite, a checkpoint every 60 s) runs in a temp
data directory; an ingest key is made with ``decisiontrail keys create``; the decisions of
bench/service.py's generator are sent in batches of 1,000 with http.client (a plain
sequential client: this measures bytes, not speed); the service is stopped with SIGTERM (its
stores checkpoint their WAL on close) and every file under the data directory is counted.
The figure scales linearly: the per-decision rows dominate, and the Merkle tree adds about a
quarter of a row per decision.
"""

from __future__ import annotations

import argparse
import http.client
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import orjson

from service import decision_bodies  # bench/service.py: the same ~1 KB decisions

BIN = Path(sys.executable).parent


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_for(port: int, process: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if process.poll() is not None:
            sys.exit(f"the service exited with {process.returncode}")
        try:
            connection = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
            connection.request("GET", "/healthz")
            if connection.getresponse().status == 200:
                return
        except OSError:
            time.sleep(0.2)
    sys.exit("the service did not answer")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, default=20_000)
    count = parser.parse_args().count
    bodies = decision_bodies(count)
    with tempfile.TemporaryDirectory(prefix="dt-disk-") as work:
        data = Path(work) / "data"
        data.mkdir()
        env = {**os.environ, "DECISIONTRAIL_DATA_DIR": str(data)}
        created = subprocess.run(
            [BIN / "decisiontrail", "keys", "create", "--tenant", "default", "--scope", "ingest"],
            env=env, capture_output=True, text=True, check=True, cwd=work,
        )  # fmt: skip
        key = next(line for line in created.stdout.splitlines() if line.startswith("dtk_"))
        port = free_port()
        server = subprocess.Popen(
            [BIN / "decisiontrail", "serve", "--port", str(port)], env=env, cwd=work,
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )  # fmt: skip
        try:
            wait_for(port, server)
            sent = 0
            connection = http.client.HTTPConnection("127.0.0.1", port, timeout=120)
            headers = {"Authorization": f"Bearer {key}", "Content-Type": "application/json"}
            for start in range(0, count, 1_000):
                batch = bodies[start : start + 1_000]
                sent += sum(len(orjson.dumps(body)) for body in batch)
                connection.request("POST", "/v1/decisions/batch", orjson.dumps(batch), headers)
                response = connection.getresponse()
                response.read()
                if response.status != 201:
                    sys.exit(f"the batch at {start} answered {response.status}")
        finally:
            server.send_signal(signal.SIGTERM)
            server.wait(timeout=60)
        files = {path.name: path.stat().st_size for path in data.rglob("*") if path.is_file()}
    on_disk = sum(files.values())
    print(f"{count:,} decisions, ~1 KB each, embedded SQLite")
    print(f"  sent (compact JSON):  {sent / count:8,.0f} bytes/decision")
    print(f"  on disk (all files):  {on_disk / count:8,.0f} bytes/decision "
          f"({on_disk / sent:.1f}x what was sent)")  # fmt: skip
    print(f"  per million decisions: {on_disk / count * 1e6 / 2**30:.1f} GiB "
          f"(sent: {sent / count * 1e6 / 2**30:.1f} GiB)")  # fmt: skip
    for name, size in sorted(files.items(), key=lambda item: -item[1])[:6]:
        print(f"    {name:28} {size / count:8,.0f} bytes/decision")


if __name__ == "__main__":
    main()

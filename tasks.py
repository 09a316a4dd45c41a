#!/usr/bin/env python3
"""Project tasks that need nothing but Python 3.11+ and pip.

    python3 tasks.py serve [args]         set up .venv if needed, start the service (embedded)
    python3 tasks.py test [pytest args]   set up .venv if needed, run the whole test suite
    python3 tasks.py lint                 ruff check, ruff format --check, mypy
    python3 tasks.py bench NAME [args]    run bench/NAME.py (e.g. ledgerstore)

The virtual environment lives in .venv and is reinstalled when pyproject.toml changes.
"""

from __future__ import annotations

import hashlib
import os
import signal
import subprocess
import sys
import venv
from pathlib import Path

ROOT = Path(__file__).resolve().parent
VENV = ROOT / ".venv"
BIN = VENV / ("Scripts" if os.name == "nt" else "bin")
PYTHON = BIN / "python"
STAMP = VENV / ".installed-from"
TYPED_PACKAGES = [
    "sdk/ledgerstore",
    "sdk/body_limit",
    "sdk/sapixdb",
    "sdk/genesisdb",
    "service/decisiontrail",
    "integrations/client/decisiontrail_client",
    "integrations/langchain/decisiontrail_langchain",
    "integrations/otel/decisiontrail_otel",
]


def run(*args: str | Path) -> int:
    return subprocess.call([str(a) for a in args], cwd=ROOT)


def ensure_environment() -> None:
    """Create .venv and install the project with its dev extras, once per pyproject change."""
    if sys.version_info < (3, 11):  # noqa: UP036 - this script may run on an older python3
        sys.exit("DecisionTrail needs Python 3.11 or newer")
    wanted = hashlib.sha256((ROOT / "pyproject.toml").read_bytes()).hexdigest()
    if PYTHON.exists() and STAMP.exists() and STAMP.read_text() == wanted:
        return
    if not PYTHON.exists():
        print("creating .venv …", flush=True)
        venv.EnvBuilder(with_pip=True).create(VENV)
    print("installing decisiontrail with its dev extras into .venv …", flush=True)
    quiet = ["-q"] if os.environ.get("CI") else []
    for step in (
        [PYTHON, "-m", "pip", "install", *quiet, "--upgrade", "pip"],
        [PYTHON, "-m", "pip", "install", *quiet, "-e", f"{ROOT}[dev]"],
    ):
        if run(*step):
            sys.exit("installing the project failed")
    STAMP.write_text(wanted)


def serve(args: list[str]) -> int:
    """Run the service until it stops. Ctrl-C (SIGINT) and SIGTERM are passed on to it and
    waited for: the service closes its stores and workers itself (subprocess.call would kill
    it 0.25 s after the interrupt, leaving its databases' WAL and its workers behind)."""
    ensure_environment()
    child = subprocess.Popen([str(BIN / "decisiontrail"), "serve", *args], cwd=ROOT)

    def forward(signum: int, frame: object) -> None:
        if child.poll() is None:
            child.send_signal(signum)

    signal.signal(signal.SIGTERM, forward)
    while True:
        try:
            return child.wait()
        except KeyboardInterrupt:
            # A terminal's Ctrl-C reaches the child too; a SIGINT sent to this process alone
            # does not. Either way the child gets one, and a second Ctrl-C forces its exit.
            forward(signal.SIGINT, None)


def test(args: list[str]) -> int:
    ensure_environment()
    return run(PYTHON, "-m", "pytest", *args)


def lint() -> int:
    ensure_environment()
    failed = 0
    failed |= run(BIN / "ruff", "check", ".")
    failed |= run(BIN / "ruff", "format", "--check", ".")
    failed |= run(BIN / "mypy", *TYPED_PACKAGES)
    return 1 if failed else 0


def bench(args: list[str]) -> int:
    if not args:
        names = sorted(p.stem for p in (ROOT / "bench").glob("*.py") if not p.stem.startswith("_"))
        sys.exit(f"usage: python3 tasks.py bench NAME [args]  (NAME: {', '.join(names)})")
    ensure_environment()
    return run(PYTHON, ROOT / "bench" / f"{args[0]}.py", *args[1:])


def main(argv: list[str]) -> int:
    command, args = (argv[0], argv[1:]) if argv else ("help", [])
    if command == "serve":
        return serve(args)
    if command == "test":
        return test(args)
    if command == "lint":
        return lint()
    if command == "bench":
        return bench(args)
    print(__doc__)
    return 0 if command in ("help", "-h", "--help") else 2


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

"""A throwaway PostgreSQL cluster for tests: initdb into a temporary directory, start it on a
free port on 127.0.0.1, and stop and delete it afterwards.

PostgreSQL refuses to run as root, so as root the server runs as the ``postgres`` user (via
``runuser``) on a data directory that user owns.
"""

from __future__ import annotations

import glob
import os
import pwd
import shutil
import subprocess
import tempfile
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import psycopg

from tests.ports import free_port


class ClusterUnavailable(RuntimeError):
    """No PostgreSQL server could be started here."""


def find_bindir() -> Path:
    candidates = sorted(glob.glob("/usr/lib/postgresql/*/bin"), key=lambda p: int(p.split("/")[4]))
    for candidate in reversed(candidates):
        if (Path(candidate) / "pg_ctl").exists():
            return Path(candidate)
    found = shutil.which("pg_ctl")
    if found:
        return Path(found).resolve().parent
    raise ClusterUnavailable("no PostgreSQL binaries found (install Debian's postgresql package)")


@dataclass
class Cluster:
    bindir: Path
    root: Path
    port: int
    run_as: str | None

    @property
    def data_dir(self) -> Path:
        return self.root / "data"

    def url(self, database: str = "postgres") -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/{database}"

    def _run(self, args: Sequence[str]) -> subprocess.CompletedProcess[str]:
        command = list(args)
        if self.run_as:
            command = ["runuser", "-u", self.run_as, "--", *command]
        return subprocess.run(command, capture_output=True, text=True, timeout=120, check=False)

    def start(self) -> None:
        init = self._run(
            [str(self.bindir / "initdb"), "-D", str(self.data_dir), "-U", "postgres", "-A", "trust",
             "-E", "UTF8", "--no-sync", "--locale=C.UTF-8"]
        )  # fmt: skip
        if init.returncode:
            raise ClusterUnavailable(f"initdb failed: {init.stderr.strip()[-500:]}")
        options = (
            f"-p {self.port} -k {self.root} -c listen_addresses=127.0.0.1 -c max_connections=200 "
            "-c wal_recycle=off -c shared_buffers=64MB"
        )
        start = self._run(
            [str(self.bindir / "pg_ctl"), "-D", str(self.data_dir), "-o", options,
             "-l", str(self.root / "server.log"), "-w", "-t", "60", "start"]
        )  # fmt: skip
        if start.returncode:
            log = (self.root / "server.log").read_text(errors="replace")[-800:]
            raise ClusterUnavailable(f"pg_ctl start failed: {start.stderr.strip()} {log}")

    def stop(self) -> None:
        self._run(
            [str(self.bindir / "pg_ctl"), "-D", str(self.data_dir), "-m", "immediate", "stop"]
        )
        shutil.rmtree(self.root, ignore_errors=True)

    def create_database(self) -> str:
        name = "t_" + uuid.uuid4().hex[:12]
        with psycopg.connect(self.url(), autocommit=True) as conn:
            conn.execute(f'CREATE DATABASE "{name}"')
        return name

    def drop_database(self, name: str) -> None:
        with psycopg.connect(self.url(), autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')

    def execute(self, database: str, statement: str, params: Sequence[object] = ()) -> None:
        with psycopg.connect(self.url(database), autocommit=True) as conn:
            conn.execute(statement, params)  # type: ignore[arg-type]


def start_cluster() -> Cluster:
    bindir = find_bindir()
    run_as = None
    root = Path(tempfile.mkdtemp(prefix="decisiontrail-pg-"))
    if os.geteuid() == 0:
        try:
            user = pwd.getpwnam("postgres")
        except KeyError:
            raise ClusterUnavailable("running as root and there is no postgres user") from None
        os.chown(root, user.pw_uid, user.pw_gid)
        run_as = "postgres"
    cluster = Cluster(bindir, root, free_port(), run_as)
    try:
        cluster.start()
    except BaseException:
        shutil.rmtree(root, ignore_errors=True)
        raise
    return cluster

"""The client across process boundaries: fork, interpreter exit, and a light install that does
not bring the service along."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from tests.integrations.conftest import Trail

ROOT = Path(__file__).resolve().parents[2]


def run_python(code: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)], capture_output=True, text=True,
        timeout=timeout, cwd=ROOT,
    )  # fmt: skip


@pytest.mark.parametrize("started_before_fork", [True, False])
def test_fork_child_starts_its_own_sender(
    trail: Trail, tmp_path: Path, started_before_fork: bool
) -> None:
    """Like gunicorn --preload: a client made (and maybe used) before fork; the child sends its
    own records without hanging, and nothing of the parent's is sent twice."""
    agent = f"forked-{started_before_fork}"
    result = run_python(f"""
        import os
        from decisiontrail_client import DecisionTrail

        client = DecisionTrail({trail.url!r}, {trail.key!r}, spool_dir={str(tmp_path)!r})
        def d(who, i):
            return {{"agent": {agent!r}, "action": who, "run_id": f"{{who}}-{{i}}"}}
        if {started_before_fork!r}:
            client.record_batch([d("parent-before", i) for i in range(5)])
        pid = os.fork()
        if pid == 0:
            client.record_batch([d("child", i) for i in range(7)])
            os._exit(0 if client.flush(timeout=60).complete else 3)
        _, status = os.waitpid(pid, 0)
        client.record_batch([d("parent-after", i) for i in range(3)])
        print(os.waitstatus_to_exitcode(status), client.flush(timeout=60).complete)
    """)
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["0", "True"], result.stderr
    actions = [r["decision"]["action"] for r in trail.decisions(agent)]
    expected = {"child": 7, "parent-after": 3, "parent-before": 5 if started_before_fork else 0}
    assert {name: actions.count(name) for name in expected} == expected, result.stderr
    assert len(actions) == sum(expected.values())


def test_records_are_flushed_at_interpreter_exit(trail: Trail, tmp_path: Path) -> None:
    result = run_python(f"""
        from decisiontrail_client import DecisionTrail

        client = DecisionTrail({trail.url!r}, {trail.key!r}, spool_dir={str(tmp_path)!r})
        for i in range(20):
            client.record({{"agent": "exiting", "action": "a", "run_id": f"exit-{{i}}"}})
        # no flush, no close: the process just ends
    """)
    assert result.returncode == 0, result.stderr
    assert len(trail.decisions("exiting")) == 20


def test_integrations_do_not_import_the_service() -> None:
    result = run_python("""
        import sys
        import decisiontrail_client, decisiontrail_langchain, decisiontrail_otel
        heavy = {"fastapi", "uvicorn", "starlette", "decisiontrail", "ledgerstore", "sapixdb",
                 "genesisdb"}
        print(sorted(heavy & set(sys.modules)))
    """)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "[]"


@pytest.mark.slow
def test_pip_install_of_the_handler_does_not_install_the_service(tmp_path: Path) -> None:
    """What ``pip install`` of the LangChain handler and the OTel processor would install."""
    report = tmp_path / "report.json"
    folders = [ROOT / "integrations" / name for name in ("client", "langchain", "otel")]
    result = subprocess.run(
        [sys.executable, "-m", "pip", "install", "--dry-run", "--ignore-installed", "--quiet",
         "--report", str(report), *map(str, folders)],
        capture_output=True, text=True, timeout=600,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    names = {item["metadata"]["name"].lower() for item in json.loads(report.read_text())["install"]}
    assert {"decisiontrail-client", "decisiontrail-langchain", "decisiontrail-otel"} <= names
    assert {"httpx", "langchain-core", "opentelemetry-sdk"} <= names
    assert not names & {"decisiontrail", "fastapi", "uvicorn", "starlette", "psycopg", "lark"}

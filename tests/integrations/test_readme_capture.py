"""The README's capture examples (its ``py`` blocks) run as printed against a real service, in
a configured environment, and their decisions arrive."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from tests.integrations.conftest import Trail

README = Path(__file__).resolve().parents[2] / "README.md"
BLOCKS = re.findall(r"```py\n(.*?)```", README.read_text(), flags=re.S)
AGENTS = {0: "support-bot", 1: "otel-bot", 2: "otlp-bot"}


def test_readme_has_three_capture_examples() -> None:
    assert len(BLOCKS) == len(AGENTS)


@pytest.mark.parametrize("index", sorted(AGENTS))
def test_capture_example_runs_and_records(index: int, trail: Trail, tmp_path: Path) -> None:
    env = {**os.environ, "DECISIONTRAIL_URL": trail.url, "DECISIONTRAIL_API_KEY": trail.key,
           "DECISIONTRAIL_SPOOL_DIR": str(tmp_path / "spool")}  # fmt: skip
    result = subprocess.run(
        [sys.executable, "-c", BLOCKS[index]], env=env, cwd=tmp_path, capture_output=True,
        text=True, timeout=120,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    decisions = [r["decision"] for r in trail.decisions(AGENTS[index])]
    assert decisions
    if index == 0:
        assert "Refund approved for order 42." in result.stdout
        assert "pending=0, spooled=0" in result.stdout
        assert {d["kind"] for d in decisions} == {"chain", "llm_call"}
    elif index == 1:
        (decision,) = decisions
        assert decision["model"]["name"] == "gpt-4o" and decision["usage"]["input_tokens"] == 42
    else:
        (decision,) = decisions
        assert decision["kind"] == "tool_call" and decision["action"] == "lookup_order"
        assert decision["output"] == {"result": "shipped"}

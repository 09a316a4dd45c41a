"""The README's examples run as printed: the Python blocks in a scratch directory, the shell
tour against a real service."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import pytest

from tests.service.server_process import make_server

README = Path(__file__).resolve().parents[1] / "README.md"
BLOCKS = re.findall(r"```python\n(.*?)```", README.read_text(), flags=re.S)


@pytest.mark.parametrize("block", BLOCKS, ids=[f"block{i}" for i in range(len(BLOCKS))])
def test_readme_example_runs(block: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    namespace: dict[str, object] = {}
    exec(compile(block, str(README), "exec"), namespace)
    assert namespace, "the example defined nothing"


def test_readme_has_examples() -> None:
    assert BLOCKS


SHELL_BLOCKS = re.findall(r"```sh\n(.*?)```", README.read_text(), flags=re.S)
TOUR = next(block for block in SHELL_BLOCKS if block.startswith("KEY=dtk_"))
KEY_COMMAND = next(
    line for block in SHELL_BLOCKS for line in block.splitlines() if " keys create " in line
)


@pytest.mark.slow
def test_readme_shell_tour_runs_as_printed(tmp_path: Path) -> None:
    """The key command and the curl tour, against a real service; only the key and the port
    differ from what the README prints."""
    server = make_server(tmp_path)
    server.start()
    try:
        root = README.parent
        created = subprocess.run(
            ["bash", "-c", KEY_COMMAND], cwd=root, env=server.env, capture_output=True,
            text=True, timeout=120, check=True,
        )  # fmt: skip
        key = next(line for line in created.stdout.splitlines() if line.startswith("dtk_"))
        script = TOUR.replace("KEY=dtk_…", f"KEY={key}").replace(
            "localhost:8700", f"localhost:{server.port}"
        )
        tour = subprocess.run(
            ["bash", "-euo", "pipefail", "-c", script], cwd=tmp_path, env=server.env,
            capture_output=True, text=True, timeout=120,
        )  # fmt: skip
    finally:
        server.stop()
    assert tour.returncode == 0, tour.stderr
    output = tour.stdout
    assert "decisiontrail.dev/problems" not in output, output  # no error answered
    assert '"count": 2' in output  # the batch
    assert '"run_id": "r1"' in output  # the provenance of $ID
    assert '"note_verifier_key"' in output  # the trust root
    assert '"ok": true' in output  # the verification
    assert '"values_erased": ' in output  # the erasure receipt

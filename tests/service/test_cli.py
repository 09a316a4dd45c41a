from __future__ import annotations

import asyncio
import gzip
import json
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from decisiontrail.cli import app
from decisiontrail.config import Settings
from decisiontrail.ledger import PreparedDecision
from decisiontrail.state import ServiceState

runner = CliRunner()


@pytest.fixture(autouse=True)
def data_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("DECISIONTRAIL_DATA_DIR", str(tmp_path / "data"))
    return tmp_path / "data"


def record(count: int, tenant: str = "default") -> str:
    """Record decisions through the service's own ledger; returns a checkpoint note."""

    async def work() -> str:
        state = await ServiceState.open(Settings())
        try:
            for i in range(count):
                body = {"agent": f"bot{i % 2}", "action": f"act {i}", "input": "Alice"}
                await state.ledger.writer.record(tenant, [PreparedDecision(body, ["input"])])
            return (await state.ledger.tree.checkpoint(tenant)).note
        finally:
            await state.close()

    return asyncio.run(work())


def test_keys_create_list_revoke() -> None:
    created = runner.invoke(app, ["keys", "create", "--tenant", "acme", "--scope", "read"])
    assert created.exit_code == 0, created.output
    key_line = next(line for line in created.stdout.splitlines() if line.startswith("dtk_"))
    key_id = key_line.split("_")[1]
    listed = runner.invoke(app, ["keys", "list", "--tenant", "acme"])
    assert key_id[:8] in listed.stdout and key_line.split("_")[2] not in listed.stdout
    assert runner.invoke(app, ["keys", "revoke", key_id]).exit_code == 0
    assert runner.invoke(app, ["keys", "revoke", "0" * 16]).exit_code == 1


def test_export_and_verify_offline(tmp_path: Path) -> None:
    note = record(30)
    (tmp_path / "trusted.note").write_text(note)
    assert runner.invoke(app, ["export", "--output", "bundle.jsonl.gz"]).exit_code == 0
    trust = runner.invoke(app, ["signing-keys", "export", "--output", "trust.json"])
    assert trust.exit_code == 0
    public = json.loads((tmp_path / "trust.json").read_text())["keys"][0]["public_key"]
    (tmp_path / "key.pub").write_text(public)
    ok = runner.invoke(app, ["verify", "--bundle", "bundle.jsonl.gz", "--public-key", "key.pub",
                             "--trusted-checkpoint", "trusted.note"])  # fmt: skip
    assert ok.exit_code == 0, ok.output
    assert json.loads(ok.stdout)["records_checked"] == 30


def _rewrite(path: Path, edit: object) -> None:
    lines = gzip.decompress(path.read_bytes()).decode().splitlines()
    items = [json.loads(line) for line in lines]
    items = edit(items)  # type: ignore[operator]
    path.write_bytes(gzip.compress("".join(json.dumps(i) + "\n" for i in items).encode()))


def _break_a_link(items: list[dict[str, Any]]) -> list[dict[str, Any]]:
    for item in items:
        record = item.get("record")
        if record and record["chain"] == "bot0" and record["sequence"] == 3:
            record["prev_hash"] = "0" * 64
    return items


@pytest.mark.parametrize(
    ("edit", "reason"), [(_break_a_link, "modified"), (lambda items: items[:-5], "truncated")]
)
def test_a_tampered_bundle_fails_with_the_reason(tmp_path: Path, edit: object, reason: str) -> None:
    note = record(20)
    (tmp_path / "trusted.note").write_text(note)
    runner.invoke(app, ["export", "--output", "b.jsonl.gz"])
    runner.invoke(app, ["signing-keys", "export", "--output", "trust.json"])
    _rewrite(tmp_path / "b.jsonl.gz", edit)
    result = runner.invoke(app, ["verify", "--bundle", "b.jsonl.gz", "--trust-root", "trust.json",
                                 "--trusted-checkpoint", "trusted.note"])  # fmt: skip
    assert result.exit_code == 1
    assert json.loads(result.stdout)["first_problem"]["reason"] == reason


def test_online_verify_and_key_rotation(tmp_path: Path) -> None:
    record(5)
    assert runner.invoke(app, ["verify"]).exit_code == 0
    assert runner.invoke(app, ["signing-keys", "rotate"]).exit_code == 0
    record(5)
    exported = runner.invoke(app, ["signing-keys", "export"])
    assert len(json.loads(exported.stdout)["keys"]) == 2
    assert runner.invoke(app, ["verify"]).exit_code == 0


def test_report_writes_a_signed_report_in_each_format(tmp_path: Path) -> None:
    record(4)
    for kind in ("json", "csv", "html"):
        out = tmp_path / f"report.{kind}"
        result = runner.invoke(app, ["report", "--output", str(out), "--format", kind])
        assert result.exit_code == 0, result.output
        assert "signed by" in result.output
        text = out.read_text()
        assert "Alice" not in text
        if kind == "json":
            body = json.loads(text)
            assert body["report"]["total_decisions"] == 4 and body["report"]["verification_ok"]
            assert set(body["signature"]) == {"sha256", "key_id", "signature"}
        elif kind == "html":
            assert text.lstrip().lower().startswith("<!doctype html")
        else:
            assert "bot0" in text
    bad = runner.invoke(
        app, ["report", "--output", "-", "--from", "2030-01-01", "--to", "2029-01-01"]
    )
    assert bad.exit_code == 2


def test_verify_checks_both_stores(tmp_path: Path) -> None:
    record(3)
    result = runner.invoke(app, ["verify"])
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert report["ok"] and report["stores"]["decisions_compared"] == 3


def test_verify_of_a_tenant_without_records_says_so_and_fails() -> None:
    record(2)
    result = runner.invoke(app, ["verify", "--tenant", "nosuch"])
    assert result.exit_code == 1
    assert "has no records" in " ".join(result.stderr.split())


def test_a_bundle_without_an_independent_key_fails_closed(tmp_path: Path) -> None:
    record(3)
    assert runner.invoke(app, ["export", "--output", "bundle.jsonl"]).exit_code == 0
    alone = runner.invoke(app, ["verify", "--bundle", "bundle.jsonl"])
    assert alone.exit_code == 3, alone.output
    assert "internally consistent" in " ".join(alone.stderr.split())
    accepted = runner.invoke(app, ["verify", "--bundle", "bundle.jsonl", "--trust-bundled-key"])
    assert accepted.exit_code == 0, accepted.output


def test_a_signed_report_is_verified_with_the_trust_root(tmp_path: Path) -> None:
    record(4)
    made = runner.invoke(app, ["report", "--output", "report.json", "--format", "json"])
    assert made.exit_code == 0, made.output
    assert runner.invoke(app, ["signing-keys", "export", "--output", "trust.json"]).exit_code == 0
    # A report given where a bundle is expected: a clear message, no traceback.
    mistaken = runner.invoke(app, ["verify", "--bundle", "report.json"])
    assert mistaken.exit_code == 2 and "Traceback" not in mistaken.output
    assert "use --report" in mistaken.stderr
    args = ["verify", "--report", "report.json", "--trust-root", "trust.json"]
    verified = runner.invoke(app, args)
    assert verified.exit_code == 0, verified.output
    document = json.loads((tmp_path / "report.json").read_text())
    document["report"]["total_decisions"] += 1
    (tmp_path / "report.json").write_text(json.dumps(document))
    changed = runner.invoke(app, args)
    assert changed.exit_code == 1 and json.loads(changed.stdout)["first_problem"]["reason"] == (
        "modified"
    )
    keyless = runner.invoke(app, ["verify", "--report", "report.json"])
    assert keyless.exit_code == 2


def test_keys_for_an_unsafe_tenant_name_are_refused() -> None:
    created = runner.invoke(app, ["keys", "create", "--tenant", "acme:eu", "--scope", "read"])
    assert created.exit_code == 2 and "a-z 0-9 _ -" in created.stderr

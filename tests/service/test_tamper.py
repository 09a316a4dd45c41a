"""Tampering with the stored trail, the way someone with access to the files would, and the
verifiers catching it: ``POST /v1/verify`` online, and ``decisiontrail export`` followed by the
offline ``decisiontrail verify --bundle`` with the public key and a trusted checkpoint the
caller kept. Both name the first bad record and why.

The service is stopped before each change and started again after it; the change is made with
the ``sqlite3`` module on Genesis DB's file (``tests/service/rawdb.py``), or on the exported
bundle. The trail, tenant ``acme``, in log order (index: chain #sequence)::

    0: bot #0   1: bot #1   2: triage #0   3: bot #2   4: bot #3   5: triage #1   6: bot #4

with a signed checkpoint stored at size 4 and one at size 7, which the caller also keeps.
"""

from __future__ import annotations

import asyncio
import json
import shutil
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import uuid_utils
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from typer.testing import CliRunner

from decisiontrail.apikeys import Scope
from decisiontrail.cli import app as cli
from decisiontrail.records import record_hash, seal
from decisiontrail.signing import Keyring
from tests.service import rawdb
from tests.service.inprocess import running

TENANT = "acme"
CHAINS = ["bot", "bot", "triage", "bot", "bot", "triage", "bot"]
SEQUENCES = [0, 1, 0, 2, 3, 1, 4]
OLDER_SIZE = 4
runner = CliRunner()


@dataclass
class Trail:
    root: Path  # the test's directory: data/, the kept checkpoints, the key, bundles
    ids: list[str]  # acme's decisions in log order
    records: list[dict[str, Any]]
    trusted: Path  # a checkpoint note of all 7 records, kept by the caller
    older: Path  # a checkpoint note of the first 4
    public_key: Path  # the service's public key, obtained out of band
    backup: Path  # copies of the database files when the log had 4 records
    foreign: dict[str, Any]  # a record of another tenant
    auditor: dict[str, str]  # an audit key, made before anything is tampered with (a forged
    # entry leaves Genesis DB unable to commit anything, a new key included)

    @property
    def data_dir(self) -> Path:
        return self.root / "data"

    @property
    def genesis(self) -> Path:
        return rawdb.genesis_file(self.data_dir)


async def _append(data_dir: Path, start: int, stop: int, **changes: Any) -> list[dict[str, Any]]:
    """Record decisions ``start``..``stop - 1`` of the layout; their receipts, then the
    checkpoint issued (and stored) right after, then headers with an audit key."""
    async with running(data_dir) as service:
        writer = await service.key(TENANT, Scope.INGEST)
        auditor = await service.key(TENANT, Scope.READ, Scope.AUDIT)
        receipts = [
            await service.record(writer, agent=CHAINS[i], action=f"step {i}", **changes)
            for i in range(start, stop)
        ]
        await service.state.ledger.tree.issue_checkpoint(TENANT)  # as the periodic issuer does
        checkpoint = await service.client.get("/v1/checkpoints/latest", headers=auditor)
        assert checkpoint.json()["size"] == stop, checkpoint.text
        return [*receipts, checkpoint.json(), auditor]


@pytest.fixture
def trail(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Trail:
    monkeypatch.chdir(tmp_path)  # the CLI reads .env from here
    monkeypatch.setenv("DECISIONTRAIL_DATA_DIR", str(tmp_path / "data"))
    data_dir = tmp_path / "data"
    *first, older, auditor = asyncio.run(_append(data_dir, 0, OLDER_SIZE))
    backup = tmp_path / "backup"
    backup.mkdir()
    for path in rawdb.database_files(data_dir):
        shutil.copy2(path, backup / path.name)
    *rest, trusted, _ = asyncio.run(_append(data_dir, OLDER_SIZE, len(CHAINS)))

    async def read() -> tuple[list[dict[str, Any]], dict[str, Any], str]:
        async with running(data_dir) as service:
            reader = await service.key(TENANT, Scope.READ)
            records = []
            for receipt in [*first, *rest]:
                got = await service.client.get(f"/v1/decisions/{receipt['id']}", headers=reader)
                records.append(got.json()["record"])
            foreign = await service.record(await service.key("globex", Scope.INGEST))
            got = await service.client.get(
                f"/v1/decisions/{foreign['id']}", headers=await service.key("globex", Scope.READ)
            )
            public = service.state.keyring.trust.to_json()["keys"][0]["public_key"]
            return records, got.json()["record"], public

    records, foreign, public = asyncio.run(read())
    assert [(r["chain"], r["sequence"]) for r in records] == list(
        zip(CHAINS, SEQUENCES, strict=True)
    )
    (tmp_path / "trusted.note").write_text(trusted["note"])
    (tmp_path / "older.note").write_text(older["note"])
    (tmp_path / "key.pub").write_text(public)
    return Trail(
        tmp_path, [r["id"] for r in records], records, tmp_path / "trusted.note",
        tmp_path / "older.note", tmp_path / "key.pub", backup, foreign, auditor,
    )  # fmt: skip


# --- the two verifiers ---------------------------------------------------------------------


def verify_online(trail: Trail, trusted: Path | None = None) -> dict[str, Any]:
    async def work() -> dict[str, Any]:
        async with running(trail.data_dir) as service:
            body = {"trusted_checkpoint": trusted.read_text()} if trusted else {}
            response = await service.client.post("/v1/verify", json=body, headers=trail.auditor)
            assert response.status_code == 200, response.text
            report: dict[str, Any] = response.json()
            return report

    return asyncio.run(work())


def export(trail: Trail, name: str = "bundle.jsonl") -> Path:
    path = trail.root / name
    result = runner.invoke(cli, ["export", "--output", str(path), "--tenant", TENANT])
    assert result.exit_code == 0, result.output
    return path


def verify_bundle(
    trail: Trail,
    bundle: Path,
    trusted: Path | None = None,
    *,
    public_key: bool = True,
    extra: list[str] | None = None,
) -> tuple[int, dict[str, Any] | None, str]:
    """The exit code, the JSON report (None if the bundle could not be verified) and stderr."""
    args = ["verify", "--bundle", str(bundle), *(extra or [])]
    args += ["--public-key", str(trail.public_key)] if public_key else []
    args += ["--trusted-checkpoint", str(trusted)] if trusted else []
    result = runner.invoke(cli, args)
    report = json.loads(result.stdout) if result.stdout.strip().startswith("{") else None
    return result.exit_code, report, result.stderr


def verify_both(trail: Trail, trusted: Path | None) -> dict[str, Any]:
    """Online and offline (export, then verify the bundle) must agree on the first problem."""
    online = verify_online(trail, trusted)
    code, offline, errors = verify_bundle(trail, export(trail), trusted)
    assert offline is not None, errors
    assert code == (0 if offline["ok"] else 1)
    assert online["ok"] == offline["ok"], (online, offline)
    assert online["first_problem"] == offline["first_problem"], (online, offline)
    return online


def first_problem(report: dict[str, Any]) -> dict[str, Any]:
    assert report["ok"] is False, report
    problem: dict[str, Any] = report["first_problem"]
    return problem


# --- tampering with the database file ------------------------------------------------------


def rows(trail: Trail) -> list[int]:
    """The positions of acme's decision events, in log order."""
    with rawdb.connect(trail.genesis) as conn:
        found = rawdb.decision_rows(conn)
    positions = [p for p, stored in found if stored["data"]["record"]["tenant"] == TENANT]
    assert len(positions) == len(CHAINS)
    return positions


def edit_record(trail: Trail, index: int, change: Callable[[dict[str, Any]], None]) -> None:
    position = rows(trail)[index]
    with rawdb.connect(trail.genesis) as conn:
        stored = dict(rawdb.decision_rows(conn))[position]
        change(stored["data"]["record"])
        rawdb.write_payload(conn, position, stored)


def test_the_untouched_trail_verifies_everywhere(trail: Trail) -> None:
    report = verify_both(trail, trail.trusted)
    assert report["ok"] and report["records_checked"] == 7 and report["tree_size"] == 7
    assert report["checkpoints_checked"] >= 3  # stored at 4 and 7, and the trusted one
    assert verify_online(trail, trail.older)["ok"]


def test_an_updated_decision_is_modified(trail: Trail) -> None:
    edit_record(trail, 3, lambda record: record["decision"].update(action="no refund"))
    problem = first_problem(verify_both(trail, trail.trusted))
    assert problem["reason"] == "modified"
    assert (problem["record_id"], problem["sequence"]) == (trail.ids[3], 2)


def test_an_update_with_a_recomputed_hash_has_a_bad_signature(trail: Trail) -> None:
    def rewrite(record: dict[str, Any]) -> None:
        record["decision"]["action"] = "no refund"
        record["hash"] = record_hash(record)

    edit_record(trail, 3, rewrite)
    problem = first_problem(verify_both(trail, trail.trusted))
    assert problem["reason"] == "bad_signature"
    assert (problem["record_id"], problem["sequence"]) == (trail.ids[3], 2)


def test_an_update_resigned_with_another_key_has_a_bad_signature(trail: Trail) -> None:
    forger = Keyring.from_private_key(Ed25519PrivateKey.generate(), "decisiontrail.local")

    def resign(record: dict[str, Any]) -> None:
        decision = {**record["decision"], "action": "no refund"}
        record.update(forge(record, forger, decision=decision))

    edit_record(trail, 3, resign)
    problem = first_problem(verify_both(trail, trail.trusted))
    assert problem["reason"] == "bad_signature"
    assert (problem["record_id"], problem["sequence"]) == (trail.ids[3], 2)


def test_a_deleted_decision_is_missing(trail: Trail) -> None:
    with rawdb.connect(trail.genesis) as conn:
        rawdb.delete_rows(conn, [rows(trail)[3]])
    problem = first_problem(verify_both(trail, trail.trusted))
    assert problem["reason"] == "missing"
    # named: the record where the gap shows (bot #3) and the sequence that is missing (#2)
    assert (problem["record_id"], problem["sequence"]) == (trail.ids[4], 2)
    assert "2–2" in problem["detail"]


def test_two_swapped_decisions_of_one_chain_are_caught_at_the_first(trail: Trail) -> None:
    positions = rows(trail)
    with rawdb.connect(trail.genesis) as conn:
        rawdb.swap_rows(conn, positions[3], positions[4])
    problem = first_problem(verify_both(trail, trail.trusted))
    assert problem["record_id"] == trail.ids[4]  # bot #3, now where bot #2 was
    assert problem["reason"] in ("missing", "reordered")


def test_two_swapped_decisions_of_one_chain_are_reordered(trail: Trail) -> None:
    positions = rows(trail)
    with rawdb.connect(trail.genesis) as conn:
        rawdb.swap_rows(conn, positions[3], positions[4])
    assert first_problem(verify_online(trail, trail.trusted))["reason"] == "reordered"


def test_decisions_swapped_across_chains_are_reordered(trail: Trail) -> None:
    positions = rows(trail)
    with rawdb.connect(trail.genesis) as conn:
        rawdb.swap_rows(conn, positions[1], positions[2])  # bot #1 <-> triage #0
    problem = first_problem(verify_both(trail, trail.trusted))
    assert problem["reason"] == "reordered"  # each chain links; the log position does not
    assert problem["record_id"] == trail.ids[2]


def test_decisions_swapped_across_chains_are_caught_without_checkpoints(trail: Trail) -> None:
    positions = rows(trail)
    with rawdb.connect(trail.genesis) as conn:
        rawdb.swap_rows(conn, positions[1], positions[2])
        assert rawdb.delete_checkpoints(conn) == 2
    problem = first_problem(verify_online(trail))
    assert problem["record_id"] == trail.ids[2]


def test_an_appended_copy_of_a_decision_is_inserted(trail: Trail) -> None:
    positions = rows(trail)
    with rawdb.connect(trail.genesis) as conn:
        stored = dict(rawdb.decision_rows(conn))[positions[3]]
        subject = f"/tenants/{TENANT}/agents/bot/decisions/{trail.ids[3]}"
        replay = {**stored, "data": {**stored["data"], "log_index": 7}}
        rawdb.append_copy(conn, positions[3], replay, subject)
    problem = first_problem(verify_both(trail, trail.trusted))
    assert problem["reason"] == "inserted"
    assert (problem["record_id"], problem["sequence"]) == (trail.ids[3], 2)


def test_a_forged_decision_linked_into_a_chain_has_a_bad_signature(trail: Trail) -> None:
    forger = Keyring.from_private_key(Ed25519PrivateKey.generate(), "decisiontrail.local")
    last = trail.records[6]  # bot #4
    forged = forge(last, forger, record_id=str(uuid_utils.uuid7()), sequence=5,
                   prev_hash=last["hash"])  # fmt: skip
    append_record(trail, forged, log_index=7)
    problem = first_problem(verify_both(trail, trail.trusted))
    assert problem["reason"] == "bad_signature"
    assert (problem["record_id"], problem["sequence"]) == (forged["id"], 5)


def test_another_tenants_decision_slipped_in_is_replayed(trail: Trail) -> None:
    append_record(trail, trail.foreign, log_index=7)
    problem = first_problem(verify_both(trail, trail.trusted))
    assert problem["reason"] == "replayed"
    assert problem["record_id"] == trail.foreign["id"]


def test_a_cut_tail_is_caught_by_the_stored_checkpoint(trail: Trail) -> None:
    with rawdb.connect(trail.genesis) as conn:
        rawdb.delete_rows(conn, rows(trail)[5:])
    problem = first_problem(verify_both(trail, None))
    assert problem["reason"] == "truncated" and problem["record_id"] is None
    assert "covers 7 records but the log has 5" in problem["detail"]


def test_a_cut_tail_with_its_checkpoints_is_caught_by_the_trusted_one(trail: Trail) -> None:
    with rawdb.connect(trail.genesis) as conn:
        rawdb.delete_rows(conn, rows(trail)[5:])
        assert rawdb.delete_checkpoints(conn) == 2
    online = verify_online(trail, trail.trusted)
    problem = first_problem(online)
    assert problem["reason"] == "truncated"
    assert "covers 7 records but the log has 5" in problem["detail"]
    code, offline, _ = verify_bundle(trail, export(trail), trail.trusted)
    assert code == 1 and offline is not None
    assert offline["first_problem"]["reason"] == "truncated"


def restore_backup(trail: Trail) -> None:
    """Put back the copy of every database file taken when the log had 4 records."""
    for path in trail.data_dir.glob("*.db*"):
        path.unlink()
    for path in trail.backup.iterdir():
        shutil.copy2(path, trail.data_dir / path.name)


def test_an_older_copy_of_the_database_is_caught_by_the_trusted_checkpoint(trail: Trail) -> None:
    restore_backup(trail)
    problem = first_problem(verify_both(trail, trail.trusted))
    assert problem["reason"] == "truncated"
    assert "covers 7 records but the log has 4" in problem["detail"]
    # ...while the older copy is consistent with what was trusted back then
    assert verify_online(trail, trail.older)["ok"] is True


def test_an_older_copy_written_on_anew_forks_from_the_trusted_checkpoint(trail: Trail) -> None:
    restore_backup(trail)
    asyncio.run(_append(trail.data_dir, OLDER_SIZE, len(CHAINS), input="a different story"))
    problem = first_problem(verify_both(trail, trail.trusted))
    assert problem["reason"] == "checkpoint_mismatch"
    assert "first 7 records" in problem["detail"]
    assert verify_online(trail, trail.older)["ok"] is True  # the shared prefix still holds


def test_a_trusted_checkpoint_from_elsewhere_is_refused(trail: Trail) -> None:
    forger = Keyring.from_private_key(Ed25519PrivateKey.generate(), "decisiontrail.local")
    body = trail.trusted.read_text().split("\n\n", 1)[0] + "\n"
    (trail.root / "forged.note").write_text(forger.sign_note(body.encode()))

    async def work() -> tuple[int, str]:
        async with running(trail.data_dir) as service:
            note = (trail.root / "forged.note").read_text()
            response = await service.client.post(
                "/v1/verify", json={"trusted_checkpoint": note}, headers=trail.auditor
            )
            return response.status_code, response.text

    status, text = asyncio.run(work())
    assert status == 422 and "does not verify" in text
    code, report, errors = verify_bundle(trail, export(trail), trail.root / "forged.note")
    assert code == 1 and report is None and "does not verify" in errors


# --- tampering with the exported bundle ----------------------------------------------------


def bundle_items(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def write_items(path: Path, items: list[dict[str, Any]]) -> None:
    path.write_text("".join(json.dumps(item) + "\n" for item in items))


def record_lines(items: list[dict[str, Any]]) -> list[int]:
    return [i for i, item in enumerate(items) if item["type"] == "record"]


def test_a_changed_record_in_the_bundle_is_modified(trail: Trail) -> None:
    bundle = export(trail)
    items = bundle_items(bundle)
    items[record_lines(items)[3]]["record"]["decision"]["action"] = "no refund"
    write_items(bundle, items)
    code, report, _ = verify_bundle(trail, bundle, trail.trusted)
    assert code == 1 and report is not None
    assert (report["first_problem"]["reason"], report["first_problem"]["record_id"]) == (
        "modified", trail.ids[3],
    )  # fmt: skip


def test_a_dropped_line_in_the_bundle_is_missing(trail: Trail) -> None:
    bundle = export(trail)
    items = bundle_items(bundle)
    del items[record_lines(items)[3]]
    write_items(bundle, items)
    code, report, _ = verify_bundle(trail, bundle, trail.trusted)
    assert code == 1 and report is not None
    problem = report["first_problem"]
    assert (problem["reason"], problem["record_id"], problem["sequence"]) == (
        "missing", trail.ids[4], 2,
    )  # fmt: skip


@pytest.mark.parametrize(
    ("swap", "reasons", "named"),
    [((3, 4), {"missing", "reordered"}, 4), ((1, 2), {"reordered"}, 2)],
    ids=["within-a-chain", "across-chains"],
)
def test_reordered_lines_in_the_bundle_are_caught(
    trail: Trail, swap: tuple[int, int], reasons: set[str], named: int | None
) -> None:
    bundle = export(trail)
    items = bundle_items(bundle)
    lines = record_lines(items)
    first, second = lines[swap[0]], lines[swap[1]]
    items[first], items[second] = items[second], items[first]
    write_items(bundle, items)
    code, report, _ = verify_bundle(trail, bundle, trail.trusted)
    assert code == 1 and report is not None
    assert report["first_problem"]["reason"] in reasons
    assert report["first_problem"]["record_id"] == (None if named is None else trail.ids[named])


def test_a_bundle_cut_short_is_truncated(trail: Trail) -> None:
    bundle = export(trail)
    items = [item for item in bundle_items(bundle) if item["type"] != "checkpoint"]
    items[0]["records"] = 5  # the header agrees with the cut
    write_items(bundle, items[: record_lines(items)[5]])
    code, report, _ = verify_bundle(trail, bundle, trail.trusted)
    assert code == 1 and report is not None
    assert report["first_problem"]["reason"] == "truncated"
    assert verify_bundle(trail, bundle)[0] == 0  # without a trusted checkpoint: undetectable


def test_a_forged_checkpoint_line_makes_the_bundle_unverifiable(trail: Trail) -> None:
    bundle = export(trail)
    items = bundle_items(bundle)
    checkpoint = next(item for item in items if item["type"] == "checkpoint")
    checkpoint["note"] = checkpoint["note"].replace("\n4\n", "\n3\n", 1)
    write_items(bundle, items)
    code, report, errors = verify_bundle(trail, bundle, trail.trusted)
    assert code == 1 and report is None and "does not verify" in errors


def test_a_bundle_resigned_by_a_forger_only_verifies_without_the_public_key(trail: Trail) -> None:
    """The forger re-signs a changed record with their own key, adds that key to the bundled
    trust root and drops the checkpoints. With the public key obtained out of band (or with a
    trusted checkpoint) it fails; trusting the bundle alone, it passes, and the report says
    so."""
    forger = Keyring.from_private_key(Ed25519PrivateKey.generate(), "decisiontrail.local")
    bundle = export(trail)
    items = [item for item in bundle_items(bundle) if item["type"] != "checkpoint"]
    line = record_lines(items)[3]
    record = items[line]["record"]
    items[line]["record"] = forge(record, forger, decision={**record["decision"], "action": "x"})
    keys = forger.trust.to_json()["keys"]
    trust_root = next(item for item in items if item["type"] == "trust_root")
    trust_root["trust_root"]["keys"] += keys
    # the forged record's hash changed, so its successor in the chain must be re-linked too
    relink(items, line, forger)
    write_items(bundle, items)

    code, report, _ = verify_bundle(trail, bundle)
    assert code == 1 and report is not None
    assert report["first_problem"]["reason"] == "bad_signature"
    assert report["first_problem"]["record_id"] == trail.ids[3]

    code, report, _ = verify_bundle(trail, bundle, trail.trusted, public_key=False)
    assert code == 1 and report is not None
    assert report["first_problem"]["reason"] == "checkpoint_mismatch"

    # Without an independent trust root it fails closed: only internal consistency is shown.
    code, report, errors = verify_bundle(trail, bundle, public_key=False)
    assert code == 3 and report is not None and report["used_bundled_trust_root"] is True
    assert report["trust"] == "bundled_key_only"
    assert "proves only that the bundle is internally consistent" in " ".join(errors.split())
    code, report, _ = verify_bundle(trail, bundle, public_key=False, extra=["--trust-bundled-key"])
    assert code == 0 and report is not None and report["ok"] is True


# --- forging -----------------------------------------------------------------------------------


def forge(record: dict[str, Any], keyring: Keyring, **changes: Any) -> dict[str, Any]:
    """``record`` with ``changes``, re-hashed and signed with ``keyring`` (a forger's)."""
    fields = {
        "decision": record["decision"], "record_id": record["id"], "tenant": record["tenant"],
        "chain": record["chain"], "sequence": record["sequence"],
        "prev_hash": record["prev_hash"], **changes,
    }  # fmt: skip
    return seal(**fields, recorded_at=datetime.now(UTC), keyring=keyring)


def relink(items: list[dict[str, Any]], line: int, keyring: Keyring) -> None:
    """Re-sign every later record of the same chain so the chain links again."""
    previous = items[line]["record"]
    for item in items[line + 1 :]:
        record = item.get("record")
        if record is not None and record["chain"] == previous["chain"]:
            item["record"] = forge(record, keyring, prev_hash=previous["hash"])
            previous = item["record"]


def append_record(trail: Trail, record: dict[str, Any], *, log_index: int) -> None:
    """Add a decision event for ``record`` after every other entry of Genesis DB's file."""
    template = rows(trail)[-1]
    with rawdb.connect(trail.genesis) as conn:
        stored = dict(rawdb.decision_rows(conn))[template]
        stored = {**stored, "data": {"record": record, "log_index": log_index}}
        subject = f"/tenants/{TENANT}/agents/{record['chain']}/decisions/{record['id']}"
        rawdb.append_copy(conn, template, stored, subject)


def test_a_cut_tail_with_its_index_and_checkpoints_is_caught_by_the_bookkeeping(
    trail: Trail,
) -> None:
    """The newest decisions go with their index rows and every stored checkpoint; the batch
    and chain-head events (and the engine's own chain) still say the log was longer."""
    with rawdb.connect(trail.genesis) as conn:
        rawdb.delete_rows(conn, rows(trail)[5:])
        index = [f"/tenants/{TENANT}/decisions/{i}" for i in trail.ids[5:]]
        conn.executemany("DELETE FROM ls_entries WHERE subject = ?", [(s,) for s in index])
        assert rawdb.delete_checkpoints(conn) == 2
    report = verify_online(trail)
    problem = first_problem(report)
    assert problem["reason"] == "truncated", report
    assert "say the log holds 7 records but it has 5" in problem["detail"]
    details = " ".join(d["detail"] for d in report["bookkeeping"])
    assert "chain 'bot' has 4 records but the store holds a head after 5 records" in details


def test_a_forged_entry_is_reported_as_corruption_not_contention(trail: Trail) -> None:
    """One row forged into Genesis DB's log leaves the engine unable to commit: a write then
    answers 500 ``store_corrupted`` (and is logged as an error), not 503 "too busy"."""

    async def ingest_key() -> dict[str, str]:
        async with running(trail.data_dir) as service:
            return await service.key(TENANT, Scope.INGEST)

    writer = asyncio.run(ingest_key())  # made before the tampering
    with rawdb.connect(trail.genesis) as conn:
        positions = rows(trail)
        stored = dict(rawdb.decision_rows(conn))[positions[6]]
        subject = f"/tenants/{TENANT}/agents/bot/decisions/{uuid_utils.uuid7()}"
        rawdb.append_copy(conn, positions[6], stored, subject)

    async def work() -> dict[str, Any]:
        async with running(trail.data_dir, store_workers=False) as service:
            answer = await service.client.post(
                "/v1/decisions", json={"agent": "bot", "action": "after"},
                headers=writer,
            )  # fmt: skip
            assert answer.status_code == 500, answer.text
            body: dict[str, Any] = answer.json()
            return body

    assert asyncio.run(work())["code"] == "store_corrupted"

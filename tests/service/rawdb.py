"""The service's database files read (and tampered with) directly through ``sqlite3``, as an
attacker with file access would: no SDK, no service code.

Both SDKs keep every byte in ledgerstore tables (``sdk/ledgerstore/sqlite.py``): ``ls_logs``
(one row per log), ``ls_entries`` (one row per entry: ``payload`` is the stored JSON, ``subject``
and ``type`` are Genesis DB's) and ``ls_side`` (erasable values stored by reference).
"""

from __future__ import annotations

import contextlib
import json
import os
import sqlite3
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

EVENTS_LOG = "genesisdb/events"
DECISION_TYPE = "io.decisiontrail.decision.recorded"
CHECKPOINT_TYPE = "io.decisiontrail.checkpoint"


def database_files(data_dir: Path) -> list[Path]:
    """Every ledgerstore SQLite file of a service's data directory."""
    return sorted(path for path in data_dir.glob("*.db") if path.is_file())


@contextlib.contextmanager
def connect(path: Path, *, readonly: bool = False) -> Iterator[sqlite3.Connection]:
    uri = f"file:{path}?mode=ro" if readonly else f"file:{path}"
    conn = sqlite3.connect(uri, uri=True, isolation_level=None)
    try:
        yield conn
    finally:
        conn.close()


def stored_rows(data_dir: Path) -> dict[str, int]:
    """How many entries and side values each database file holds: any write changes this."""
    counts: dict[str, int] = {}
    for path in database_files(data_dir):
        with connect(path, readonly=True) as conn:
            for table in ("ls_entries", "ls_side"):
                (count,) = conn.execute(f"SELECT count(*) FROM {table}").fetchone()
                counts[f"{path.name}:{table}"] = int(count)
    return counts


def genesis_file(data_dir: Path) -> Path:
    return data_dir / "genesisdb.db"


def decision_rows(conn: sqlite3.Connection) -> list[tuple[int, dict[str, Any]]]:
    """``(position, stored event record)`` of every recorded decision, in commit order."""
    rows = conn.execute(
        "SELECT e.position, e.payload FROM ls_entries e JOIN ls_logs l ON e.log_id = l.id "
        "WHERE l.name = ? AND e.type = ? ORDER BY e.position",
        (EVENTS_LOG, DECISION_TYPE),
    ).fetchall()
    return [(int(position), json.loads(bytes(payload))) for position, payload in rows]


def write_payload(conn: sqlite3.Connection, position: int, stored: dict[str, Any]) -> None:
    conn.execute(
        "UPDATE ls_entries SET payload = ? WHERE position = ?",
        (json.dumps(stored, separators=(",", ":")).encode(), position),
    )


def delete_rows(conn: sqlite3.Connection, positions: list[int]) -> None:
    conn.executemany("DELETE FROM ls_entries WHERE position = ?", [(p,) for p in positions])


def swap_rows(conn: sqlite3.Connection, first: int, second: int) -> None:
    """Exchange what two entries hold (their place in the log stays): a reorder."""
    columns = "type, subject, key, payload"
    one = conn.execute(f"SELECT {columns} FROM ls_entries WHERE position = ?", (first,)).fetchone()
    two = conn.execute(f"SELECT {columns} FROM ls_entries WHERE position = ?", (second,)).fetchone()
    update = "UPDATE ls_entries SET type = ?, subject = ?, key = ?, payload = ? WHERE position = ?"
    conn.execute(update, (*two, first))
    conn.execute(update, (*one, second))


def append_copy(
    conn: sqlite3.Connection, template: int, stored: dict[str, Any], subject: str
) -> int:
    """A new entry after every other one, shaped like entry ``template``, holding ``stored``
    at ``subject``; its position."""
    log_id, type_ = conn.execute(
        "SELECT log_id, type FROM ls_entries WHERE position = ?", (template,)
    ).fetchone()
    last = "SELECT max(position) + 1, max(hlc) + 1 FROM ls_entries"
    position, hlc = conn.execute(last).fetchone()
    (seq,) = conn.execute(
        "SELECT max(seq) + 1 FROM ls_entries WHERE log_id = ?", (log_id,)
    ).fetchone()
    stored = {**stored, "id": str(uuid.uuid4())}
    conn.execute(
        "INSERT INTO ls_entries (position, log_id, seq, hlc, id, type, subject, key, flags, "
        "format, payload, prev_hash, hash) VALUES (?, ?, ?, ?, ?, ?, ?, ?, 0, 0, ?, ?, ?)",
        (position, log_id, seq, hlc, uuid.uuid4().bytes, type_, subject, stored["id"],
         json.dumps(stored).encode(), os.urandom(32), os.urandom(32)),
    )  # fmt: skip
    return int(position)


def delete_checkpoints(conn: sqlite3.Connection) -> int:
    """Remove every signed checkpoint the service stored; how many."""
    cursor = conn.execute("DELETE FROM ls_entries WHERE type = ?", (CHECKPOINT_TYPE,))
    return int(cursor.rowcount)

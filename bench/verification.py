"""Verification throughput and memory: online (``integrity.verify_tenant``, what
``decisiontrail verify`` and ``POST /v1/verify`` run) and offline (``bundle.verify_bundle``, what
``decisiontrail verify --bundle`` runs), beside baselines measured in the same run on the same
records: raw Ed25519 verifies per second on one core with ``cryptography``, and SHA-256 over the
records' canonical bytes.

    python bench/verification.py [--decisions 60000] [--repeat 3] [--workdir DIR]

The trail is built in process through the ledger (``ledger.writer.record`` in batches of 1,000,
on a ledger built by ``ServiceState.open`` exactly as the service builds it); a ``--workdir``
that already holds one of the requested size is reused. Each figure is the median of
``--repeat`` runs. Peak memory is the peak RSS of the process tree (this process and its worker
processes, sampled every 20 ms) above what it was before the run, and the peak of Python
allocations in this process (tracemalloc, a separate run: tracing slows allocation down).
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import hashlib
import json
import os
import random
import statistics
import sys
import tempfile
import threading
import time
import tracemalloc
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
# bench/ holds scripts named like the packages they measure (genesisdb.py, sapixdb.py ...):
# import the packages, not the scripts.
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != ROOT / "bench"]

TENANT = "bench"
BATCH = 1_000
AGENTS = tuple(f"agent-{i}" for i in range(8))


def decision(rng: random.Random, index: int) -> dict[str, Any]:
    """A ~900-byte decision with personal values and a data subject (as clients send them)."""
    filler = " ".join(rng.choice(("refund", "order", "late", "parcel", "customer", "asked"))
                      for _ in range(110))  # fmt: skip
    return {
        "agent": AGENTS[index % len(AGENTS)],
        "action": rng.choice(("approve_refund", "deny_refund", "escalate", "answer")),
        "kind": "llm_call",
        "model": {
            "provider": "openai",
            "name": "gpt-4o",
            "version": "2024-08-06",
            "parameters": {"temperature": 0.2, "max_tokens": 512},
        },
        "confidence": round(rng.uniform(0.05, 0.99), 3),
        "input": filler,
        "output": {"decision": "ok", "reason": f"case {index}"},
        "data_subjects": [f"cust-{rng.randrange(10**6):06d}"],
        "personal": ["input"],
        "metadata": {"channel": "chat"},
    }


def _settings(data_dir: Path) -> Any:
    from decisiontrail.config import Settings

    return Settings(_env_file=None, data_dir=data_dir, checkpoint_interval_seconds=3600)


async def build_trail(data_dir: Path, count: int) -> None:
    from decisiontrail.decisions import prepare
    from decisiontrail.models import DecisionCreate
    from decisiontrail.state import ServiceState

    rng = random.Random(11)
    state = await ServiceState.open(_settings(data_dir))
    try:
        for start in range(0, count, BATCH):
            chunk = [
                prepare(DecisionCreate.model_validate(decision(rng, i)))
                for i in range(start, min(start + BATCH, count))
            ]
            await state.ledger.writer.record(TENANT, chunk)
            if start % (10 * BATCH) == 0:
                await state.ledger.tree.issue_checkpoint(TENANT)
        await state.ledger.tree.issue_checkpoint(TENANT)
    finally:
        await state.close()
    (data_dir / "bench-decisions").write_text(str(count))


# --- peak memory of the process tree -------------------------------------------------------------


def _tree_rss(root: int) -> int:
    """Resident bytes of ``root`` and its descendants (from /proc)."""
    children: dict[int, list[int]] = {}
    rss: dict[int, int] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            stat = Path(f"/proc/{entry}/stat").read_text()
            statm = Path(f"/proc/{entry}/statm").read_text()
        except OSError:
            continue
        fields = stat.rsplit(")", 1)[1].split()
        children.setdefault(int(fields[1]), []).append(int(entry))
        rss[int(entry)] = int(statm.split()[1]) * os.sysconf("SC_PAGE_SIZE")
    total, todo = 0, [root]
    while todo:
        pid = todo.pop()
        total += rss.get(pid, 0)
        todo.extend(children.get(pid, []))
    return total


class PeakRss:
    """Samples the process tree's RSS every 20 ms while in the ``with`` block."""

    def __enter__(self) -> PeakRss:
        self.base = _tree_rss(os.getpid())
        self.peak = self.base
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)
        self._thread.start()
        return self

    def _sample(self) -> None:
        while not self._stop.wait(0.02):
            self.peak = max(self.peak, _tree_rss(os.getpid()))

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()
        self.peak = max(self.peak, _tree_rss(os.getpid()))

    @property
    def growth(self) -> int:
        return self.peak - self.base


# --- the measurements ----------------------------------------------------------------------------


async def verify_online(data_dir: Path) -> tuple[int, bool]:
    from decisiontrail import integrity
    from decisiontrail.state import ServiceState

    state = await ServiceState.open(_settings(data_dir))
    try:
        answer = await integrity.verify_tenant(
            ledger=state.ledger, trust=state.keyring.trust, tenant=TENANT
        )
    finally:
        await state.close()
    return int(answer["records_checked"]), bool(answer["ok"])


async def export_bundle(data_dir: Path, path: Path) -> None:
    from datetime import UTC, datetime

    from decisiontrail import bundle
    from decisiontrail.records import format_time
    from decisiontrail.state import ServiceState

    state = await ServiceState.open(_settings(data_dir))
    try:
        notes = await state.ledger.tree.stored_checkpoints(TENANT)

        async def records() -> Any:
            async for receipt in state.ledger.reads.records(TENANT):
                yield receipt.record, receipt.log_index

        size = (await state.ledger.tree.checkpoint(TENANT)).size
        await bundle.export(
            path, tenant=TENANT, origin=state.ledger.tree.checkpoint_origin(TENANT),
            trust=state.keyring.trust, exported_at=format_time(datetime.now(UTC)),
            notes=notes, records=records(), count=size,
        )  # fmt: skip
    finally:
        await state.close()


def verify_offline(path: Path) -> tuple[int, bool]:
    from decisiontrail import bundle

    report = bundle.verify_bundle(path).report
    return report.records_checked, report.ok


def baselines(path: Path, limit: int = 20_000) -> tuple[float, float]:
    """(Ed25519 verifies/s on one core, SHA-256 records/s over the canonical bytes), on the
    bundle's first ``limit`` records."""
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

    from decisiontrail import bundle
    from decisiontrail.canonical import canonical_json
    from decisiontrail.records import record_hash
    from decisiontrail.signing import RECORD_DOMAIN

    records, trust = [], None
    for item in bundle.read_bundle(path):
        if item["type"] == "trust_root":
            trust = item["trust_root"]
        elif item["type"] == "record":
            records.append(item["record"])
            if len(records) == limit:
                break
    assert trust is not None
    keys = {k["key_id"]: Ed25519PublicKey.from_public_bytes(base64.b64decode(k["public_key"]))
            for k in trust["keys"]}  # fmt: skip
    signed = [(keys[r["key_id"]], base64.b64decode(r["signature"]),
               RECORD_DOMAIN + bytes.fromhex(r["hash"])) for r in records]  # fmt: skip
    started = time.perf_counter()
    for key, signature, message in signed:
        key.verify(signature, message)
    ed25519 = len(signed) / (time.perf_counter() - started)
    assert record_hash(records[0]) == records[0]["hash"]
    canonical = [canonical_json({k: v for k, v in r.items() if k not in ("hash", "signature")})
                 for r in records]  # fmt: skip
    started = time.perf_counter()
    for raw in canonical:
        hashlib.sha256(raw).digest()
    sha = len(canonical) / (time.perf_counter() - started)
    return ed25519, sha


def measure(run: Callable[[], tuple[int, bool]]) -> dict[str, float]:
    with PeakRss() as rss:
        started = time.perf_counter()
        checked, ok = run()
        elapsed = time.perf_counter() - started
    if not ok:
        raise SystemExit("verification failed on a good trail")
    return {"records": checked, "rate": checked / elapsed, "rss": rss.growth}


def traced_peak(run: Callable[[], tuple[int, bool]]) -> int:
    tracemalloc.start()
    try:
        run()
        return tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--decisions", type=int, default=60_000)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--workdir", type=Path, default=None)
    args = parser.parse_args()
    workdir = args.workdir or Path(tempfile.mkdtemp(prefix="dt-verify-bench-"))
    data_dir = workdir / "data"
    marker = data_dir / "bench-decisions"
    if not (marker.exists() and marker.read_text() == str(args.decisions)):
        print(f"building a trail of {args.decisions:,} decisions in {data_dir} ...", flush=True)
        started = time.perf_counter()
        asyncio.run(build_trail(data_dir, args.decisions))
        print(f"  built in {time.perf_counter() - started:.0f} s", flush=True)
    path = workdir / "trail.jsonl"
    if not path.exists():
        asyncio.run(export_bundle(data_dir, path))

    online = [measure(lambda: asyncio.run(verify_online(data_dir))) for _ in range(args.repeat)]
    offline = [measure(lambda: verify_offline(path)) for _ in range(args.repeat)]
    base = [baselines(path) for _ in range(args.repeat)]
    online_traced = traced_peak(lambda: asyncio.run(verify_online(data_dir)))
    offline_traced = traced_peak(lambda: verify_offline(path))

    def median(rows: list[dict[str, float]], key: str) -> float:
        return statistics.median(row[key] for row in rows)

    cores = os.cpu_count() or 1
    ed25519 = statistics.median(b[0] for b in base)
    sha = statistics.median(b[1] for b in base)
    mib = 1024 * 1024
    print(json.dumps({"decisions": args.decisions, "repeat": args.repeat, "cores": cores}))
    print(f"{'':34}{'records/s':>12}{'per core':>12}{'peak RSS +':>14}{'peak heap':>12}")
    for name, rows, traced in (
        ("online  (verify_tenant)", online, online_traced),
        ("offline (verify_bundle)", offline, offline_traced),
    ):
        rate = median(rows, "rate")
        print(f"{name:34}{rate:12,.0f}{rate / cores:12,.0f}"
              f"{median(rows, 'rss') / mib:11,.0f} MiB{traced / mib:8,.0f} MiB")  # fmt: skip
    print(f"{'baseline: Ed25519 verify, 1 core':34}{ed25519:12,.0f}")
    print(f"{'baseline: SHA-256 canonical bytes':34}{sha:12,.0f}")
    print("records checked:", int(median(online, "records")), int(median(offline, "records")))
    sys.stdout.flush()


if __name__ == "__main__":
    main()

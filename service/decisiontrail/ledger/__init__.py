"""The decision ledger: sealing, chaining and committing decisions through Genesis DB, the
log of record, with each tenant's transparency log persisted as tiles beside them and the
sealed records in SapixDB (an outbox every read confirms against Genesis DB).

One module per job (see docs/design.md, "The ledger package"):

- :mod:`~decisiontrail.ledger.events`    the event schema (subjects, types, value types)
- :mod:`~decisiontrail.ledger.failures`  the ledger's exceptions (mapped to HTTP in
  :mod:`decisiontrail.errors`)
- :mod:`~decisiontrail.ledger.writer`    group commit, pipelining, retries
- :mod:`~decisiontrail.ledger.commit`    one commit, with an unknown outcome resolved
- :mod:`~decisiontrail.ledger.sealing`   a group of requests sealed into a batch of events
- :mod:`~decisiontrail.ledger.outbox`    the SapixDB writes beside a commit
- :mod:`~decisiontrail.ledger.subjects`  data-subject keys, legal holds, erasure
- :mod:`~decisiontrail.ledger.tree`      heads, tiles, proofs, checkpoints
- :mod:`~decisiontrail.ledger.reads`     committed decisions by id, in order
- :mod:`~decisiontrail.ledger.feed`      live streams: one observation per tenant, capped
- :mod:`~decisiontrail.ledger.repair`    orphans tombstoned, edges rewritten, stores compared
- :mod:`~decisiontrail.ledger.bookkeeping`  the store's own records held against the log

:class:`Ledger` only wires them together; it has no behaviour of its own.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from decisiontrail.ledger.bookkeeping import Bookkeeping
from decisiontrail.ledger.commit import Committer
from decisiontrail.ledger.events import PreparedDecision, Receipt, TenantHead
from decisiontrail.ledger.failures import LedgerError
from decisiontrail.ledger.feed import ChangeFeed
from decisiontrail.ledger.outbox import Outbox, StoreCallback
from decisiontrail.ledger.reads import Reads
from decisiontrail.ledger.repair import Repair, StoreComparison
from decisiontrail.ledger.sealing import Sealer
from decisiontrail.ledger.subjects import Subjects, load_pepper
from decisiontrail.ledger.tree import Heads, Tree
from decisiontrail.ledger.writer import Writer
from decisiontrail.provenance import ProvenanceStore
from decisiontrail.signing import Keyring
from decisiontrail.store_workers import GenesisWorker, SapixWorker
from genesisdb import Client

__all__ = [
    "Ledger",
    "LedgerError",
    "PreparedDecision",
    "Receipt",
    "StoreComparison",
    "TenantHead",
    "build_ledger",
    "load_pepper",
]


@dataclass(frozen=True)
class Ledger:
    """The ledger's parts, wired to one Genesis DB client and one SapixDB store."""

    genesis: Client
    keyring: Keyring
    provenance: ProvenanceStore
    heads: Heads
    tree: Tree
    reads: Reads
    subjects: Subjects
    outbox: Outbox
    writer: Writer
    repair: Repair
    bookkeeping: Bookkeeping
    feed: ChangeFeed
    genesis_worker: GenesisWorker | None = None

    def workers(self) -> list[SapixWorker | GenesisWorker]:
        """The child processes that do this ledger's writes (none with remote stores)."""
        found = [self.provenance.worker, self.genesis_worker]
        return [worker for worker in found if worker is not None]


def build_ledger(
    genesis: Client,
    keyring: Keyring,
    *,
    origin: str,
    pepper: bytes,
    provenance: ProvenanceStore,
    on_checkpoint: Callable[[str], None] | None = None,
    on_store_call: StoreCallback | None = None,
    genesis_worker: GenesisWorker | None = None,
    max_streams: int = 256,
) -> Ledger:
    heads = Heads(genesis)
    reads = Reads(genesis)
    subjects = Subjects(genesis, pepper, provenance)
    outbox = Outbox(provenance, on_store_call)
    sealer = Sealer(keyring, reads, subjects, outbox)
    writer = Writer(heads, sealer, subjects, outbox, Committer(genesis, genesis_worker))
    return Ledger(
        genesis=genesis,
        keyring=keyring,
        provenance=provenance,
        heads=heads,
        tree=Tree(genesis, heads, keyring, origin=origin, on_checkpoint=on_checkpoint),
        reads=reads,
        subjects=subjects,
        outbox=outbox,
        writer=writer,
        repair=Repair(genesis, reads, subjects, provenance),
        bookkeeping=Bookkeeping(genesis, heads),
        feed=ChangeFeed(genesis, reads, max_streams=max_streams),
        genesis_worker=genesis_worker,
    )

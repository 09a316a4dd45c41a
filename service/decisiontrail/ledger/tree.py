"""Each tenant's RFC 9162 tree: its head (chain heads and tile frontier), its tiles, inclusion
and consistency proofs, and signed C2SP checkpoints.

The writer keeps a cached head to append on (a stale one only loses a precondition). Every
read of the tree loads the store's current frontier instead, so a replica that did not write
a decision still proves it and signs checkpoints at the real size.
"""

from __future__ import annotations

import base64
from collections import OrderedDict
from collections.abc import Callable
from datetime import UTC, datetime

from decisiontrail.ledger.events import (
    BATCH_TYPE,
    CHAIN_HEAD_TYPE,
    CHECKPOINT_TYPE,
    TenantHead,
    checkpoint_subject,
    event,
    is_new,
    tenant_path,
    tile_subject,
)
from decisiontrail.ledger.failures import InvalidTreeSizeError, StoreCorruptedError
from decisiontrail.records import format_time
from decisiontrail.signing import Keyring
from decisiontrail.tlog import (
    TileFrontier,
    TileReader,
    tiles_for_consistency,
    tiles_for_inclusion,
    tiles_for_root,
)
from decisiontrail.verification import SignedCheckpoint
from genesisdb import Client, PreconditionFailedError
from genesisdb.events import to_dict
from ledgerstore import merkle

TILE_CACHE_SIZE = 4096  # full tiles kept in memory (each at most 8 KiB)


class _TileCache:
    """Full tiles never change: keep the recently used ones."""

    def __init__(self, capacity: int = TILE_CACHE_SIZE) -> None:
        self.capacity = capacity
        self.items: OrderedDict[tuple[str, int, int], bytes] = OrderedDict()

    def get(self, key: tuple[str, int, int]) -> bytes | None:
        value = self.items.get(key)
        if value is not None:
            self.items.move_to_end(key)
        return value

    def put(self, key: tuple[str, int, int], value: bytes) -> None:
        self.items[key] = value
        if len(self.items) > self.capacity:
            self.items.popitem(last=False)


class Heads:
    """Each tenant's head as the writer last left or loaded it."""

    def __init__(self, genesis: Client) -> None:
        self.genesis = genesis
        self._heads: dict[str, TenantHead] = {}

    def tenants(self) -> list[str]:
        """The tenants this process has read or written."""
        return list(self._heads)

    async def head(self, tenant: str, *, reload: bool = False) -> TenantHead:
        if reload or tenant not in self._heads:
            self._heads[tenant] = await self.load(tenant)
        return self._heads[tenant]

    def advance(self, tenant: str, head: TenantHead) -> None:
        """A batch committed: its head is the tenant's head now."""
        self._heads[tenant] = head

    async def frontier(self, tenant: str) -> TileFrontier:
        """The log's tile frontier as the store holds it now (any replica's writes)."""
        path = f"{tenant_path(tenant)}/log"
        rows = await self.genesis.q(
            f"STREAM e FROM events WHERE e.subject UNDER '{path}' AND e.type == '{BATCH_TYPE}' "
            "ORDER BY e.time DESC LIMIT 1 MAP e.data.frontier"
        )
        return TileFrontier() if not rows else TileFrontier.from_json(rows[0])

    async def chain_heads(self, tenant: str) -> dict[str, tuple[int, str]]:
        """Every chain's latest head event: agent -> (next sequence, last hash)."""
        heads = await self.genesis.stream_events(
            f"{tenant_path(tenant)}/chains", {"latest_by_event_type": CHAIN_HEAD_TYPE}
        )
        chains: dict[str, tuple[int, str]] = {}
        for found in heads:
            data = to_dict(found)["data"]
            chains[str(data["chain"])] = (int(data["next_sequence"]), str(data["hash"]))
        return chains

    async def load(self, tenant: str) -> TenantHead:
        frontier = await self.frontier(tenant)
        return TenantHead(await self.chain_heads(tenant), frontier)


class Tree:
    """Proofs and checkpoints of each tenant's log, read from its tiles."""

    def __init__(
        self,
        genesis: Client,
        heads: Heads,
        keyring: Keyring,
        *,
        origin: str,
        on_checkpoint: Callable[[str], None] | None = None,
    ) -> None:
        self.genesis = genesis
        self.heads = heads
        self.keyring = keyring
        self.origin = origin
        self.on_checkpoint = on_checkpoint  # told the tenant of every checkpoint stored
        self._tiles = _TileCache()

    def checkpoint_origin(self, tenant: str) -> str:
        return f"{self.origin}/{tenant}"

    async def tile(self, tenant: str, level: int, index: int) -> bytes | None:
        cached = self._tiles.get((tenant, level, index))
        if cached is not None:
            return cached
        events = await self.genesis.stream_events(tile_subject(tenant, level, index))
        if not events:
            return None
        hashes = base64.b64decode(to_dict(events[0])["data"]["hashes"])
        self._tiles.put((tenant, level, index), hashes)
        return hashes

    async def size(self, tenant: str) -> int:
        """The tenant's log size as the store holds it now."""
        return (await self.heads.frontier(tenant)).size

    async def _reader(
        self, tenant: str, size: int | None, wanted: Callable[[int], set[tuple[int, int]]]
    ) -> TileReader:
        """A reader of the tenant's tree at ``size`` (default: now) with the tiles it needs."""
        frontier = await self.heads.frontier(tenant)
        size = frontier.size if size is None else size
        if isinstance(size, bool) or not isinstance(size, int) or not 0 <= size <= frontier.size:
            raise InvalidTreeSizeError(f"tree size must be between 0 and {frontier.size}")
        tiles: dict[tuple[int, int], bytes] = {}
        for level, index in wanted(size):
            if index == frontier.unfinished_index(level):
                continue  # the frontier holds it
            tile = await self.tile(tenant, level, index)
            if tile is None:
                raise StoreCorruptedError(f"tile {level}/{index} of tenant {tenant!r} is missing")
            tiles[(level, index)] = tile
        return TileReader(size, tiles, frontier)

    async def tree_root(self, tenant: str, size: int | None = None) -> tuple[int, bytes]:
        reader = await self._reader(tenant, size, tiles_for_root)
        return reader.size, reader.root()

    async def inclusion_proof(
        self, tenant: str, log_index: int, size: int | None = None
    ) -> tuple[int, list[bytes]]:
        reader = await self._reader(tenant, size, lambda n: tiles_for_inclusion(log_index, n))
        if not 0 <= log_index < reader.size:
            raise InvalidTreeSizeError(f"log index {log_index} is not below size {reader.size}")
        return reader.size, reader.inclusion_proof(log_index)

    async def consistency_proof(
        self, tenant: str, size1: int, size2: int | None = None
    ) -> tuple[int, list[bytes]]:
        reader = await self._reader(tenant, size2, lambda n: tiles_for_consistency(size1, n))
        return reader.size, reader.consistency_proof(size1)

    async def checkpoint(self, tenant: str) -> SignedCheckpoint:
        """A signed checkpoint of the tenant's log as the store holds it now, for reads: the
        one stored at that size, else one signed now and not stored (a read writes nothing)."""
        size, root = await self.tree_root(tenant)
        body = merkle.Checkpoint(self.checkpoint_origin(tenant), size, root).body()
        note = await self.stored_checkpoint(tenant, size) or self.keyring.sign_note(body)
        return SignedCheckpoint(note, self.checkpoint_origin(tenant), size, root, ())

    async def issue_checkpoint(self, tenant: str) -> SignedCheckpoint:
        """Sign and store a checkpoint of the tenant's log as it is now (the one stored at
        that size if there is one): the periodic issuer's job. ``on_checkpoint`` hears only
        of checkpoints stored."""
        size, root = await self.tree_root(tenant)
        body = merkle.Checkpoint(self.checkpoint_origin(tenant), size, root).body()
        subject = checkpoint_subject(tenant, size)
        stored = await self.stored_checkpoint(tenant, size)
        note = stored or self.keyring.sign_note(body)
        if stored is None:
            issued = {"note": note, "issued_at": format_time(datetime.now(UTC))}
            try:
                await self.genesis.commit_events(
                    [event(subject, CHECKPOINT_TYPE, issued)], [is_new(subject)]
                )
            except PreconditionFailedError:  # another writer issued it
                note = await self.stored_checkpoint(tenant, size) or note
            else:
                if self.on_checkpoint is not None:
                    self.on_checkpoint(tenant)
        return SignedCheckpoint(note, self.checkpoint_origin(tenant), size, root, ())

    async def stored_checkpoint(self, tenant: str, size: int) -> str | None:
        if isinstance(size, bool) or not isinstance(size, int) or size < 0:
            return None
        events = await self.genesis.stream_events(checkpoint_subject(tenant, size))
        return None if not events else str(to_dict(events[0])["data"]["note"])

    async def stored_checkpoints(self, tenant: str) -> list[str]:
        """Every checkpoint note issued for the tenant, oldest first."""
        events = await self.genesis.stream_events(f"{tenant_path(tenant)}/checkpoints")
        return [str(to_dict(found)["data"]["note"]) for found in events]

"""The service's own transparency log per tenant: an RFC 9162 tree over sealed records,
persisted as C2SP tlog tiles through whatever stores the tiles (the SDKs), independent of the
storage backend's own Merkle trees.

A tile at level L, index N holds up to 256 hashes of tree level 8·L, nodes [256·N, 256·N + 256).
Only full tiles are stored; the hashes right of the last full tile of each level are computed
from the level below (ultimately from the records' leaf hashes, which the caller supplies), so
storage holds one tile row per 256 records and nothing is ever rewritten. A node at tree level
8·L + r is the root of 2^r consecutive hashes of one tile. This module does no I/O: it asks a
:class:`TileSource` for what it needs.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

from ledgerstore import merkle

TILE_HEIGHT = 8
TILE_WIDTH = 1 << TILE_HEIGHT


class TileSource(Protocol):
    """Where full tiles live, and the leaf hashes of records not yet in a full level-0 tile."""

    def tile(self, level: int, index: int) -> bytes | None:
        """A full tile's 256 concatenated hashes, or None if it is not stored."""

    def leaves(self, start: int, end: int) -> list[bytes]:
        """The leaf hashes of records [start, end) (at most one tile's worth is asked for)."""


@dataclass(frozen=True)
class Tile:
    level: int
    index: int
    hashes: bytes  # 256 concatenated 32-byte hashes


def full_tiles_completed(old_size: int, new_size: int) -> list[tuple[int, int]]:
    """The (level, index) of every tile that becomes full when the tree grows to new_size."""
    completed = []
    level, width = 0, TILE_WIDTH
    while width <= new_size:
        for index in range(old_size // width, new_size // width):
            completed.append((level, index))
        level, width = level + 1, width * TILE_WIDTH
    return completed


class TileReader:
    """Hashes of any complete subtree of a tree of ``size`` leaves, from tiles and leaves."""

    def __init__(self, source: TileSource, size: int) -> None:
        self.source = source
        self.size = size
        self._cache: dict[tuple[int, int], list[bytes]] = {}

    def _level_hashes(self, level: int, start: int, end: int) -> list[bytes]:
        """Hashes of tree level 8·level, nodes [start, end), all within one tile."""
        tile_index = start // TILE_WIDTH
        tile = self.tile_hashes(level, tile_index)
        offset = tile_index * TILE_WIDTH
        return tile[start - offset : end - offset]

    def tile_hashes(self, level: int, index: int) -> list[bytes]:
        """The complete hashes of a tile (stored, or computed from the level below)."""
        key = (level, index)
        if key not in self._cache:
            stored = self.source.tile(level, index)
            if stored is not None:
                hashes = [stored[i : i + 32] for i in range(0, len(stored), 32)]
            else:
                hashes = self._partial(level, index)
            self._cache[key] = hashes
        return self._cache[key]

    def _partial(self, level: int, index: int) -> list[bytes]:
        """The complete hashes of a tile that is not (yet) stored, from the level below."""
        width = TILE_WIDTH**level  # leaves under one hash of this tile level
        first = index * TILE_WIDTH
        count = min(TILE_WIDTH, self.size // width - first)
        if count <= 0:
            return []
        if level == 0:
            return self.source.leaves(first, first + count)
        return [
            merkle.root_of_perfect(self.tile_hashes(level - 1, first + i)) for i in range(count)
        ]

    def node(self, node: merkle.NodeID) -> bytes:
        level, rest = divmod(node.level, TILE_HEIGHT)
        span = 1 << rest
        hashes = self._level_hashes(level, node.index * span, (node.index + 1) * span)
        if len(hashes) != span:
            raise merkle.MalformedProofError(f"node {node} is not complete in this tree")
        return merkle.root_of_perfect(hashes)

    def ranges(self, ranges: Sequence[tuple[int, int]]) -> list[bytes]:
        return [
            merkle.fold_range([self.node(n) for n in merkle.perfect_subtrees(a, b)])
            for a, b in ranges
        ]

    def root(self) -> bytes:
        return self.ranges([(0, self.size)])[0] if self.size else merkle.EMPTY_ROOT

    def inclusion_proof(self, index: int) -> list[bytes]:
        return self.ranges(merkle.inclusion_ranges(index, self.size))

    def consistency_proof(self, size1: int) -> list[bytes]:
        return self.ranges(merkle.consistency_ranges(size1, self.size))


def tiles_for_append(source: TileSource, old_size: int, new_leaves: Sequence[bytes]) -> list[Tile]:
    """The tiles that become full when ``new_leaves`` are appended to a tree of old_size.

    ``source`` must already answer ``leaves`` for the new records too.
    """
    new_size = old_size + len(new_leaves)
    reader = TileReader(source, new_size)
    return [
        Tile(level, index, b"".join(reader.tile_hashes(level, index)))
        for level, index in full_tiles_completed(old_size, new_size)
    ]

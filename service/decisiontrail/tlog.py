"""The service's own transparency log per tenant: an RFC 9162 tree over sealed records,
persisted as C2SP tlog tiles through the SDKs, independent of the storage backends' own trees.

A tile at level L, index N holds up to 256 hashes of tree level 8·L: nodes [256·N, 256·N + 256).
Full tiles are written once and never change. The unfinished tile of every level — the
complete hashes right of the last full tile — is the :class:`TileFrontier`, small enough
(at most 255 hashes a level) to travel with the log's head. A node at tree level 8·L + r is the
root of 2^r consecutive hashes of one tile, so any proof at any size up to the current one
needs a handful of tiles (:func:`tiles_for_nodes`), which the caller fetches. No I/O here.
"""

from __future__ import annotations

import base64
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field

from ledgerstore import merkle

TILE_HEIGHT = 8
TILE_WIDTH = 1 << TILE_HEIGHT


@dataclass(frozen=True)
class Tile:
    level: int
    index: int
    hashes: bytes  # 256 concatenated 32-byte hashes


@dataclass
class TileFrontier:
    """The unfinished tile of every level, as the tree grows one leaf at a time."""

    size: int = 0
    partial: list[list[bytes]] = field(default_factory=list)

    def append(self, leaf: bytes) -> list[Tile]:
        """Add a leaf hash; return the tiles it completes (lowest level first)."""
        completed: list[Tile] = []
        value, level = leaf, 0
        while True:
            if len(self.partial) <= level:
                self.partial.append([])
            row = self.partial[level]
            row.append(value)
            if len(row) < TILE_WIDTH:
                break
            index = self.size >> (TILE_HEIGHT * (level + 1))
            completed.append(Tile(level, index, b"".join(row)))
            value = merkle.root_of_perfect(row)
            self.partial[level] = []
            level += 1
        self.size += 1
        return completed

    def extend(self, leaves: Iterable[bytes]) -> list[Tile]:
        return [tile for leaf in leaves for tile in self.append(leaf)]

    def unfinished_index(self, level: int) -> int:
        """The index of the level's unfinished tile."""
        return self.size >> (TILE_HEIGHT * (level + 1))

    def to_json(self) -> dict[str, object]:
        return {
            "size": self.size,
            "partial": [base64.b64encode(b"".join(row)).decode() for row in self.partial],
        }

    @classmethod
    def from_json(cls, data: Mapping[str, object]) -> TileFrontier:
        size = data["size"]
        rows = data["partial"]
        if not isinstance(size, int) or not isinstance(rows, list):
            raise ValueError("a tile frontier has a size and a list of partial tiles")
        partial = []
        for row in rows:
            raw = base64.b64decode(str(row), validate=True)
            partial.append([raw[i : i + 32] for i in range(0, len(raw), 32)])
        frontier = cls(size, partial)
        for level, row in enumerate(partial):
            if len(row) != (size // TILE_WIDTH**level) % TILE_WIDTH:
                raise ValueError(f"partial tile of level {level} does not fit size {size}")
        return frontier


def tile_of(node: merkle.NodeID) -> tuple[int, int]:
    """The (level, index) of the tile holding the hashes a node is computed from."""
    level, rest = divmod(node.level, TILE_HEIGHT)
    return level, (node.index << rest) // TILE_WIDTH


def tiles_for_nodes(nodes: Iterable[merkle.NodeID]) -> set[tuple[int, int]]:
    return {tile_of(node) for node in nodes}


def nodes_for_ranges(ranges: Iterable[tuple[int, int]]) -> list[merkle.NodeID]:
    return [node for a, b in ranges for node in merkle.perfect_subtrees(a, b)]


class TileReader:
    """Hashes of the tree at ``size`` from full tiles and the frontier (of a size >= it)."""

    def __init__(
        self, size: int, tiles: Mapping[tuple[int, int], bytes], frontier: TileFrontier
    ) -> None:
        if not 0 <= size <= frontier.size:
            raise ValueError(f"size {size} is beyond the frontier's {frontier.size}")
        self.size = size
        self.tiles = tiles
        self.frontier = frontier

    def tile_hashes(self, level: int, index: int) -> list[bytes]:
        stored = self.tiles.get((level, index))
        if stored is not None:
            return [stored[i : i + 32] for i in range(0, len(stored), 32)]
        if level < len(self.frontier.partial) and index == self.frontier.unfinished_index(level):
            return self.frontier.partial[level]
        raise KeyError(f"tile {level}/{index} was not fetched")

    def node(self, node: merkle.NodeID) -> bytes:
        if node.end > self.size:
            raise merkle.MalformedProofError(f"{node} is not complete at size {self.size}")
        level, rest = divmod(node.level, TILE_HEIGHT)
        span = 1 << rest
        first = node.index * span
        tile_index = first // TILE_WIDTH
        offset = first - tile_index * TILE_WIDTH
        hashes = self.tile_hashes(level, tile_index)[offset : offset + span]
        if len(hashes) != span:
            raise merkle.MalformedProofError(f"{node} is missing from its tile")
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


def tiles_for_root(size: int) -> set[tuple[int, int]]:
    return tiles_for_nodes(nodes_for_ranges([(0, size)] if size else []))


def tiles_for_inclusion(index: int, size: int) -> set[tuple[int, int]]:
    return tiles_for_nodes(nodes_for_ranges(merkle.inclusion_ranges(index, size)))


def tiles_for_consistency(size1: int, size2: int) -> set[tuple[int, int]]:
    return tiles_for_nodes(nodes_for_ranges(merkle.consistency_ranges(size1, size2)))

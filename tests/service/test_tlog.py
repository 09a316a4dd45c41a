from __future__ import annotations

import hashlib
import random

import pytest

from decisiontrail.tlog import TileReader, full_tiles_completed, tiles_for_append
from ledgerstore import merkle


class MemoryTiles:
    def __init__(self) -> None:
        self.tiles: dict[tuple[int, int], bytes] = {}
        self.leaf_hashes: list[bytes] = []
        self.leaf_reads = 0

    def tile(self, level: int, index: int) -> bytes | None:
        return self.tiles.get((level, index))

    def leaves(self, start: int, end: int) -> list[bytes]:
        self.leaf_reads += end - start
        return self.leaf_hashes[start:end]

    def append(self, data: list[bytes]) -> None:
        old = len(self.leaf_hashes)
        self.leaf_hashes += [merkle.leaf_hash(d) for d in data]
        for tile in tiles_for_append(self, old, self.leaf_hashes[old:]):
            assert (tile.level, tile.index) not in self.tiles, "a tile is written once"
            self.tiles[(tile.level, tile.index)] = tile.hashes


def data(i: int) -> bytes:
    return hashlib.sha256(str(i).encode()).digest()


def test_full_tiles_completed() -> None:
    assert full_tiles_completed(0, 255) == []
    assert full_tiles_completed(255, 256) == [(0, 0)]
    assert full_tiles_completed(0, 513) == [(0, 0), (0, 1)]
    assert (1, 0) in full_tiles_completed(65535, 65536)


@pytest.mark.parametrize("batch", [1, 7, 256, 5000])
def test_roots_and_proofs_match_the_reference(batch: int) -> None:
    store = MemoryTiles()
    leaves: list[bytes] = []
    reference = merkle.CompactRange()
    roots = [merkle.EMPTY_ROOT]  # the reference root at every size
    rng = random.Random(batch)
    while len(leaves) < (70_000 if batch == 5000 else 1_400):
        chunk = [data(len(leaves) + i) for i in range(batch)]
        store.append(chunk)
        leaves += chunk
        for item in chunk:
            reference.append(merkle.leaf_hash(item))
            roots.append(reference.root())
        size = len(leaves)
        reader = TileReader(store, size)
        assert reader.root() == roots[size]
        index = rng.randrange(size)
        proof = reader.inclusion_proof(index)
        merkle.verify_inclusion(index, size, merkle.leaf_hash(leaves[index]), proof, reader.root())
        size1 = rng.randrange(1, size + 1)
        merkle.verify_consistency(
            size1, size, roots[size1], reader.root(),
            reader.consistency_proof(size1),
        )  # fmt: skip
    assert len(store.tiles) == sum(len(leaves) // 256**k for k in range(1, 4))


def test_proofs_read_at_most_a_tile_of_leaves() -> None:
    store = MemoryTiles()
    store.append([data(i) for i in range(100_000)])
    store.leaf_reads = 0
    reader = TileReader(store, 100_000)
    reader.inclusion_proof(12_345)
    assert store.leaf_reads <= 256

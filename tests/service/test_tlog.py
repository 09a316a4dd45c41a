from __future__ import annotations

import hashlib
import random

import pytest

from decisiontrail.tlog import (
    TILE_WIDTH,
    TileFrontier,
    TileReader,
    tiles_for_consistency,
    tiles_for_inclusion,
    tiles_for_root,
)
from ledgerstore import merkle


def leaf(i: int) -> bytes:
    return merkle.leaf_hash(hashlib.sha256(str(i).encode()).digest())


class Log:
    """A tenant log as the ledger keeps it: full tiles in storage, the frontier in the head."""

    def __init__(self) -> None:
        self.frontier = TileFrontier()
        self.stored: dict[tuple[int, int], bytes] = {}
        self.roots = [merkle.EMPTY_ROOT]
        self.reference = merkle.CompactRange()

    def append(self, count: int) -> None:
        for _ in range(count):
            value = leaf(self.frontier.size)
            for tile in self.frontier.append(value):
                assert (tile.level, tile.index) not in self.stored, "a tile is written once"
                assert len(tile.hashes) == 32 * TILE_WIDTH
                self.stored[(tile.level, tile.index)] = tile.hashes
            self.reference.append(value)
            self.roots.append(self.reference.root())

    def reader(self, size: int, wanted: set[tuple[int, int]]) -> TileReader:
        fetched = {key: self.stored[key] for key in wanted if key in self.stored}
        return TileReader(size, fetched, self.frontier)


@pytest.mark.parametrize("batch", [1, 7, 256, 5000])
def test_roots_and_proofs_match_the_reference(batch: int) -> None:
    log = Log()
    rng = random.Random(batch)
    while log.frontier.size < (70_000 if batch == 5000 else 1_400):
        log.append(batch)
        size = log.frontier.size
        # Proofs at the current size and at an older one, fetching only the tiles named.
        for at in (size, rng.randrange(1, size + 1)):
            assert log.reader(at, tiles_for_root(at)).root() == log.roots[at]
            index = rng.randrange(at)
            proof = log.reader(at, tiles_for_inclusion(index, at)).inclusion_proof(index)
            merkle.verify_inclusion(index, at, leaf(index), proof, log.roots[at])
            size1 = rng.randrange(1, at + 1)
            proof = log.reader(at, tiles_for_consistency(size1, at)).consistency_proof(size1)
            merkle.verify_consistency(size1, at, log.roots[size1], log.roots[at], proof)
    size = log.frontier.size
    assert len(log.stored) == sum(size // TILE_WIDTH**k for k in range(1, 4))


def test_a_proof_needs_only_a_few_tiles() -> None:
    size = 1_000_000
    assert len(tiles_for_inclusion(123_456, size)) <= 6
    assert len(tiles_for_consistency(654_321, size)) <= 8


def test_the_frontier_round_trips_and_is_validated() -> None:
    log = Log()
    log.append(70_000)
    again = TileFrontier.from_json(log.frontier.to_json())
    assert again == log.frontier
    broken = log.frontier.to_json()
    broken["size"] = 70_001
    with pytest.raises(ValueError):
        TileFrontier.from_json(broken)


def test_missing_tiles_are_an_error_not_a_wrong_answer() -> None:
    log = Log()
    log.append(600)
    with pytest.raises(KeyError):
        TileReader(600, {}, log.frontier).inclusion_proof(3)

"""RFC 9162 §2.1 Merkle tree math (identical to RFC 6962 §2.1): hashes, proofs, compact ranges.

Pure: no I/O, no storage, no clock. Building a proof is split in two: ``inclusion_ranges`` and
``consistency_ranges`` say which leaf ranges a proof needs, the caller fetches the stored hashes
of each range's ``perfect_subtrees`` and folds them with ``fold_range``. ``CompactRange`` hands
every node it completes to a callback, so storage holds exactly the nodes proofs need.

Every verification computes the root from the proof, then compares. Sizes, indices, hash lengths
and the proof length are checked before any hashing: a proof that cannot be right raises
``MalformedProofError``; a well-formed proof that leads elsewhere raises ``RootMismatchError``.
The signed notes that carry roots (C2SP checkpoints) are in :mod:`ledgerstore.signed_notes`.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass

__all__ = [
    "EMPTY_ROOT",
    "HASH_SIZE",
    "CompactRange",
    "MalformedProofError",
    "MerkleError",
    "NodeID",
    "RootMismatchError",
    "consistency_ranges",
    "fold_range",
    "inclusion_ranges",
    "leaf_hash",
    "node_hash",
    "perfect_subtrees",
    "root_from_inclusion_proof",
    "root_from_leaves",
    "root_of_perfect",
    "roots_from_consistency_proof",
    "verify_consistency",
    "verify_inclusion",
]

HASH_SIZE = 32
EMPTY_ROOT = hashlib.sha256(b"").digest()


# --- errors ---


class MerkleError(Exception):
    """Base of every error raised by this module."""


class MalformedProofError(MerkleError):
    """Inputs that cannot form a valid proof: bad size or index, wrong length, bad encoding."""


class RootMismatchError(MerkleError):
    """A well-formed proof leads to a root other than the expected one."""

    def __init__(self, what: str, expected: bytes, computed: bytes) -> None:
        super().__init__(what, expected, computed)  # args stay picklable
        self.what = what
        self.expected = expected
        self.computed = computed

    def __str__(self) -> str:
        return f"{self.what}: expected {self.expected.hex()}, computed {self.computed.hex()}"


# --- hashing (RFC 9162 §2.1.1) ---


def leaf_hash(data: bytes) -> bytes:
    """SHA-256(0x00 ‖ data)."""
    return hashlib.sha256(b"\x00" + data).digest()


def node_hash(left: bytes, right: bytes) -> bytes:
    """SHA-256(0x01 ‖ left ‖ right)."""
    return hashlib.sha256(b"\x01" + left + right).digest()


def _check_hash(value: bytes, what: str) -> None:
    if len(value) != HASH_SIZE:
        raise MalformedProofError(f"{what} has {len(value)} bytes, want {HASH_SIZE}")


def _check_proof(proof: Sequence[bytes], length: int) -> None:
    if len(proof) != length:
        raise MalformedProofError(f"proof has {len(proof)} hashes, want {length}")
    for i, value in enumerate(proof):
        _check_hash(value, f"proof[{i}]")


def _check_index(index: int, size: int) -> None:
    if not 0 <= index < size:
        raise MalformedProofError(f"leaf index {index} is outside a tree of size {size}")


def _check_sizes(size1: int, size2: int) -> None:
    if not 0 <= size1 <= size2:
        raise MalformedProofError(f"tree sizes must satisfy 0 <= size1 <= size2: {size1}, {size2}")


def _split(n: int) -> int:
    """RFC 9162's k: the largest power of two strictly less than ``n`` (n >= 2)."""
    return 1 << ((n - 1).bit_length() - 1)


# --- subtrees ---


@dataclass(frozen=True, order=True, slots=True)
class NodeID:
    """The node at ``level`` covering leaves [index·2^level, (index+1)·2^level)."""

    level: int
    index: int

    def __post_init__(self) -> None:
        if self.level < 0 or self.index < 0:
            raise MalformedProofError(f"bad node id {self.level}/{self.index}")

    @property
    def begin(self) -> int:
        return self.index << self.level

    @property
    def end(self) -> int:
        return (self.index + 1) << self.level


def perfect_subtrees(begin: int, end: int) -> list[NodeID]:
    """Leaves [begin, end) as maximal aligned perfect subtrees, left to right."""
    if not 0 <= begin <= end:
        raise MalformedProofError(f"bad leaf range [{begin}, {end})")
    nodes = []
    while begin < end:
        # The largest subtree starting at `begin` is bounded by the room left before `end`
        # and by the alignment of `begin` (its lowest set bit).
        level = (end - begin).bit_length() - 1
        if begin:
            level = min(level, (begin & -begin).bit_length() - 1)
        nodes.append(NodeID(level, begin >> level))
        begin += 1 << level
    return nodes


def root_of_perfect(leaves: Sequence[bytes]) -> bytes:
    """MTH of a perfect subtree given its leaf hashes (a power-of-two count), pairwise."""
    if not leaves or len(leaves) & (len(leaves) - 1):
        raise MalformedProofError(f"a perfect subtree has 2**k leaves, not {len(leaves)}")
    level = list(leaves)
    while len(level) > 1:
        level = [node_hash(level[i], level[i + 1]) for i in range(0, len(level), 2)]
    return level[0]


def fold_range(hashes: Sequence[bytes]) -> bytes:
    """MTH of a range from the hashes of its ``perfect_subtrees``, left to right.

    Folding right to left is the RFC's MTH when the subtree sizes decrease, as they do for every
    range the RFC recursion produces (and for [0, n)).
    """
    if not hashes:
        raise MalformedProofError("cannot fold an empty range")
    for i, value in enumerate(hashes):
        _check_hash(value, f"hashes[{i}]")
    root = hashes[-1]
    for value in reversed(hashes[:-1]):
        root = node_hash(value, root)
    return root


# --- proof shapes (RFC 9162 §2.1.3.1, §2.1.4.1) ---


def inclusion_ranges(index: int, size: int) -> list[tuple[int, int]]:
    """Leaf ranges whose MTHs form PATH(index, D[size]), bottom-up as in the RFC."""
    _check_index(index, size)
    ranges = []
    lo, hi = 0, size
    while hi - lo > 1:
        mid = lo + _split(hi - lo)
        if index < mid:
            ranges.append((mid, hi))
            hi = mid
        else:
            ranges.append((lo, mid))
            lo = mid
    ranges.reverse()  # walked top-down; the RFC lists the sibling nearest the leaf first
    return ranges


def consistency_ranges(size1: int, size2: int) -> list[tuple[int, int]]:
    """Leaf ranges whose MTHs form PROOF(size1, D[size2]) (SUBPROOF), in proof order.

    Empty when size1 == 0 or size1 == size2: every tree is consistent with the empty tree and
    with itself, so there is nothing to prove (the RFC defines proofs for 0 < size1 < size2).
    """
    _check_sizes(size1, size2)
    if size1 == 0:
        return []
    ranges = []
    lo, hi, whole = 0, size2, True  # `whole` is SUBPROOF's b: still on the left edge of D[size2]
    while size1 < hi:
        mid = lo + _split(hi - lo)
        if size1 <= mid:
            ranges.append((mid, hi))
            hi = mid
        else:
            ranges.append((lo, mid))
            lo, whole = mid, False
    if not whole:
        ranges.append((lo, hi))  # the verifier cannot know this subtree's root: send it
    ranges.reverse()
    return ranges


def _inclusion_length(index: int, size: int) -> int:
    # One hash per level below the point where the paths to `index` and to the last leaf
    # diverge ("inner"), plus one per left sibling above it ("border").
    inner = (index ^ (size - 1)).bit_length()
    return inner + (index >> inner).bit_count()


def _consistency_length(size1: int, size2: int) -> int:
    # The inclusion path of leaf size1-1, minus the levels inside the largest perfect subtree
    # that ends at size1, plus that subtree's root unless it is the whole first tree.
    shift = (size1 & -size1).bit_length() - 1
    length = _inclusion_length(size1 - 1, size2) - shift
    return length if size1 == 1 << shift else length + 1


# --- verification (RFC 9162 §2.1.3.2, §2.1.4.2) ---


def root_from_inclusion_proof(index: int, size: int, leaf: bytes, proof: Sequence[bytes]) -> bytes:
    """The root that ``proof`` yields for leaf hash ``leaf`` at ``index`` in a tree of ``size``."""
    _check_index(index, size)
    _check_hash(leaf, "leaf hash")
    _check_proof(proof, _inclusion_length(index, size))
    # The exact length makes the RFC's "sn is 0" checks (steps 4a and 5) hold by construction.
    fn, sn, r = index, size - 1, leaf
    for p in proof:
        if fn & 1 or fn == sn:
            r = node_hash(p, r)
            while fn and not fn & 1:
                fn, sn = fn >> 1, sn >> 1
        else:
            r = node_hash(r, p)
        fn, sn = fn >> 1, sn >> 1
    return r


def verify_inclusion(
    index: int, size: int, leaf: bytes, proof: Sequence[bytes], root: bytes
) -> None:
    """Raise unless ``proof`` shows leaf hash ``leaf`` at ``index`` in the tree ``root``."""
    _check_hash(root, "root")
    computed = root_from_inclusion_proof(index, size, leaf, proof)
    if computed != root:
        raise RootMismatchError("inclusion proof", root, computed)


def roots_from_consistency_proof(
    size1: int, size2: int, root1: bytes, proof: Sequence[bytes]
) -> tuple[bytes, bytes]:
    """The (first, second) tree roots that ``proof`` yields, for 0 < size1 < size2."""
    if not 0 < size1 < size2:
        raise MalformedProofError(f"need 0 < size1 < size2, got {size1}, {size2}")
    _check_hash(root1, "root1")
    _check_proof(proof, _consistency_length(size1, size2))
    # A power-of-two first tree is a whole subtree of the second: its root is not in the proof.
    path = [root1, *proof] if size1 & (size1 - 1) == 0 else list(proof)
    fn, sn = size1 - 1, size2 - 1
    while fn & 1:
        fn, sn = fn >> 1, sn >> 1
    fr = sr = path[0]
    for c in path[1:]:
        if fn & 1 or fn == sn:
            fr, sr = node_hash(c, fr), node_hash(c, sr)
            while fn and not fn & 1:
                fn, sn = fn >> 1, sn >> 1
        else:
            sr = node_hash(sr, c)
        fn, sn = fn >> 1, sn >> 1
    return fr, sr


def verify_consistency(
    size1: int, size2: int, root1: bytes, root2: bytes, proof: Sequence[bytes]
) -> None:
    """Raise unless ``proof`` shows the tree (size1, root1) is a prefix of (size2, root2).

    size1 == size2 needs an empty proof and equal roots; size1 == 0 needs an empty proof and
    root1 == EMPTY_ROOT (any second tree extends the empty one).
    """
    _check_sizes(size1, size2)
    _check_hash(root1, "root1")
    _check_hash(root2, "root2")
    if size1 == 0 or size1 == size2:
        _check_proof(proof, 0)
        expected = EMPTY_ROOT if size1 == 0 else root2
        if root1 != expected:
            raise RootMismatchError("trivial consistency proof", expected, root1)
        return
    first, second = roots_from_consistency_proof(size1, size2, root1, proof)
    if first != root1:
        raise RootMismatchError("consistency proof, first tree", root1, first)
    if second != root2:
        raise RootMismatchError("consistency proof, second tree", root2, second)


# --- incremental tree building ---


class CompactRange:
    """The right edge of a tree: the hashes of ``perfect_subtrees(0, size)``, left to right."""

    __slots__ = ("_hashes", "_size")

    def __init__(self, size: int = 0, hashes: Sequence[bytes] = ()) -> None:
        if size < 0 or len(hashes) != size.bit_count():
            raise MalformedProofError(
                f"a range of size {size} needs {max(size, 0).bit_count()} hashes, got {len(hashes)}"
            )
        for i, value in enumerate(hashes):
            _check_hash(value, f"hashes[{i}]")
        self._size = size
        self._hashes = list(hashes)

    @classmethod
    def from_bytes(cls, size: int, blob: bytes) -> CompactRange:
        """Rebuild from ``to_bytes()`` output."""
        if len(blob) % HASH_SIZE:
            raise MalformedProofError(f"frontier of {len(blob)} bytes is not whole hashes")
        return cls(size, [blob[i : i + HASH_SIZE] for i in range(0, len(blob), HASH_SIZE)])

    def to_bytes(self) -> bytes:
        """The frontier as concatenated 32-byte hashes."""
        return b"".join(self._hashes)

    @property
    def size(self) -> int:
        return self._size

    @property
    def hashes(self) -> list[bytes]:
        return list(self._hashes)

    def append(self, leaf: bytes, on_node: Callable[[NodeID, bytes], None] | None = None) -> None:
        """Add the leaf *hash* ``leaf``; report it and every node it completes to ``on_node``."""
        _check_hash(leaf, "leaf hash")
        hashes = self._hashes[:]  # a callback that raises leaves the range unchanged
        node, value = NodeID(0, self._size), leaf
        if on_node is not None:
            on_node(node, value)
        # Each trailing one bit of the old size is a perfect subtree that now gets its sibling.
        while node.index & 1:
            value = node_hash(hashes.pop(), value)
            node = NodeID(node.level + 1, node.index >> 1)
            if on_node is not None:
                on_node(node, value)
        hashes.append(value)
        self._hashes, self._size = hashes, self._size + 1

    def extend(self, leaves: Sequence[bytes]) -> list[tuple[int, int, bytes]]:
        """Append many leaf hashes; return the completed inner nodes as (level, index, hash).

        The bulk form of :meth:`append` for storage: no callback and no NodeID per node.
        """
        for i, leaf in enumerate(leaves):
            _check_hash(leaf, f"leaves[{i}]")
        hashes = self._hashes[:]
        completed: list[tuple[int, int, bytes]] = []
        size = self._size
        for value in leaves:
            level, index = 0, size
            while index & 1:
                value = hashlib.sha256(b"\x01" + hashes.pop() + value).digest()
                level, index = level + 1, index >> 1
                completed.append((level, index, value))
            hashes.append(value)
            size += 1
        self._hashes, self._size = hashes, size
        return completed

    def root(self) -> bytes:
        """MTH of the leaves appended so far (EMPTY_ROOT when none)."""
        return fold_range(self._hashes) if self._hashes else EMPTY_ROOT

    def __repr__(self) -> str:
        return f"CompactRange(size={self._size}, root={self.root().hex()})"


def root_from_leaves(leaves: Iterable[bytes]) -> bytes:
    """MTH(D[n]) of the leaf *data* ``leaves`` (each is hashed with ``leaf_hash``)."""
    compact = CompactRange()
    for data in leaves:
        compact.append(leaf_hash(data))
    return compact.root()

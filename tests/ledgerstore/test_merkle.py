"""Tests of ledgerstore.merkle.

Four layers: every section of the shared JSON vectors; an RFC 9162 §2.1 reference
implementation, written as literally as the RFC text and living only here, cross-checking the
fast code for every (index, size) and (size1, size2) up to 64; systematically broken proofs that
must fail with the right error type; hypothesis properties on trees of a few thousand leaves.
Then checkpoints and signed notes.
"""

from __future__ import annotations

import base64
import functools
import hashlib
import json
import pickle
import re
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

import pytest
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from hypothesis import given, settings
from hypothesis import strategies as st

from ledgerstore.merkle import (
    EMPTY_ROOT,
    HASH_SIZE,
    MAX_NOTE_SIGNATURES,
    SIGNATURE_TYPE_COSIGNATURE_V1,
    SIGNATURE_TYPE_ED25519,
    Checkpoint,
    CompactRange,
    MalformedNoteError,
    MalformedProofError,
    MerkleError,
    NodeID,
    NoteSignatureError,
    NoteVerifier,
    RootMismatchError,
    add_cosignature,
    add_signature,
    consistency_ranges,
    cosignature_message,
    fold_range,
    inclusion_ranges,
    leaf_hash,
    node_hash,
    note_key_id,
    open_note,
    parse_checkpoint_body,
    parse_note,
    parse_verifier_key,
    perfect_subtrees,
    root_from_inclusion_proof,
    root_from_leaves,
    roots_from_consistency_proof,
    sign_note,
    verifier_key_string,
    verify_consistency,
    verify_inclusion,
)

# --- vectors ---


# The vectors live inside the repository: a clone must test itself with nothing beside it.
VECTORS_PATH = Path(__file__).resolve().parents[1] / "data" / "merkle_vectors.json"


VECTORS: dict[str, Any] = json.loads(VECTORS_PATH.read_text(encoding="utf-8"))
LEAVES = [bytes.fromhex(x) for x in VECTORS["leaf_inputs_hex"]]
SIGNED = VECTORS["signed_checkpoint_examples"]


def unhex(values: Sequence[str]) -> list[bytes]:
    return [bytes.fromhex(v) for v in values]


Store = dict[NodeID, bytes]


def recorder(store: Store) -> Callable[[NodeID, bytes], None]:
    """A CompactRange callback that fills ``store`` and checks no node is reported twice."""

    def on_node(node: NodeID, value: bytes) -> None:
        assert node not in store, f"{node} reported twice"
        store[node] = value

    return on_node


def build(leaf_hashes: Sequence[bytes]) -> tuple[Store, CompactRange]:
    store: Store = {}
    compact = CompactRange()
    for value in leaf_hashes:
        compact.append(value, recorder(store))
    return store, compact


def prove(store: Store, ranges: Sequence[tuple[int, int]]) -> list[bytes]:
    """Build a proof the way storage does: fetch each range's subtrees, fold them."""
    return [fold_range([store[node] for node in perfect_subtrees(a, b)]) for a, b in ranges]


VECTOR_STORE, VECTOR_TREE = build([leaf_hash(x) for x in LEAVES])


def test_every_vector_section_is_tested() -> None:
    # A new section in the shared file must get a test here, not be skipped silently.
    assert set(VECTORS) == {
        "description",
        "sources",
        "hash_rules",
        "leaf_inputs_hex",
        "leaf_hashes",
        "node_hashes_by_level",
        "roots_by_tree_size",
        "upstream_inclusion_proofs",
        "upstream_consistency_proofs",
        "testdata_happy_path_probes",
        "negative_examples",
        "rfc9162_7_leaf_example_node_names",
        "rfc9162_7_leaf_example_proofs",
        "all_inclusion_proofs_sizes_1_to_8",
        "all_consistency_proofs_sizes_1_to_8",
        "signed_checkpoint_examples",
    }
    assert set(SIGNED) == {
        "rekor_v1_production",
        "go_sumdb_note_kat",
        "derived_signed_checkpoint_8_leaf_tree",
        "derived_cosignature_v1_example",
    }


def test_hash_rules() -> None:
    rules = VECTORS["hash_rules"]
    assert (
        EMPTY_ROOT
        == hashlib.sha256(b"").digest()
        == bytes.fromhex(VECTORS["roots_by_tree_size"]["0"])
    )
    assert HASH_SIZE == len(EMPTY_ROOT) == 32
    leaf_prefix, node_prefix = (
        bytes.fromhex(rules["leaf_prefix"]),
        bytes.fromhex(rules["node_prefix"]),
    )
    assert leaf_hash(b"abc") == hashlib.sha256(leaf_prefix + b"abc").digest()
    left, right = bytes(range(32)), bytes(range(32, 64))
    assert node_hash(left, right) == hashlib.sha256(node_prefix + left + right).digest()
    assert "k < n <= 2k" in rules["split"]


def test_leaf_hashes() -> None:
    assert len(LEAVES) == len(VECTORS["leaf_hashes"]) == 8
    assert [leaf_hash(x) for x in LEAVES] == unhex(VECTORS["leaf_hashes"])


def test_node_hashes_by_level() -> None:
    levels = VECTORS["node_hashes_by_level"]
    expected = {
        NodeID(level, index): bytes.fromhex(value)
        for level, row in enumerate(levels)
        for index, value in enumerate(row)
    }
    # The callback reports exactly the complete nodes of the 8-leaf tree, with these hashes.
    assert expected == VECTOR_STORE
    for node, value in expected.items():
        if node.level:
            left = expected[NodeID(node.level - 1, 2 * node.index)]
            right = expected[NodeID(node.level - 1, 2 * node.index + 1)]
            assert node_hash(left, right) == value


ROOTS_BY_SIZE = {int(n): bytes.fromhex(root) for n, root in VECTORS["roots_by_tree_size"].items()}


@pytest.mark.parametrize("n", sorted(ROOTS_BY_SIZE))
def test_roots_by_tree_size(n: int) -> None:
    root = ROOTS_BY_SIZE[n]
    assert root_from_leaves(LEAVES[:n]) == root
    store, compact = build([leaf_hash(x) for x in LEAVES[:n]])
    assert compact.size == n and compact.root() == root
    assert store == {node: VECTOR_STORE[node] for node in VECTOR_STORE if node.end <= n}
    assert compact.hashes == [VECTOR_STORE[node] for node in perfect_subtrees(0, n)]
    if n:
        assert prove(VECTOR_STORE, [(0, n)]) == [root]


def check_inclusion_vector(
    index: int, size: int, leaf: bytes, proof: list[bytes], root: bytes
) -> None:
    assert leaf == VECTOR_STORE[NodeID(0, index)]
    assert prove(VECTOR_STORE, inclusion_ranges(index, size)) == proof
    assert root_from_inclusion_proof(index, size, leaf, proof) == root
    verify_inclusion(index, size, leaf, proof, root)


def check_consistency_vector(
    size1: int, size2: int, root1: bytes, root2: bytes, proof: list[bytes]
) -> None:
    assert root1 == root_from_leaves(LEAVES[:size1])
    assert root2 == root_from_leaves(LEAVES[:size2])
    assert prove(VECTOR_STORE, consistency_ranges(size1, size2)) == proof
    verify_consistency(size1, size2, root1, root2, proof)


@pytest.mark.parametrize("vector", VECTORS["upstream_inclusion_proofs"])
def test_upstream_inclusion_proofs(vector: dict[str, Any]) -> None:
    check_inclusion_vector(
        vector["leaf_index"],
        vector["tree_size"],
        bytes.fromhex(vector["leaf_hash"]),
        unhex(vector["audit_path"]),
        bytes.fromhex(vector["root"]),
    )


@pytest.mark.parametrize("vector", VECTORS["upstream_consistency_proofs"])
def test_upstream_consistency_proofs(vector: dict[str, Any]) -> None:
    check_consistency_vector(
        vector["size1"],
        vector["size2"],
        bytes.fromhex(vector["root1"]),
        bytes.fromhex(vector["root2"]),
        unhex(vector["proof"]),
    )


@pytest.mark.parametrize(
    "probe", VECTORS["testdata_happy_path_probes"], ids=lambda p: str(p["file"])
)
def test_testdata_happy_path_probes(probe: dict[str, Any]) -> None:
    proof = unhex(probe["proof"])

    def check() -> None:
        if probe["kind"] == "inclusion":
            index, size, leaf = (
                probe["leafIdx"],
                probe["treeSize"],
                bytes.fromhex(probe["leafHash"]),
            )
            verify_inclusion(index, size, leaf, proof, bytes.fromhex(probe["root"]))
            check_inclusion_vector(index, size, leaf, proof, bytes.fromhex(probe["root"]))
        else:
            assert probe["kind"] == "consistency"
            size1, size2 = probe["size1"], probe["size2"]
            root1, root2 = bytes.fromhex(probe["root1"]), bytes.fromhex(probe["root2"])
            verify_consistency(size1, size2, root1, root2, proof)
            check_consistency_vector(size1, size2, root1, root2, proof)

    if probe["wantErr"]:
        with pytest.raises(MerkleError):
            check()
    else:
        check()


@pytest.mark.parametrize("example", VECTORS["negative_examples"], ids=lambda e: str(e["what"]))
def test_negative_examples(example: dict[str, Any]) -> None:
    assert example["expect"] == "fail"
    if "leaf_index" in example and "audit_path" in example:
        # A flipped proof byte is a well-formed proof of the wrong root.
        index, size = example["leaf_index"], example["tree_size"]
        with pytest.raises(RootMismatchError) as caught:
            verify_inclusion(
                index,
                size,
                VECTOR_STORE[NodeID(0, index)],
                unhex(example["audit_path"]),
                bytes.fromhex(example["root"]),
            )
        assert caught.value.expected == bytes.fromhex(example["root"])
    elif "leaf_index" in example:
        index, size = example["leaf_index"], example["tree_size"]
        assert index >= size
        with pytest.raises(MalformedProofError):
            inclusion_ranges(index, size)
        with pytest.raises(MalformedProofError):
            verify_inclusion(index, size, EMPTY_ROOT, [], EMPTY_ROOT)
    elif "size1" in example:
        # Swapped roots: the proof is well-formed, the roots are not the ones it proves.
        with pytest.raises(RootMismatchError):
            verify_consistency(
                example["size1"],
                example["size2"],
                bytes.fromhex(example["root1"]),
                bytes.fromhex(example["root2"]),
                unhex(example["proof"]),
            )
    else:
        assert "size 0" in example["what"] and "size1 > size2" in example["what"]
        roots = [bytes.fromhex(r) for r in VECTORS["roots_by_tree_size"].values()]
        proof = unhex(VECTORS["upstream_consistency_proofs"][1]["proof"])
        # From size 0 nothing can be proven: any proof hash is malformed.
        with pytest.raises(MalformedProofError):
            verify_consistency(0, 8, EMPTY_ROOT, roots[8], proof)
        with pytest.raises(MalformedProofError):
            roots_from_consistency_proof(0, 8, EMPTY_ROOT, proof)
        for size1, size2 in [(8, 1), (2, 1), (1, 0)]:
            with pytest.raises(MalformedProofError):
                consistency_ranges(size1, size2)
            with pytest.raises(MalformedProofError):
                verify_consistency(size1, size2, roots[size1], roots[size2], proof)


# Node names of the 7-leaf example tree in RFC 9162 §2.1.5, as leaf ranges.
RFC_NODE_RANGES = {
    "a": (0, 1),
    "b": (1, 2),
    "c": (2, 3),
    "d": (3, 4),
    "e": (4, 5),
    "f": (5, 6),
    "j": (6, 7),
    "g": (0, 2),
    "h": (2, 4),
    "i": (4, 6),
    "k": (0, 4),
    "l": (4, 7),
}
RFC_NAMES = VECTORS["rfc9162_7_leaf_example_node_names"]


def test_rfc9162_7_leaf_example_node_names() -> None:
    assert set(RFC_NAMES) == set(RFC_NODE_RANGES)
    for name, (a, b) in RFC_NODE_RANGES.items():
        assert ref_mth(tuple(LEAVES[a:b])) == bytes.fromhex(RFC_NAMES[name]), name
        assert prove(VECTOR_STORE, [(a, b)]) == [bytes.fromhex(RFC_NAMES[name])], name


@pytest.mark.parametrize("key", sorted(VECTORS["rfc9162_7_leaf_example_proofs"]))
def test_rfc9162_7_leaf_example_proofs(key: str) -> None:
    names = VECTORS["rfc9162_7_leaf_example_proofs"][key]
    expected_ranges = [RFC_NODE_RANGES[name] for name in names]
    expected_proof = [bytes.fromhex(RFC_NAMES[name]) for name in names]
    root7 = root_from_leaves(LEAVES[:7])
    if match := re.fullmatch(r"inclusion_d(\d+)", key):
        index = int(match[1])
        assert inclusion_ranges(index, 7) == expected_ranges
        assert prove(VECTOR_STORE, expected_ranges) == expected_proof
        verify_inclusion(index, 7, leaf_hash(LEAVES[index]), expected_proof, root7)
    elif match := re.fullmatch(r"consistency_(\d+)_(\d+)", key):
        size1, size2 = int(match[1]), int(match[2])
        assert consistency_ranges(size1, size2) == expected_ranges
        assert prove(VECTOR_STORE, expected_ranges) == expected_proof
        root1, root2 = root_from_leaves(LEAVES[:size1]), root_from_leaves(LEAVES[:size2])
        verify_consistency(size1, size2, root1, root2, expected_proof)
    else:
        pytest.fail(f"unknown RFC example proof {key!r}")


@pytest.mark.parametrize("vector", VECTORS["all_inclusion_proofs_sizes_1_to_8"])
def test_all_inclusion_proofs_sizes_1_to_8(vector: dict[str, Any]) -> None:
    check_inclusion_vector(
        vector["leaf_index"],
        vector["tree_size"],
        bytes.fromhex(vector["leaf_hash"]),
        unhex(vector["audit_path"]),
        bytes.fromhex(vector["root"]),
    )


def test_all_proof_tables_are_complete() -> None:
    inclusion = {
        (v["leaf_index"], v["tree_size"]) for v in VECTORS["all_inclusion_proofs_sizes_1_to_8"]
    }
    assert inclusion == {(m, n) for n in range(1, 9) for m in range(n)}
    consistency = {(v["size1"], v["size2"]) for v in VECTORS["all_consistency_proofs_sizes_1_to_8"]}
    assert consistency == {(m, n) for n in range(1, 9) for m in range(1, n)}


@pytest.mark.parametrize("vector", VECTORS["all_consistency_proofs_sizes_1_to_8"])
def test_all_consistency_proofs_sizes_1_to_8(vector: dict[str, Any]) -> None:
    check_consistency_vector(
        vector["size1"],
        vector["size2"],
        bytes.fromhex(vector["root1"]),
        bytes.fromhex(vector["root2"]),
        unhex(vector["proof"]),
    )


# --- signed checkpoint examples from the vectors ---

REKOR = SIGNED["rekor_v1_production"]


@pytest.mark.parametrize(
    "example", REKOR["checkpoints"], ids=lambda e: e["checkpoint"].split("\n")[1]
)
def test_rekor_checkpoints(example: dict[str, Any]) -> None:
    public_key = serialization.load_pem_public_key(REKOR["rekor_public_key_pem"].encode())
    assert isinstance(public_key, ec.EllipticCurvePublicKey)
    spki = public_key.public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    assert hashlib.sha256(spki).hexdigest() == REKOR["log_id_sha256_spki"]

    body, signatures = parse_note(example["checkpoint"])
    checkpoint = parse_checkpoint_body(body)
    origin, size, root = example["checkpoint"].split("\n")[:3]
    assert (checkpoint.origin, checkpoint.size, checkpoint.extensions) == (origin, int(size), ())
    assert checkpoint.root == base64.b64decode(root) and len(checkpoint.root) == HASH_SIZE
    assert checkpoint.body() == body

    [signature] = signatures
    assert signature.name == example["key_name"]
    # The ECDSA (type 0x02) key id hint is the first 4 bytes of SHA-256 of the DER SPKI.
    assert signature.key_id.hex() == example["key_hint_hex"]
    assert (signature.key_id == hashlib.sha256(spki).digest()[:4]) is example[
        "hint_matches_sha256_spki"
    ]
    assert signature.line() == example["checkpoint"].rsplit("\n", 2)[1] + "\n"

    def ecdsa_valid(text: bytes) -> bool:
        try:
            public_key.verify(signature.signature, text, ec.ECDSA(hashes.SHA256()))
        except InvalidSignature:
            return False
        return True

    assert ecdsa_valid(body) is example["ecdsa_p256_sha256_valid"]
    grown = Checkpoint(checkpoint.origin, checkpoint.size + 1, checkpoint.root).body()
    assert ecdsa_valid(grown) is example["valid_after_tree_size_plus_1"]
    # No Ed25519 verifier knows the Rekor key: the note does not open.
    stranger = Ed25519PrivateKey.generate().public_key()
    with pytest.raises(NoteSignatureError):
        open_note(example["checkpoint"], {example["key_name"]: stranger})


def go_test_key() -> tuple[str, Ed25519PrivateKey]:
    """The golang.org/x/mod/sumdb/note test signer key: PRIVATE+KEY+name+id+base64(0x01‖seed)."""
    prefix1, prefix2, name, key_id, encoded = SIGNED["go_sumdb_note_kat"]["skey"].split("+", 4)
    assert (prefix1, prefix2) == ("PRIVATE", "KEY")
    raw = base64.b64decode(encoded)
    assert raw[0] == SIGNATURE_TYPE_ED25519 and len(raw) == 33
    key = Ed25519PrivateKey.from_private_bytes(raw[1:])
    assert note_key_id(name, key.public_key().public_bytes_raw()).hex() == key_id
    return name, key


def test_go_sumdb_note_kat() -> None:
    kat = SIGNED["go_sumdb_note_kat"]
    name, key = go_test_key()
    verifier = parse_verifier_key(kat["vkey"])
    assert verifier.name == name and verifier.signature_type == SIGNATURE_TYPE_ED25519
    assert verifier.public_key == key.public_key()
    raw = key.public_key().public_bytes_raw()
    assert "0x0A || 0x01" in kat["key_id_rule"]
    assert verifier.key_id == hashlib.sha256(name.encode() + b"\n\x01" + raw).digest()[:4]
    assert verifier_key_string(name, key.public_key()) == kat["vkey"]
    # Ed25519 is deterministic: signing must reproduce the upstream note byte for byte.
    assert sign_note(kat["text"].encode(), name, key) == kat["signed_note"]
    assert open_note(kat["signed_note"], [verifier]) == (kat["text"].encode(), [name])


def test_derived_signed_checkpoint_8_leaf_tree() -> None:
    example = SIGNED["derived_signed_checkpoint_8_leaf_tree"]
    name, key = go_test_key()
    root = bytes.fromhex(example["root_hex"])
    assert root == root_from_leaves(LEAVES) == bytes.fromhex(VECTORS["roots_by_tree_size"]["8"])
    checkpoint = Checkpoint(example["origin"], example["tree_size"], root)
    assert sign_note(checkpoint.body(), name, key) == example["checkpoint"]
    body, names = open_note(example["checkpoint"], {name: key.public_key()})
    assert names == [name] and parse_checkpoint_body(body) == checkpoint


def test_derived_cosignature_v1_example() -> None:
    example = SIGNED["derived_cosignature_v1_example"]
    checkpoint = SIGNED["derived_signed_checkpoint_8_leaf_tree"]["checkpoint"]
    name, key = go_test_key()
    timestamp = int(re.findall(r"^time (\d+)$", example["signed_message"], re.MULTILINE)[0])
    body, _ = parse_note(checkpoint)
    assert cosignature_message(body, timestamp) == example["signed_message"].encode()

    raw = key.public_key().public_bytes_raw()
    assert "0x0A || 0x04" in example["key_id_rule"]
    key_id = note_key_id(name, raw, SIGNATURE_TYPE_COSIGNATURE_V1)
    assert key_id.hex() == example["key_id_hex"]
    assert key_id == hashlib.sha256(name.encode() + b"\n\x04" + raw).digest()[:4]

    cosigned = add_cosignature(checkpoint, name, key, timestamp)
    assert cosigned == checkpoint + example["signature_line"] + "\n"
    signature = parse_note(cosigned)[1][-1]
    # key_id(4) || u64 BE timestamp(8) || ed25519 sig(64)
    assert signature.key_id == key_id and len(signature.signature) == 8 + 64
    assert int.from_bytes(signature.signature[:8], "big") == timestamp
    assert "timestamp(8)" in example["timestamped_signature_layout"]

    witness = NoteVerifier(name, key.public_key(), SIGNATURE_TYPE_COSIGNATURE_V1)
    assert open_note(cosigned, [witness]) == (body, [name])
    # The same key and name as a plain signer has another key id: it ignores the cosignature.
    only_cosigned = body.decode() + "\n" + example["signature_line"] + "\n"
    with pytest.raises(NoteSignatureError):
        open_note(only_cosigned, {name: key.public_key()})
    assert open_note(only_cosigned, [witness]) == (body, [name])


# --- reference implementation: RFC 9162 §2.1, transcribed ---


def _sha256(data: bytes) -> bytes:
    return hashlib.sha256(data).digest()


def _k(n: int) -> int:
    """The largest power of two smaller than n (k < n <= 2k)."""
    k = 1
    while k * 2 < n:
        k *= 2
    return k


@functools.cache
def ref_mth(d: tuple[bytes, ...]) -> bytes:
    """MTH(D[n]), §2.1.1."""
    n = len(d)
    if n == 0:
        return _sha256(b"")
    if n == 1:
        return _sha256(b"\x00" + d[0])
    k = _k(n)
    return _sha256(b"\x01" + ref_mth(d[0:k]) + ref_mth(d[k:n]))


def ref_path(m: int, d: tuple[bytes, ...]) -> list[bytes]:
    """PATH(m, D[n]), §2.1.3.1."""
    n = len(d)
    if n == 1:
        return []
    k = _k(n)
    if m < k:
        return [*ref_path(m, d[0:k]), ref_mth(d[k:n])]
    return [*ref_path(m - k, d[k:n]), ref_mth(d[0:k])]


def ref_proof(m: int, d: tuple[bytes, ...]) -> list[bytes]:
    """PROOF(m, D[n]), §2.1.4.1."""
    return ref_subproof(m, d, True)


def ref_subproof(m: int, d: tuple[bytes, ...], b: bool) -> list[bytes]:
    """SUBPROOF(m, D[n], b), §2.1.4.1."""
    n = len(d)
    if m == n:
        return [] if b else [ref_mth(d)]
    k = _k(n)
    if m <= k:
        return [*ref_subproof(m, d[0:k], b), ref_mth(d[k:n])]
    return [*ref_subproof(m - k, d[k:n], False), ref_mth(d[0:k])]


REF_BOUND = 64
REF_DATA = (*LEAVES, *(b"entry %d" % i for i in range(len(LEAVES), REF_BOUND)))


def test_reference_reproduces_the_vectors() -> None:
    data = tuple(LEAVES)
    for size, root in VECTORS["roots_by_tree_size"].items():
        assert ref_mth(data[: int(size)]).hex() == root
    for v in VECTORS["all_inclusion_proofs_sizes_1_to_8"]:
        assert ref_path(v["leaf_index"], data[: v["tree_size"]]) == unhex(v["audit_path"])
    for v in VECTORS["all_consistency_proofs_sizes_1_to_8"]:
        assert ref_proof(v["size1"], data[: v["size2"]]) == unhex(v["proof"])


def grow_reference_tree() -> Iterator[tuple[int, tuple[bytes, ...], Store, CompactRange]]:
    """Yield (n, data, store, compact) after each append up to REF_BOUND leaves.

    Proofs at size n are built only from nodes reported so far, which shows the callback hands
    storage every node a proof needs, as soon as it exists.
    """
    store: Store = {}
    compact = CompactRange()
    for n in range(1, REF_BOUND + 1):
        compact.append(leaf_hash(REF_DATA[n - 1]), recorder(store))
        yield n, REF_DATA[:n], store, compact


def test_compact_range_matches_reference() -> None:
    for n, data, store, compact in grow_reference_tree():
        assert compact.size == n
        assert compact.root() == ref_mth(data) == root_from_leaves(data)
        assert compact.hashes == [store[node] for node in perfect_subtrees(0, n)]
        assert len(compact.hashes) == n.bit_count()
        # Every complete perfect subtree, and nothing else, has been reported.
        assert len(store) == 2 * n - n.bit_count()
        assert all(
            node.end <= n and store[node] == ref_mth(data[node.begin : node.end]) for node in store
        )


def test_inclusion_matches_reference_for_every_index_and_size() -> None:
    for n, data, store, _ in grow_reference_tree():
        root = ref_mth(data)
        for m in range(n):
            expected = ref_path(m, data)
            ranges = inclusion_ranges(m, n)
            assert [ref_mth(data[a:b]) for a, b in ranges] == expected
            assert prove(store, ranges) == expected
            assert root_from_inclusion_proof(m, n, leaf_hash(data[m]), expected) == root
            verify_inclusion(m, n, leaf_hash(data[m]), expected, root)


def test_consistency_matches_reference_for_every_pair_of_sizes() -> None:
    roots = [EMPTY_ROOT]
    for n, data, store, _ in grow_reference_tree():
        roots.append(ref_mth(data))
        assert consistency_ranges(0, n) == []
        verify_consistency(0, n, EMPTY_ROOT, roots[n], [])
        for m in range(1, n + 1):
            expected = ref_proof(m, data)
            ranges = consistency_ranges(m, n)
            assert [ref_mth(data[a:b]) for a, b in ranges] == expected
            assert prove(store, ranges) == expected
            verify_consistency(m, n, roots[m], roots[n], expected)
            if m < n:
                assert roots_from_consistency_proof(m, n, roots[m], expected) == (
                    roots[m],
                    roots[n],
                )


# --- a bigger tree for broken proofs and properties ---

BIG = 4096


@functools.cache
def big_tree() -> tuple[Store, list[bytes]]:
    """Every node of a BIG-leaf tree, and its root at every size 0..BIG."""
    store: Store = {}
    compact = CompactRange()
    roots = [compact.root()]
    for i in range(BIG):
        compact.append(leaf_hash(i.to_bytes(4, "big")), recorder(store))
        roots.append(compact.root())
    return store, roots


def levelwise_root(leaf_hashes: Sequence[bytes]) -> bytes:
    """An independent MTH: hash pairs level by level, promoting an unpaired last node."""
    level = list(leaf_hashes)
    if not level:
        return EMPTY_ROOT
    while len(level) > 1:
        pairs = [node_hash(level[i], level[i + 1]) for i in range(0, len(level) - 1, 2)]
        level = pairs + level[len(pairs) * 2 :]
    return level[0]


def flip(value: bytes, bit: int) -> bytes:
    out = bytearray(value)
    out[bit // 8] ^= 1 << (bit % 8)
    return bytes(out)


BROKEN_BOUND = 24


def inclusion_case(index: int, size: int) -> tuple[bytes, list[bytes], bytes]:
    store, roots = big_tree()
    return store[NodeID(0, index)], prove(store, inclusion_ranges(index, size)), roots[size]


def test_error_types_are_distinct() -> None:
    assert issubclass(MalformedProofError, MerkleError)
    assert issubclass(RootMismatchError, MerkleError)
    assert not issubclass(RootMismatchError, MalformedProofError)
    assert not issubclass(MalformedProofError, RootMismatchError)
    assert issubclass(MalformedNoteError, MalformedProofError)
    assert issubclass(NoteSignatureError, MerkleError)
    assert not issubclass(NoteSignatureError, MalformedProofError | RootMismatchError)
    error = RootMismatchError("inclusion proof", b"\x01" * 32, b"\x02" * 32)
    copy = pickle.loads(pickle.dumps(error))
    assert (copy.expected, copy.computed, str(copy)) == (error.expected, error.computed, str(error))
    assert "0101" in str(error) and "0202" in str(error)


@pytest.mark.parametrize("size", range(1, BROKEN_BOUND + 1))
def test_inclusion_proof_bit_flips_are_root_mismatches(size: int) -> None:
    for index in range(size):
        leaf, proof, root = inclusion_case(index, size)
        for i in range(len(proof)):
            for bit in (0, 7, 255):
                broken = [*proof[:i], flip(proof[i], bit), *proof[i + 1 :]]
                with pytest.raises(RootMismatchError) as caught:
                    verify_inclusion(index, size, leaf, broken, root)
                assert caught.value.expected == root and caught.value.computed != root
        with pytest.raises(RootMismatchError):
            verify_inclusion(index, size, flip(leaf, 3), proof, root)
        with pytest.raises(RootMismatchError) as caught:
            verify_inclusion(index, size, leaf, proof, flip(root, 3))
        assert caught.value.computed == root


@pytest.mark.parametrize("size", range(1, BROKEN_BOUND + 1))
def test_inclusion_proof_of_wrong_shape_is_malformed(size: int) -> None:
    for index in range(size):
        leaf, proof, root = inclusion_case(index, size)
        wrong_shapes = [[*proof, root], [root, *proof], [*proof, leaf, root]]
        if proof:
            wrong_shapes += [proof[:-1], proof[1:], [*proof[:-1], proof[-1][:31]]]
            wrong_shapes.append([*proof[:-1], proof[-1] + b"\x00"])
        for broken in wrong_shapes:
            with pytest.raises(MalformedProofError):
                verify_inclusion(index, size, leaf, broken, root)
        for bad_leaf, bad_root in [(leaf[:31], root), (leaf, root + b"\x00"), (b"", root)]:
            with pytest.raises(MalformedProofError):
                verify_inclusion(index, size, bad_leaf, proof, bad_root)
        for bad_index, bad_size in [(size, size), (-1, size), (index, 0), (index, -1)]:
            with pytest.raises(MalformedProofError):
                verify_inclusion(bad_index, bad_size, leaf, proof, root)


@pytest.mark.parametrize("size", range(1, BROKEN_BOUND + 1))
def test_inclusion_proof_at_wrong_position_fails(size: int) -> None:
    _, roots = big_tree()
    for index in range(size):
        leaf, proof, root = inclusion_case(index, size)
        # Another index in the same tree: a mismatch if the proof length fits, else malformed.
        for other in range(size):
            if other != index:
                fits = len(inclusion_ranges(other, size)) == len(proof)
                with pytest.raises(RootMismatchError if fits else MalformedProofError):
                    verify_inclusion(other, size, leaf, proof, root)
        # The same proof against the checkpoint of another size.
        for other in range(index + 1, BROKEN_BOUND + 2):
            if other != size:
                fits = len(inclusion_ranges(index, other)) == len(proof)
                with pytest.raises(RootMismatchError if fits else MalformedProofError):
                    verify_inclusion(index, other, leaf, proof, roots[other])


@pytest.mark.parametrize("size2", range(2, BROKEN_BOUND + 1))
def test_broken_consistency_proofs(size2: int) -> None:
    store, roots = big_tree()
    root2 = roots[size2]
    for size1 in range(1, size2):
        root1, proof = roots[size1], prove(store, consistency_ranges(size1, size2))
        verify_consistency(size1, size2, root1, root2, proof)
        for i in range(len(proof)):
            for bit in (0, 100, 255):
                broken = [*proof[:i], flip(proof[i], bit), *proof[i + 1 :]]
                with pytest.raises(RootMismatchError):
                    verify_consistency(size1, size2, root1, root2, broken)
        for bad1, bad2 in [(root2, root1), (flip(root1, 9), root2), (root1, flip(root2, 9))]:
            with pytest.raises(RootMismatchError):
                verify_consistency(size1, size2, bad1, bad2, proof)
        wrong_shapes = [proof[:-1], proof[1:], [*proof, root1], [root1, *proof], []]
        wrong_shapes.append([*proof[:-1], proof[-1][:16]])
        for broken in wrong_shapes:
            with pytest.raises(MalformedProofError):
                verify_consistency(size1, size2, root1, root2, broken)
        with pytest.raises(MalformedProofError):
            verify_consistency(size2, size1, root2, root1, proof)
        with pytest.raises(MalformedProofError):
            verify_consistency(size1, size2, root1[:31], root2, proof)
        # Claimed sizes that are not the proof's: mismatch if the length fits, else malformed.
        for other1 in range(1, size2):
            if other1 != size1:
                fits = len(consistency_ranges(other1, size2)) == len(proof)
                with pytest.raises(RootMismatchError if fits else MalformedProofError):
                    verify_consistency(other1, size2, roots[other1], root2, proof)
        for other2 in range(size1 + 1, BROKEN_BOUND + 2):
            if other2 != size2:
                fits = len(consistency_ranges(size1, other2)) == len(proof)
                with pytest.raises(RootMismatchError if fits else MalformedProofError):
                    verify_consistency(size1, other2, root1, roots[other2], proof)


def test_trivial_consistency_proofs() -> None:
    _, roots = big_tree()
    for size in range(BROKEN_BOUND):
        verify_consistency(size, size, roots[size], roots[size], [])
        verify_consistency(0, size, EMPTY_ROOT, roots[size], [])
        assert consistency_ranges(size, size) == []
        with pytest.raises(MalformedProofError):
            verify_consistency(size, size, roots[size], roots[size], [roots[size]])
        with pytest.raises(MalformedProofError):
            verify_consistency(0, size, EMPTY_ROOT, roots[size], [roots[size]])
        with pytest.raises(MalformedProofError):
            roots_from_consistency_proof(size, size, roots[size], [])
    with pytest.raises(RootMismatchError) as caught:
        verify_consistency(3, 3, roots[3], roots[4], [])
    assert (caught.value.expected, caught.value.computed) == (roots[4], roots[3])
    with pytest.raises(RootMismatchError) as caught:
        verify_consistency(0, 5, roots[1], roots[5], [])
    assert caught.value.expected == EMPTY_ROOT


def test_input_validation() -> None:
    for begin, end in [(-1, 3), (5, 3), (0, -1)]:
        with pytest.raises(MalformedProofError):
            perfect_subtrees(begin, end)
    assert perfect_subtrees(3, 3) == [] and perfect_subtrees(0, 0) == []
    assert perfect_subtrees(0, 7) == [NodeID(2, 0), NodeID(1, 2), NodeID(0, 6)]
    assert perfect_subtrees(3, 13) == [NodeID(0, 3), NodeID(2, 1), NodeID(2, 2), NodeID(0, 12)]
    with pytest.raises(MalformedProofError):
        fold_range([])
    with pytest.raises(MalformedProofError):
        fold_range([EMPTY_ROOT, b"short"])
    assert fold_range([EMPTY_ROOT]) == EMPTY_ROOT
    with pytest.raises(MalformedProofError):
        NodeID(-1, 0)
    with pytest.raises(MalformedProofError):
        NodeID(0, -1)
    assert (NodeID(3, 2).begin, NodeID(3, 2).end) == (16, 24)
    for index, size in [(0, 0), (-1, 5), (5, 5), (6, 5)]:
        with pytest.raises(MalformedProofError):
            inclusion_ranges(index, size)
    for size1, size2 in [(3, 2), (-1, 2), (-2, -1)]:
        with pytest.raises(MalformedProofError):
            consistency_ranges(size1, size2)
    assert consistency_ranges(0, 0) == []
    assert inclusion_ranges(0, 1) == []


# --- CompactRange ---


def test_compact_range_basics() -> None:
    empty = CompactRange()
    assert (empty.size, empty.hashes, empty.root(), empty.to_bytes()) == (0, [], EMPTY_ROOT, b"")
    assert "size=0" in repr(empty)
    store, roots = big_tree()
    compact = CompactRange()
    for i in range(100):
        compact.append(store[NodeID(0, i)])
    assert compact.root() == roots[100]
    frontier = compact.hashes
    frontier.clear()  # a copy: the range is unaffected
    assert compact.root() == roots[100] and len(compact.hashes) == 3
    restored = CompactRange.from_bytes(100, compact.to_bytes())
    assert restored.hashes == compact.hashes and restored.size == 100
    assert len(compact.to_bytes()) == 3 * HASH_SIZE
    assert CompactRange(100, compact.hashes).root() == roots[100]


def test_compact_range_rejects_bad_state() -> None:
    with pytest.raises(MalformedProofError):
        CompactRange(3, [EMPTY_ROOT])
    with pytest.raises(MalformedProofError):
        CompactRange(-1, [])
    with pytest.raises(MalformedProofError):
        CompactRange(1, [b"x" * 31])
    with pytest.raises(MalformedProofError):
        CompactRange(0, [EMPTY_ROOT])
    with pytest.raises(MalformedProofError):
        CompactRange.from_bytes(3, EMPTY_ROOT)
    with pytest.raises(MalformedProofError):
        CompactRange.from_bytes(1, EMPTY_ROOT + b"x")
    with pytest.raises(MalformedProofError):
        CompactRange().append(b"raw data, not a leaf hash")


def test_compact_range_reports_nodes_in_order() -> None:
    reported: list[NodeID] = []
    compact = CompactRange(3, [node_hash(EMPTY_ROOT, EMPTY_ROOT), EMPTY_ROOT])
    compact.append(EMPTY_ROOT, lambda node, _: reported.append(node))
    assert reported == [NodeID(0, 3), NodeID(1, 1), NodeID(2, 0)]
    assert compact.size == 4 and len(compact.hashes) == 1


def test_compact_range_failed_callback_leaves_range_unchanged() -> None:
    store, roots = big_tree()
    compact = CompactRange()
    for i in range(7):
        compact.append(store[NodeID(0, i)])

    def fail_on_level_2(node: NodeID, _: bytes) -> None:
        if node.level == 2:
            raise RuntimeError("storage down")

    with pytest.raises(RuntimeError):
        compact.append(store[NodeID(0, 7)], fail_on_level_2)
    assert compact.size == 7 and compact.root() == roots[7]
    compact.append(store[NodeID(0, 7)])
    assert compact.root() == roots[8]


# --- properties ---


@settings(max_examples=150, deadline=None)
@given(st.data())
def test_property_inclusion(data: st.DataObject) -> None:
    store, roots = big_tree()
    size = data.draw(st.integers(1, BIG), label="size")
    index = data.draw(st.integers(0, size - 1), label="index")
    ranges = inclusion_ranges(index, size)
    # The proof's ranges and the leaf tile the tree.
    assert sorted([*ranges, (index, index + 1)]) == tile(0, size, [*ranges, (index, index + 1)])
    assert len(ranges) <= (size - 1).bit_length()
    leaf, proof = store[NodeID(0, index)], prove(store, ranges)
    verify_inclusion(index, size, leaf, proof, roots[size])
    if proof:
        i = data.draw(st.integers(0, len(proof) - 1), label="element")
        bit = data.draw(st.integers(0, 255), label="bit")
        with pytest.raises(RootMismatchError):
            verify_inclusion(
                index, size, leaf, [*proof[:i], flip(proof[i], bit), *proof[i + 1 :]], roots[size]
            )
        with pytest.raises(MalformedProofError):
            verify_inclusion(index, size, leaf, proof[:i] + proof[i + 1 :], roots[size])


@settings(max_examples=150, deadline=None)
@given(st.data())
def test_property_consistency(data: st.DataObject) -> None:
    store, roots = big_tree()
    size2 = data.draw(st.integers(1, BIG), label="size2")
    size1 = data.draw(st.integers(0, size2), label="size1")
    ranges = consistency_ranges(size1, size2)
    proof = prove(store, ranges)
    verify_consistency(size1, size2, roots[size1], roots[size2], proof)
    if 0 < size1 < size2:
        # The ranges, plus the first tree when it is one perfect subtree, tile the second tree;
        # those ending by size1 tile the first tree.
        first = [(0, size1)] if size1 & (size1 - 1) == 0 else []
        assert sorted([*ranges, *first]) == tile(0, size2, [*ranges, *first])
        assert sorted([*first, *(r for r in ranges if r[1] <= size1)]) == tile(
            0, size1, [*first, *(r for r in ranges if r[1] <= size1)]
        )
        i = data.draw(st.integers(0, len(proof) - 1), label="element")
        with pytest.raises(RootMismatchError):
            verify_consistency(
                size1,
                size2,
                roots[size1],
                roots[size2],
                [*proof[:i], flip(proof[i], 0), *proof[i + 1 :]],
            )
        with pytest.raises(MalformedProofError):
            verify_consistency(size1, size2, roots[size1], roots[size2], [*proof, proof[0]])
    else:
        assert proof == []


def tile(begin: int, end: int, ranges: Sequence[tuple[int, int]]) -> list[tuple[int, int]]:
    """``ranges`` sorted, asserting they cover [begin, end) exactly once."""
    ordered = sorted(ranges)
    position = begin
    for a, b in ordered:
        assert a == position and b > a, (ordered, begin, end)
        position = b
    assert position == end
    return ordered


@settings(max_examples=100, deadline=None)
@given(st.integers(0, BIG))
def test_property_root_levelwise(size: int) -> None:
    store, roots = big_tree()
    assert levelwise_root([store[NodeID(0, i)] for i in range(size)]) == roots[size]
    if size:
        assert prove(store, [(0, size)]) == [roots[size]]


@settings(max_examples=300, deadline=None)
@given(st.integers(0, 2**40), st.integers(0, 2**40))
def test_property_perfect_subtrees(x: int, y: int) -> None:
    begin, end = min(x, y), max(x, y)
    nodes = perfect_subtrees(begin, end)
    tile(begin, end, [(node.begin, node.end) for node in nodes])
    assert [(n.begin, n.end) for n in nodes] == sorted((n.begin, n.end) for n in nodes)
    for node in nodes:
        # Maximal: the parent would stick out of the range.
        parent = NodeID(node.level + 1, node.index >> 1)
        assert parent.begin < begin or parent.end > end
    # Sizes strictly grow, then strictly shrink; the largest may occur twice in a row.
    levels = [node.level for node in nodes]
    if levels:
        peak = levels.index(max(levels))
        rising, falling = levels[: peak + 1], levels[peak + 1 :]
        if falling and falling[0] == levels[peak]:
            falling = falling[1:]
        assert rising == sorted(set(rising))
        assert falling == sorted(set(falling), reverse=True) and levels[peak] not in falling
    assert len(nodes) <= 2 * max(end - begin, 1).bit_length()


@settings(max_examples=100, deadline=None)
@given(st.integers(0, BIG - 64), st.integers(0, 64))
def test_property_compact_range_resumes(size: int, more: int) -> None:
    store, roots = big_tree()
    frontier = b"".join(store[node] for node in perfect_subtrees(0, size))
    compact = CompactRange.from_bytes(size, frontier)
    assert compact.root() == roots[size] and compact.to_bytes() == frontier
    reported: Store = {}
    for i in range(size, size + more):
        compact.append(store[NodeID(0, i)], recorder(reported))
    assert compact.root() == roots[size + more]
    # Resuming reports exactly the nodes completed by the new leaves, with the stored hashes.
    assert all(store[node] == value for node, value in reported.items())
    assert {node for node in store if size < node.end <= size + more} == set(reported)


# --- checkpoints ---

ROOT8 = bytes.fromhex(VECTORS["roots_by_tree_size"]["8"])
ROOT8_B64 = base64.b64encode(ROOT8).decode()


def test_checkpoint_body_format() -> None:
    checkpoint = Checkpoint("example.com/log", 8, ROOT8, ("ext one", "ext two"))
    assert checkpoint.body() == f"example.com/log\n8\n{ROOT8_B64}\next one\next two\n".encode()
    assert (
        Checkpoint("o", 0, EMPTY_ROOT).body()
        == b"o\n0\n47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU=\n"
    )
    for text in (checkpoint.body(), checkpoint.body().decode()):
        assert parse_checkpoint_body(text) == checkpoint
    biggest = Checkpoint("o", 2**64 - 1, ROOT8)
    assert parse_checkpoint_body(biggest.body()) == biggest


@pytest.mark.parametrize(
    "body",
    [
        "",
        "\n",
        f"example.com/log\n8\n{ROOT8_B64}",
        f"\n8\n{ROOT8_B64}\n",
        "example.com/log\n8\n",
        f"example.com/log\n08\n{ROOT8_B64}\n",
        f"example.com/log\n+8\n{ROOT8_B64}\n",
        f"example.com/log\n-1\n{ROOT8_B64}\n",
        f"example.com/log\n 8\n{ROOT8_B64}\n",
        f"example.com/log\n8 \n{ROOT8_B64}\n",
        f"example.com/log\n\u0668\n{ROOT8_B64}\n",
        f"example.com/log\n0x8\n{ROOT8_B64}\n",
        f"example.com/log\n\n{ROOT8_B64}\n",
        f"example.com/log\n18446744073709551616\n{ROOT8_B64}\n",
        f"example.com/log\n8\n{base64.b64encode(ROOT8[:31]).decode()}\n",
        f"example.com/log\n8\n{base64.b64encode(ROOT8 + b'x').decode()}\n",
        f"example.com/log\n8\n{ROOT8_B64.rstrip('=')}\n",
        f"example.com/log\n8\n{ROOT8_B64[:-2]}B=\n",
        f"example.com/log\n8\n {ROOT8_B64}\n",
        f"example.com/log\n8\n{ROOT8.hex()}\n",
        f"example.com/log\n8\n{ROOT8_B64}\n\n",
        f"example.com/log\n8\n{ROOT8_B64}\next\n\n",
        f"example.com\tlog\n8\n{ROOT8_B64}\n",
        f"example.com/log\r\n8\n{ROOT8_B64}\n",
    ],
)
def test_malformed_checkpoint_bodies(body: str) -> None:
    with pytest.raises(MalformedNoteError):
        parse_checkpoint_body(body)
    with pytest.raises(MalformedProofError):  # the same error, seen as "bad checkpoint text"
        parse_checkpoint_body(body.encode())


def test_checkpoint_rejects_bad_fields() -> None:
    with pytest.raises(MalformedNoteError):
        parse_checkpoint_body(b"example.com/\xff\n8\n" + ROOT8_B64.encode() + b"\n")
    for origin, size, root, extensions in [
        ("", 8, ROOT8, ()),
        ("a\nb", 8, ROOT8, ()),
        ("o", -1, ROOT8, ()),
        ("o", 2**64, ROOT8, ()),
        ("o", 8, ROOT8[:31], ()),
        ("o", 8, ROOT8, ("",)),
        ("o", 8, ROOT8, ("two\nlines",)),
    ]:
        with pytest.raises(MalformedNoteError):
            Checkpoint(origin, size, root, extensions)


LINE_TEXT = st.text(st.characters(codec="utf-8", min_codepoint=0x20), min_size=1, max_size=40)


@settings(max_examples=200, deadline=None)
@given(
    LINE_TEXT,
    st.integers(0, 2**64 - 1),
    st.binary(min_size=32, max_size=32),
    st.lists(LINE_TEXT, max_size=3).map(tuple),
)
def test_property_checkpoint_round_trip(
    origin: str, size: int, root: bytes, extensions: tuple[str, ...]
) -> None:
    checkpoint = Checkpoint(origin, size, root, extensions)
    assert parse_checkpoint_body(checkpoint.body()) == checkpoint


# --- signed notes ---

LOG = "example.com/agent-audit-log"
WITNESS = "witness.example/w1"


@pytest.fixture(scope="module")
def log_key() -> Ed25519PrivateKey:
    return Ed25519PrivateKey.generate()


@pytest.fixture(scope="module")
def witness_key() -> Ed25519PrivateKey:
    return Ed25519PrivateKey.generate()


BODY = Checkpoint(LOG, 8, ROOT8).body()


def test_sign_and_open_note(log_key: Ed25519PrivateKey) -> None:
    note = sign_note(BODY, LOG, log_key)
    assert note.startswith(BODY.decode() + "\n— " + LOG + " ")
    assert note.endswith("\n") and note.count("\n") == 5
    body, [signature] = parse_note(note)
    assert body == BODY and signature.name == LOG
    assert signature.key_id == note_key_id(LOG, log_key.public_key().public_bytes_raw())
    assert len(signature.signature) == 64
    verifier = NoteVerifier(LOG, log_key.public_key())
    assert open_note(note, [verifier]) == (BODY, [LOG])
    assert open_note(note, {LOG: log_key.public_key()}) == (BODY, [LOG])
    assert open_note(note.encode(), iter([verifier])) == (BODY, [LOG])
    assert sign_note(BODY.decode(), LOG, log_key) == note
    assert parse_checkpoint_body(body) == Checkpoint(LOG, 8, ROOT8)


def test_cosigned_note(log_key: Ed25519PrivateKey, witness_key: Ed25519PrivateKey) -> None:
    note = add_signature(sign_note(BODY, LOG, log_key), WITNESS, witness_key)
    log = NoteVerifier(LOG, log_key.public_key())
    witness = NoteVerifier(WITNESS, witness_key.public_key())
    assert open_note(note, [log, witness]) == (BODY, [LOG, WITNESS])
    assert open_note(note, [witness]) == (BODY, [WITNESS])
    assert open_note(note, [log]) == (BODY, [LOG])
    # A tlog-cosignature/v1 witness on top, plus a signer nobody knows.
    stranger = Ed25519PrivateKey.generate()
    note = add_cosignature(note, "witness.example/w2", stranger, 1_700_000_000)
    note = add_signature(note, "unknown.example", Ed25519PrivateKey.generate())
    w2 = NoteVerifier("witness.example/w2", stranger.public_key(), SIGNATURE_TYPE_COSIGNATURE_V1)
    assert open_note(note, [w2, witness, log]) == (BODY, [LOG, WITNESS, "witness.example/w2"])
    assert len(parse_note(note)[1]) == 4


def test_tampered_notes_fail(log_key: Ed25519PrivateKey, witness_key: Ed25519PrivateKey) -> None:
    note = sign_note(BODY, LOG, log_key)
    log = NoteVerifier(LOG, log_key.public_key())
    tampered_body = note.replace("\n8\n", "\n9\n")
    with pytest.raises(NoteSignatureError):
        open_note(tampered_body, [log])
    body, [signature] = parse_note(note)
    bad = type(signature)(signature.name, signature.key_id, flip(signature.signature, 5))
    with pytest.raises(NoteSignatureError):
        open_note(body.decode() + "\n" + bad.line(), [log])
    # A flipped key id no longer names a known key: ignored, so nothing verifies.
    unknown_id = type(signature)(signature.name, flip(signature.key_id, 0), signature.signature)
    with pytest.raises(NoteSignatureError):
        open_note(body.decode() + "\n" + unknown_id.line(), [log])
    # Unknown keys, and a known name with another key, are not trusted.
    with pytest.raises(NoteSignatureError):
        open_note(note, [NoteVerifier(WITNESS, witness_key.public_key())])
    with pytest.raises(NoteSignatureError):
        open_note(note, {LOG: witness_key.public_key()})
    with pytest.raises(NoteSignatureError):
        open_note(note, [])
    # A bad signature from a known key rejects the note even beside a good one.
    with pytest.raises(NoteSignatureError):
        open_note(note + bad.line(), [log])
    # A same-named line from another key is ignored.
    impostor = add_signature(note, LOG, witness_key)
    assert open_note(impostor, [log]) == (BODY, [LOG])
    # A cosignature with a timestamp it does not sign, or a truncated one, fails.
    cosigned = add_cosignature(note, WITNESS, witness_key, 1_700_000_000)
    witness = NoteVerifier(WITNESS, witness_key.public_key(), SIGNATURE_TYPE_COSIGNATURE_V1)
    cosig = parse_note(cosigned)[1][-1]
    for forged in (flip(cosig.signature, 63), cosig.signature[:-1], flip(cosig.signature, 7)):
        line = type(cosig)(cosig.name, cosig.key_id, forged).line()
        with pytest.raises(NoteSignatureError):
            open_note(note + line, [witness])


@pytest.mark.parametrize(
    "note",
    [
        "",
        "text\n",
        "text\n\n",
        "text\n\n— name AAAAAAAA",
        "text\n— name AAAAAAAAAAAA\n",
        "text\n\n- name AAAAAAAAAAAA\n",
        "text\n\n—name AAAAAAAAAAAA\n",
        "text\n\n— name\n",
        "text\n\n— name \n",
        "text\n\n—  AAAAAAAAAAAA\n",
        "text\n\n— na+me AAAAAAAAAAAA\n",
        "text\n\n— name AAAA AAAAAAAA\n",
        "text\n\n— name AAAAAAAAAAB=\n",
        "text\n\n— name AAAAAAAAAAA\n",
        "text\n\n— name !!!!!!!!\n",
        "text\n\n— name AAAAAA==\n",
        "text\n\n— name AAAAAAAAAAAA\n\n",
        "text\n\n— name AAAAAAAAAAAA\nnot a signature\n",
        "te\rxt\n\n— name AAAAAAAAAAAA\n",
        "text\n\n— name AAAAAAAAAAAA\t\n",
        "text\n\n" + "— name AAAAAAAAAAAA\n" * (MAX_NOTE_SIGNATURES + 1),
    ],
)
def test_malformed_notes(note: str, log_key: Ed25519PrivateKey) -> None:
    with pytest.raises(MalformedNoteError):
        parse_note(note)
    with pytest.raises(MalformedNoteError):
        open_note(note, {LOG: log_key.public_key()})
    with pytest.raises(MalformedNoteError):
        add_signature(note, LOG, log_key)


def test_note_limits_and_encoding(log_key: Ed25519PrivateKey) -> None:
    with pytest.raises(MalformedNoteError):
        parse_note(b"text\xff\n\n\xe2\x80\x94 name AAAAAAAAAAAA\n")
    most = "text\n\n" + "— name AAAAAAAAAAAA\n" * MAX_NOTE_SIGNATURES
    assert len(parse_note(most)[1]) == MAX_NOTE_SIGNATURES
    with pytest.raises(NoteSignatureError):
        open_note(most, {LOG: log_key.public_key()})
    # The text may contain blank lines: the last one separates the signatures.
    body = b"para one\n\npara two\n"
    assert open_note(sign_note(body, LOG, log_key), {LOG: log_key.public_key()})[0] == body


def test_sign_note_validation(log_key: Ed25519PrivateKey) -> None:
    for body, name in [
        (b"no newline", LOG),
        (b"tab\there\n", LOG),
        (b"\xff\n", LOG),
        (BODY, ""),
        (BODY, "has space"),
        (BODY, "has+plus"),
        (BODY, "nbsp\u00a0name"),
    ]:
        with pytest.raises(MalformedNoteError):
            sign_note(body, name, log_key)
    note = sign_note(BODY, LOG, log_key)
    for timestamp in (-1, 2**63):
        with pytest.raises(MalformedNoteError):
            add_cosignature(note, WITNESS, log_key, timestamp)
    with pytest.raises(MalformedNoteError):
        add_signature(note, "bad name", log_key)


def test_verifier_keys(log_key: Ed25519PrivateKey) -> None:
    public = log_key.public_key()
    for signature_type in (SIGNATURE_TYPE_ED25519, SIGNATURE_TYPE_COSIGNATURE_V1):
        vkey = verifier_key_string(LOG, public, signature_type)
        name, key_id, encoded = vkey.split("+", 2)
        assert name == LOG
        assert key_id == note_key_id(LOG, public.public_bytes_raw(), signature_type).hex()
        assert base64.b64decode(encoded) == bytes([signature_type]) + public.public_bytes_raw()
        verifier = parse_verifier_key(vkey)
        assert (verifier.name, verifier.signature_type) == (LOG, signature_type)
        assert verifier.public_key == public and verifier.key_id.hex() == key_id
        assert parse_verifier_key(f"{name}+{key_id.upper()}+{encoded}") == verifier
    vkey = verifier_key_string(LOG, public)
    name, key_id, encoded = vkey.split("+", 2)
    other = verifier_key_string(LOG, Ed25519PrivateKey.generate().public_key()).split("+")[1]
    raw = base64.b64decode(encoded)
    wrong_type = base64.b64encode(bytes([0x02]) + raw[1:]).decode()
    too_long = base64.b64encode(raw + b"x").decode()
    for bad in [
        "",
        LOG,
        f"{name}+{key_id}",
        f"{vkey}+extra",
        f"{name}+{other}+{encoded}",
        f"{name}+{key_id[:6]}+{encoded}",
        f"{name}+{key_id}zz+{encoded}",
        f"{name}+{key_id}+{encoded[:-4]}",
        f"{name}+{key_id}+{wrong_type}",
        f"{name}+{key_id}+{too_long}",
        f"{name}+{key_id}+!{encoded[1:]}",
        f"other.example+{key_id}+{encoded}",
        f"bad name+{key_id}+{encoded}",
    ]:
        with pytest.raises(MalformedNoteError):
            parse_verifier_key(bad)
    with pytest.raises(MalformedNoteError):
        NoteVerifier(LOG, public, 0x02)
    with pytest.raises(MalformedNoteError):
        verifier_key_string("bad name", public)


def test_verifier_key_whose_base64_contains_plus() -> None:
    # Only the first two '+' separate fields: base64 may contain '+' too.
    for seed in range(1000):
        key = Ed25519PrivateKey.from_private_bytes(hashlib.sha256(b"%d" % seed).digest())
        vkey = verifier_key_string(LOG, key.public_key())
        if "+" in vkey.split("+", 2)[2]:
            break
    else:
        pytest.fail("no test key with '+' in its base64")
    assert parse_verifier_key(vkey).public_key == key.public_key()
    note = sign_note(BODY, LOG, key)
    assert open_note(note, [parse_verifier_key(vkey)]) == (BODY, [LOG])

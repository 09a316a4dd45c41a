"""A verifier written from docs/design.md ("Record format") alone: hashlib, cryptography and the
rfc8785 library, no DecisionTrail code, fed only by the public API (the trust root without a
key). If the docs and the service disagree on a formula, this fails."""

from __future__ import annotations

import base64
import hashlib
from datetime import datetime
from typing import Any

import rfc8785
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from decisiontrail.apikeys import Scope
from tests.service.inprocess import Service


def jcs(value: Any) -> bytes:
    return rfc8785.dumps(value)


def moment(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


def node(left: bytes, right: bytes) -> bytes:
    return hashlib.sha256(b"\x01" + left + right).digest()


def root_from_inclusion(index: int, size: int, leaf: bytes, proof: list[bytes]) -> bytes:
    """RFC 9162 section 2.1.3.2."""
    fn, sn, r = index, size - 1, leaf
    for p in proof:
        assert sn != 0
        if fn & 1 or fn == sn:
            r = node(p, r)
            while fn and not fn & 1:
                fn, sn = fn >> 1, sn >> 1
        else:
            r = node(r, p)
        fn, sn = fn >> 1, sn >> 1
    assert sn == 0
    return r


def check_record(record: dict[str, Any], trust: dict[str, Any]) -> None:
    body = {k: v for k, v in record.items() if k not in ("hash", "signature")}
    assert hashlib.sha256(jcs(body)).hexdigest() == record["hash"]
    (key,) = [k for k in trust["keys"] if k["key_id"] == record["key_id"]]
    raw = base64.b64decode(key["public_key"])
    assert hashlib.sha256(raw).hexdigest()[:16] == key["key_id"]
    at = moment(record["recorded_at"])
    assert moment(key["not_before"]) <= at
    assert key["not_after"] is None or at < moment(key["not_after"])
    message = b"decisiontrail/record/v1\n" + bytes.fromhex(record["hash"])
    Ed25519PublicKey.from_public_bytes(raw).verify(base64.b64decode(record["signature"]), message)


def open_checkpoint(note: str, trust: dict[str, Any]) -> tuple[str, int, bytes]:
    text, _, signatures = note.rpartition("\n\n")
    text += "\n"
    verified = 0
    for line in signatures.rstrip("\n").split("\n"):
        prefix, name, blob_text = line.split(" ")
        assert prefix == "—" and name == trust["note_name"]
        blob = base64.b64decode(blob_text)
        for key in trust["keys"]:
            raw = base64.b64decode(key["public_key"])
            hint = hashlib.sha256(name.encode() + b"\n" + b"\x01" + raw).digest()[:4]
            if hint == blob[:4]:
                Ed25519PublicKey.from_public_bytes(raw).verify(blob[4:], text.encode())
                verified += 1
    assert verified
    origin, size, root = text.rstrip("\n").split("\n")
    return origin, int(size), base64.b64decode(root)


async def test_records_proofs_and_checkpoints_verify_from_the_docs_alone(
    service: Service,
) -> None:
    headers = await service.key("acme")
    receipts = [
        await service.record(headers, agent=agent, action=f"a{i}", confidence=0.25 + i / 10)
        for i, agent in enumerate(["bot", "triage", "bot", "bot", "triage"])
    ]
    trust = (await service.client.get("/v1/trust-root")).json()  # no key needed
    previous: dict[str, str] = {}
    for receipt in receipts:
        found = await service.client.get(f"/v1/decisions/{receipt['id']}", headers=headers)
        record = found.json()["record"]
        check_record(record, trust)
        assert record["prev_hash"] == previous.get(record["chain"], "0" * 64)
        previous[record["chain"]] = record["hash"]
        proof = (
            await service.client.get(f"/v1/decisions/{receipt['id']}/proof", headers=headers)
        ).json()
        origin, size, root = open_checkpoint(proof["checkpoint"], trust)
        assert origin.endswith("/acme") and size == proof["tree_size"]
        assert root.hex() == proof["root_hex"] == base64.b64decode(proof["root"]).hex()
        leaf = hashlib.sha256(b"\x00" + jcs(record)).digest()
        hashes = [base64.b64decode(h) for h in proof["proof"]]
        assert root_from_inclusion(proof["log_index"], size, leaf, hashes) == root


async def test_a_report_and_an_erasure_receipt_verify_from_the_docs_alone(
    service: Service,
) -> None:
    headers = await service.key("acme")
    await service.record(headers)
    trust = (await service.client.get("/v1/trust-root")).json()
    keys = {k["key_id"]: base64.b64decode(k["public_key"]) for k in trust["keys"]}
    signed = (await service.client.get("/v1/reports/compliance", headers=headers)).json()
    digest = hashlib.sha256(jcs(signed["report"])).digest()
    assert digest.hex() == signed["signature"]["sha256"]
    key = Ed25519PublicKey.from_public_bytes(keys[signed["signature"]["key_id"]])
    key.verify(
        base64.b64decode(signed["signature"]["signature"]), b"decisiontrail/report/v1\n" + digest
    )
    receipt = (
        await service.client.delete(
            "/v1/data-subjects/customer-17", headers=await service.key("acme", Scope.ERASE)
        )
    ).json()
    body = {k: v for k, v in receipt.items() if k not in ("key_id", "signature")}
    digest = hashlib.sha256(jcs(body)).digest()
    Ed25519PublicKey.from_public_bytes(keys[receipt["key_id"]]).verify(
        base64.b64decode(receipt["signature"]), b"decisiontrail/erasure-receipt/v1\n" + digest
    )

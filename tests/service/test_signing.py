from __future__ import annotations

import json
import stat
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from decisiontrail.signing import (
    RECORD_DOMAIN,
    Keyring,
    KeyringError,
    TrustRoot,
    private_key_from_text,
)
from ledgerstore import merkle


def test_first_start_creates_a_private_key_with_restrictive_permissions(tmp_path: Path) -> None:
    keys = tmp_path / "keys"
    keyring, created = Keyring.load_or_create(keys, "decisiontrail.test/log")
    assert created
    key_id, _ = keyring.active()
    pem = keys / f"{key_id}.pem"
    assert stat.S_IMODE(pem.stat().st_mode) == 0o600
    assert stat.S_IMODE(keys.stat().st_mode) == 0o700
    again, created_again = Keyring.load_or_create(keys, "decisiontrail.test/log")
    assert not created_again and again.active()[0] == key_id


def test_rotation_keeps_old_signatures_valid_and_retires_the_old_key(tmp_path: Path) -> None:
    keyring, _ = Keyring.load_or_create(tmp_path, "n")
    t0 = datetime.now(UTC)
    old_id, old_sig = keyring.sign(RECORD_DOMAIN, b"\x01" * 32, t0)
    new = keyring.rotate(tmp_path, t0 + timedelta(seconds=5))
    later = t0 + timedelta(seconds=10)
    new_id, new_sig = keyring.sign(RECORD_DOMAIN, b"\x02" * 32, later)
    assert new_id == new.key_id != old_id
    trust = TrustRoot.from_json(json.loads((tmp_path / "keyring.json").read_text()))
    assert trust.verify(old_id, RECORD_DOMAIN + b"\x01" * 32, old_sig, t0) is None
    assert trust.verify(new_id, RECORD_DOMAIN + b"\x02" * 32, new_sig, later) is None
    # The retired key cannot vouch for a record claiming a time after its retirement.
    assert "not valid" in str(trust.verify(old_id, RECORD_DOMAIN + b"\x01" * 32, old_sig, later))
    assert "does not verify" in str(
        trust.verify(new_id, RECORD_DOMAIN + b"\x03" * 32, new_sig, later)
    )
    assert "unknown" in str(trust.verify("feedfeedfeedfeed", b"", b"", later))


def test_trust_root_round_trips_and_rejects_mismatched_keys(tmp_path: Path) -> None:
    keyring, _ = Keyring.load_or_create(tmp_path, "dt.example/tenant")
    exported = keyring.trust.to_json()
    assert TrustRoot.from_json(exported).keys == keyring.trust.keys
    vkey = exported["keys"][0]["note_verifier_key"]
    assert merkle.parse_verifier_key(vkey).name == "dt.example/tenant"
    exported["keys"][0]["key_id"] = "0" * 16
    with pytest.raises(KeyringError):
        TrustRoot.from_json(exported)


def test_notes_are_signed_with_the_active_key(tmp_path: Path) -> None:
    keyring, _ = Keyring.load_or_create(tmp_path, "dt.example/t1")
    body = merkle.Checkpoint("dt.example/t1", 3, bytes(32)).body()
    note = keyring.sign_note(body)
    opened, names = merkle.open_note(note, keyring.trust.note_verifiers())
    assert opened == body and names == ["dt.example/t1"]


def test_configured_keys_are_read_from_pem_or_seed(tmp_path: Path) -> None:
    keyring, _ = Keyring.load_or_create(tmp_path, "n")
    key_id, _ = keyring.active()
    pem = (tmp_path / f"{key_id}.pem").read_text()
    assert Keyring.from_private_key(private_key_from_text(pem), "n").active()[0] == key_id
    with pytest.raises(KeyringError):
        private_key_from_text("not a key")

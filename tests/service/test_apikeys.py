from __future__ import annotations

from datetime import UTC, datetime, timedelta

from decisiontrail.apikeys import ApiKey, Scope, generate, parse


def test_a_generated_key_matches_only_its_secret() -> None:
    text, stored = generate(tenant="acme", scopes=frozenset({Scope.INGEST}), label="ci")
    key_id, secret = parse(text)  # type: ignore[misc]
    assert key_id == stored.key_id
    assert stored.matches(secret) and not stored.matches(secret + "x")
    assert secret not in repr(stored.to_json()) and stored.secret_hash not in repr(stored.public())


def test_scopes_expiry_and_revocation() -> None:
    now = datetime.now(UTC)
    _, key = generate(
        tenant="t", scopes=frozenset({Scope.READ}), expires_at=now + timedelta(hours=1)
    )
    assert key.allows(Scope.READ) and not key.allows(Scope.ERASE)
    assert key.usable(now) and not key.usable(now + timedelta(hours=2))
    assert not key.revoked(now).usable(now + timedelta(seconds=1))
    _, admin = generate(tenant="t", scopes=frozenset({Scope.ADMIN}))
    assert all(admin.allows(scope) for scope in Scope)


def test_keys_round_trip_through_json() -> None:
    _, key = generate(
        tenant="t", scopes=frozenset({Scope.AUDIT, Scope.READ}), rate_limit_per_second=5
    )
    assert ApiKey.from_json(key.to_json()) == key


def test_malformed_keys_are_not_parsed() -> None:
    for text in ("", "dtk_", "dtk_zzzzzzzzzzzzzzzz_abc", "dtk_0123456789abcdef", "Bearer x",
                 "dtk_0123456789abcdef_" + "a" * 200):  # fmt: skip
        assert parse(text) is None

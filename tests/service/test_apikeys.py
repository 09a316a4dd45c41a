from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from decisiontrail.apikeys import ApiKey, InvalidTenantName, Scope, generate, parse
from tests.service.inprocess import Service


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


def test_tenant_names_keep_to_a_safe_character_set() -> None:
    for bad in ["acme:eu", "acme/eu", "Acme", "", "a" * 101, "acme eu"]:
        with pytest.raises(InvalidTenantName):
            generate(tenant=bad, scopes=frozenset({Scope.READ}))
    generate(tenant="acme-eu_2", scopes=frozenset({Scope.READ}))


async def test_failed_authentication_is_limited_per_client(service: Service) -> None:
    good = await service.key("acme")
    wrong = {"Authorization": f"Bearer {good['Authorization'].split()[1][:-4]}xxxx"}
    answers = [(await service.client.get("/v1/decisions", headers=wrong)) for _ in range(25)]
    codes = [a.status_code for a in answers]
    assert codes[:20] == [401] * 20 and codes[20:] == [429] * 5
    assert int(answers[-1].headers["Retry-After"]) >= 1
    # Refused before the key is looked at: even the right key waits.
    assert (await service.client.get("/v1/decisions", headers=good)).status_code == 429


async def test_unknown_key_ids_do_not_grow_the_cache_without_bound(service: Service) -> None:
    store = service.state.keys
    store.cache_size = 50
    for i in range(200):
        assert await store.authenticate(f"dtk_{i:016x}_secret") is None
    assert len(store._cache) == 50

"""Data subjects: the random keys that name them, their legal holds, and their erasure.

A data subject is named everywhere (subject links, holds, SapixDB graph nodes) by a random
key; only an erasable key event, at a subject derived with the pepper, maps the person to the
key. Erasure erases that event's data, so what stays is tied to no one.

A writer may cache a subject's key, but every batch that uses a key carries a precondition
that no erasure of it started (:meth:`Subjects.keys_unerased`: an indexed look-up, not a
query): a replica whose cache is stale loses the precondition instead of linking a new
decision to an erased key.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from collections import OrderedDict
from collections.abc import Iterable, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from decisiontrail.ledger.events import (
    ERASURE_STARTED_TYPE,
    HOLD_PLACED_TYPE,
    HOLD_RELEASED_TYPE,
    KEY_ERASED_TYPE,
    SUBJECT_KEY_TYPE,
    SUBJECT_LINK_TYPE,
    PreparedDecision,
    erased_key_subject,
    event,
    is_new,
    personal_subject,
    subject_path,
    tenant_path,
)
from decisiontrail.ledger.failures import ConflictRetriesExhaustedError, LegalHoldError
from decisiontrail.provenance import ProvenanceStore
from decisiontrail.records import format_time
from genesisdb import Client, PreconditionFailedError
from genesisdb.events import to_dict

SUBJECT_LOOKUP_CHUNK = 500  # subjects looked up in one query
CLAIM_RETRIES = 5  # attempts to start an erasure while holds change under it
KEY_CACHE_SIZE = 100_000  # subject keys remembered per process (least recently used go)


def load_pepper(directory: Path) -> bytes:
    """The secret that turns data-subject ids into pseudonyms (created on first use, 0600)."""
    path = directory / "subject-pepper"
    if not path.exists():
        directory.mkdir(parents=True, exist_ok=True, mode=0o700)
        descriptor = path.open("xb")
        with descriptor:
            path.chmod(0o600)
            descriptor.write(secrets.token_bytes(32))
    return path.read_bytes()


class Subjects:
    """Subject keys, legal holds and erasure for every tenant."""

    def __init__(self, genesis: Client, pepper: bytes, provenance: ProvenanceStore) -> None:
        self.genesis = genesis
        self.pepper = pepper
        self.provenance = provenance
        self._keys: OrderedDict[tuple[str, str], str] = OrderedDict()  # (tenant, pseudonym)

    def pseudonym(self, subject_id: str) -> str:
        return hmac.new(self.pepper, subject_id.encode(), hashlib.sha256).hexdigest()

    def registry(self, tenant: str, subject_id: str) -> str:
        """The subject whose (erasable) event maps the person to their key."""
        return f"{tenant_path(tenant)}/subject-keys/{self.pseudonym(subject_id)}"

    async def subject_keys(self, tenant: str, subject_id: str) -> list[str]:
        """The subject's keys not erased (usually one; replicas racing may have made two)."""
        keys = []
        for found in await self.genesis.stream_events(self.registry(tenant, subject_id)):
            data = to_dict(found)["data"]
            key = data.get("key") if isinstance(data, dict) else None
            if isinstance(key, str) and key:
                keys.append(key)
        return keys

    async def keys_for(
        self,
        tenant: str,
        decisions: Sequence[PreparedDecision],
        provisional: dict[tuple[str, str], str],
    ) -> tuple[list[list[str]], list[dict[str, Any]], dict[tuple[str, str], str]]:
        """Each decision's subject keys, the key events for subjects seen for the first time,
        and the keys to remember once the batch is committed. ``provisional`` keys (of a batch
        being committed before this one) count as known."""
        found: dict[str, str] = {}
        fresh: dict[tuple[str, str], str] = {}
        events: list[dict[str, Any]] = []
        unknown: list[str] = []
        for subject_id in dict.fromkeys(
            str(s) for d in decisions for s in d.decision.get("data_subjects") or []
        ):
            pseudonym = self.pseudonym(subject_id)
            known = provisional.get((tenant, pseudonym)) or self._keys.get((tenant, pseudonym))
            if known is not None:
                found[subject_id] = known
                continue
            unknown.append(subject_id)
        looked_up = await self.look_up(tenant, unknown)
        for subject_id in unknown:
            keys = looked_up.get(subject_id, [])
            key = keys[-1] if keys else secrets.token_hex(16)
            if not keys:
                registry = self.registry(tenant, subject_id)
                events.append(event(registry, SUBJECT_KEY_TYPE, {"key": key}, erasable=True))
            found[subject_id] = key
            fresh[(tenant, self.pseudonym(subject_id))] = key
        per_decision = [
            [found[str(s)] for s in d.decision.get("data_subjects") or []] for d in decisions
        ]
        return per_decision, events, fresh

    def keys_unerased(
        self, tenant: str, keys: Iterable[str], new_keys: Iterable[str]
    ) -> list[dict[str, Any]]:
        """Preconditions that every key a batch links to (except those it creates) still
        stands for its subject: no erasure started for it meanwhile, on any replica."""
        existing = sorted(set(keys) - set(new_keys))
        return [is_new(erased_key_subject(tenant, key)) for key in existing]

    async def look_up(self, tenant: str, subject_ids: Sequence[str]) -> dict[str, list[str]]:
        """The keys (not erased) of several subjects, with one indexed query per chunk (a
        query costs about three single reads, so up to three subjects are read one by one)."""
        if len(subject_ids) <= 3:
            return {s: await self.subject_keys(tenant, s) for s in subject_ids}
        registries = {self.registry(tenant, s): s for s in subject_ids}
        found: dict[str, list[str]] = {}
        names = list(registries)
        for start in range(0, len(names), SUBJECT_LOOKUP_CHUNK):
            listed = ", ".join(f"'{name}'" for name in names[start : start + SUBJECT_LOOKUP_CHUNK])
            rows = await self.genesis.q(
                f"STREAM e FROM events WHERE e.subject IN [{listed}] "
                f"AND e.type == '{SUBJECT_KEY_TYPE}' MAP {{subject: e.subject, key: e.data.key}}"
            )
            for row in rows:
                key = row.get("key") if isinstance(row, dict) else None
                if isinstance(key, str) and key:  # an erased key's data reads ""
                    found.setdefault(registries[row["subject"]], []).append(key)
        return found

    def remember(self, keys: dict[tuple[str, str], str]) -> None:
        """Keys of a committed batch (a cache: each use is checked by a precondition)."""
        for ident, key in keys.items():
            self._keys[ident] = key
            self._keys.move_to_end(ident)
        while len(self._keys) > KEY_CACHE_SIZE:
            self._keys.popitem(last=False)

    def forget(self, tenant: str) -> None:
        """Drop the tenant's cached keys (a batch lost a precondition: one may be erased)."""
        for ident in [ident for ident in self._keys if ident[0] == tenant]:
            del self._keys[ident]

    async def _linked(self, tenant: str, key: str) -> list[str]:
        events = await self.genesis.stream_events(subject_path(tenant, key))
        return [
            to_dict(e)["subject"].rsplit("/", 1)[-1]
            for e in events
            if to_dict(e)["type"] == SUBJECT_LINK_TYPE
        ]

    async def subject_decisions(self, tenant: str, subject_id: str) -> list[str]:
        """The ids of the tenant's decisions linked to a data subject (none once erased)."""
        ids: list[str] = []
        for key in await self.subject_keys(tenant, subject_id):
            ids.extend(await self._linked(tenant, key))
        return list(dict.fromkeys(ids))

    async def legal_hold(self, tenant: str, subject_id: str) -> bool:
        for key in await self.subject_keys(tenant, subject_id):
            events = await self.genesis.stream_events(f"{subject_path(tenant, key)}/hold")
            if events and to_dict(events[-1])["type"] == HOLD_PLACED_TYPE:
                return True
        return False

    async def set_legal_hold(self, tenant: str, subject_id: str, *, placed: bool) -> None:
        kind = HOLD_PLACED_TYPE if placed else HOLD_RELEASED_TYPE
        when = format_time(datetime.now(UTC))
        keys = await self.subject_keys(tenant, subject_id)
        events = []
        if not keys:
            keys = [secrets.token_hex(16)]
            registry = self.registry(tenant, subject_id)
            events.append(event(registry, SUBJECT_KEY_TYPE, {"key": keys[0]}, erasable=True))
        for key in keys:
            events.append(event(f"{subject_path(tenant, key)}/hold", kind, {"at": when}))
        await self.genesis.commit_events(events)

    async def _claim_erasure(self, tenant: str, keys: Sequence[str]) -> None:
        """Record that the subject's erasure starts (and mark its keys erased, so no batch
        links to them any more), in one commit that holds only while no legal hold is placed
        (a hold placed at the same moment is never ignored): each key's hold subject is new,
        or its latest event is not a placed hold."""
        for _ in range(CLAIM_RETRIES):
            events, preconditions = [], []
            when = format_time(datetime.now(UTC))
            for key in keys:
                hold = f"{subject_path(tenant, key)}/hold"
                history = await self.genesis.stream_events(hold)
                if history and to_dict(history[-1])["type"] == HOLD_PLACED_TYPE:
                    raise LegalHoldError(
                        "a legal hold is placed on this data subject; release it first"
                    )
                if not history:
                    preconditions.append(is_new(hold))
                else:
                    query = (
                        f"STREAM e FROM events WHERE e.subject UNDER '{hold}' "
                        f"ORDER BY e.time DESC LIMIT 1 MAP e.type != '{HOLD_PLACED_TYPE}'"
                    )
                    preconditions.append({"type": "isQueryResultTrue", "payload": {"query": query}})
                events.append(event(hold, ERASURE_STARTED_TYPE, {"at": when}))
                events.append(event(erased_key_subject(tenant, key), KEY_ERASED_TYPE, {}))
            if not events:
                return  # no key: nothing to hold, nothing to erase
            try:
                await self.genesis.commit_events(events, preconditions)
                return
            except PreconditionFailedError:
                continue  # a hold (or another erasure) came in between: look again
        raise ConflictRetriesExhaustedError("the subject's holds kept changing; retry")

    async def erase_subject(self, tenant: str, subject_id: str) -> tuple[list[str], int]:
        """Erase every personal value of the subject's decisions and the subject's keys (the
        events naming whom a key stands for; the links and holds under the key stay, tied to
        no one). Refused with :class:`LegalHoldError` while a hold is placed.

        Returns the decision ids and the number of erased values. Hashes, chains, signatures
        and proofs are untouched: records hold only salted commitments.
        """
        keys = await self.subject_keys(tenant, subject_id)
        await self._claim_erasure(tenant, keys)
        # From the claim on, no writer (on any replica) can link a decision to these keys
        # (see keys_unerased), so the links listed below are all there will be.
        self._keys.pop((tenant, self.pseudonym(subject_id)), None)
        decision_ids: list[str] = []
        for key in keys:
            decision_ids.extend(await self._linked(tenant, key))
        decision_ids = list(dict.fromkeys(decision_ids))
        erased = 0
        for decision_id in decision_ids:
            erased += await self.genesis.erase_data(personal_subject(tenant, decision_id))
        for key in keys:
            # Links written by earlier versions were stored by reference: erase those too.
            erased += await self.genesis.erase_data(subject_path(tenant, key))
            # SapixDB never held the values; cut the graph's links to the subject's key too.
            await self.provenance.unlink_subject(tenant, key, decision_ids)
        # The key events last: an erasure cut short (a crash) is run again and finds them.
        erased += await self.genesis.erase_data(self.registry(tenant, subject_id))
        return decision_ids, erased

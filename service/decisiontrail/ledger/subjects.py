"""Data subjects: the random keys that name them, their legal holds, and their erasure.

A data subject is named everywhere (subject links, holds, SapixDB graph nodes) by a random
key; only an erasable key event, named by an HMAC under the tenant's current epoch secret (see
:mod:`decisiontrail.ledger.epochs`), maps the person to the key. Erasure erases the person's
values, then rotates the epoch, which erases the old key events and the secret that named
them: what stays is tied to no one, on disk too.

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

from decisiontrail.ledger.epochs import Epoch, SubjectEpochs, keys_path
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
        self.epochs = SubjectEpochs(genesis)
        self._keys: OrderedDict[tuple[str, str], str] = OrderedDict()  # (tenant, pseudonym)

    def pseudonym(self, subject_id: str) -> str:
        """The in-memory cache's name for a subject (never written anywhere)."""
        return hmac.new(self.pepper, subject_id.encode(), hashlib.sha256).hexdigest()

    async def registries(self, tenant: str, subject_id: str) -> list[str]:
        """Where the subject's key events may be: its name in every live epoch."""
        return [
            f"{keys_path(tenant, e.number)}/{e.name(subject_id)}"
            for e in await self.epochs.live(tenant)
        ]

    async def subject_keys(
        self, tenant: str, subject_id: str, *, erasing: bool = False
    ) -> list[str]:
        """The subject's keys not erased (usually one; replicas racing may have made two);
        with ``erasing``, also those of an erasure that started but did not finish."""
        keys = []
        for registry in await self.registries(tenant, subject_id):
            for found in await self.genesis.stream_events(registry):
                data = to_dict(found)["data"]
                key = data.get("key") if isinstance(data, dict) else None
                if isinstance(key, str) and key:
                    keys.append(key)
        keys = list(dict.fromkeys(keys))
        return keys if erasing else await self._not_erased(tenant, keys)

    async def _not_erased(self, tenant: str, keys: list[str]) -> list[str]:
        """``keys`` without those an erasure has started for (their events may still be
        there until the erasure's rotation)."""
        if not keys:
            return keys
        listed = ", ".join(f"'{erased_key_subject(tenant, key)}'" for key in keys)
        rows = await self.genesis.q(
            f"STREAM e FROM events WHERE e.subject IN [{listed}] MAP e.subject"
        )
        erased = {str(row).rsplit("/", 1)[-1] for row in rows}
        return [key for key in keys if key not in erased]

    async def keys_for(
        self,
        tenant: str,
        decisions: Sequence[PreparedDecision],
        provisional: dict[tuple[str, str], str],
    ) -> tuple[list[list[str]], list[dict[str, Any]], dict[tuple[str, str], str]]:
        """Each decision's subject keys, the key events for subjects seen for the first time,
        and the keys to remember once the batch is committed. ``provisional`` keys (of a batch
        being committed before this one) count as known. New key events are named in the
        current epoch; :meth:`keys_unerased` adds the precondition that it still is."""
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
                epoch = await self.epochs.current(tenant)
                events.append(self._key_event(tenant, epoch, subject_id, key))
            found[subject_id] = key
            fresh[(tenant, self.pseudonym(subject_id))] = key
        per_decision = [
            [found[str(s)] for s in d.decision.get("data_subjects") or []] for d in decisions
        ]
        return per_decision, events, fresh

    @staticmethod
    def _key_event(tenant: str, epoch: Epoch, subject_id: str, key: str) -> dict[str, Any]:
        name = f"{keys_path(tenant, epoch.number)}/{epoch.name(subject_id)}"
        data = {"key": key, "subject": subject_id}  # the id: for the next epoch's rewrite
        return event(name, SUBJECT_KEY_TYPE, data, erasable=True)

    async def keys_unerased(
        self, tenant: str, keys: Iterable[str], new_keys: Iterable[str]
    ) -> list[dict[str, Any]]:
        """Preconditions that every key a batch links to (except those it creates) still
        stands for its subject: no erasure started for it meanwhile, on any replica; and, if
        the batch creates keys, that their epoch is still the newest."""
        created = set(new_keys)
        existing = sorted(set(keys) - created)
        found = [is_new(erased_key_subject(tenant, key)) for key in existing]
        if created:
            found.append(self.epochs.unchanged(tenant, await self.epochs.current(tenant)))
        return found

    async def look_up(self, tenant: str, subject_ids: Sequence[str]) -> dict[str, list[str]]:
        """The keys (not erased) of several subjects, with one indexed query per chunk (a
        query costs about three single reads, so up to three subjects are read one by one)."""
        if len(subject_ids) <= 3:
            return {s: await self.subject_keys(tenant, s) for s in subject_ids}
        registries = {r: s for s in subject_ids for r in await self.registries(tenant, s)}
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
        every = [key for keys in found.values() for key in keys]
        unerased = set(await self._not_erased(tenant, every))
        return {s: [k for k in keys if k in unerased] for s, keys in found.items()}

    def remember(self, keys: dict[tuple[str, str], str]) -> None:
        """Keys of a committed batch (a cache: each use is checked by a precondition)."""
        for ident, key in keys.items():
            self._keys[ident] = key
            self._keys.move_to_end(ident)
        while len(self._keys) > KEY_CACHE_SIZE:
            self._keys.popitem(last=False)

    def forget(self, tenant: str) -> None:
        """Drop the tenant's cached keys and epochs (a batch lost a precondition: a key may
        be erased, or the epoch rotated)."""
        for ident in [ident for ident in self._keys if ident[0] == tenant]:
            del self._keys[ident]
        self.epochs.forget(tenant)

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
        events, preconditions = [], []
        if not keys:
            epoch = await self.epochs.current(tenant)
            keys = [secrets.token_hex(16)]
            events.append(self._key_event(tenant, epoch, subject_id, keys[0]))
            preconditions.append(self.epochs.unchanged(tenant, epoch))
        for key in keys:
            events.append(event(f"{subject_path(tenant, key)}/hold", kind, {"at": when}))
        try:
            await self.genesis.commit_events(events, preconditions)
        except PreconditionFailedError:
            self.epochs.forget(tenant)  # the epoch rotated meanwhile: name the key again
            await self.set_legal_hold(tenant, subject_id, placed=placed)

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
        keys = await self.subject_keys(tenant, subject_id, erasing=True)
        await self._claim_erasure(tenant, keys)
        # From the claim on, no writer (on any replica) can link a decision to these keys
        # (see keys_unerased), so the links listed below are all there will be.
        self._keys.pop((tenant, self.pseudonym(subject_id)), None)
        decision_ids: list[str] = []
        erased = 0
        for key in keys:
            linked, values = await self._erase_key(tenant, key)
            decision_ids.extend(linked)
            erased += values
        # The key events last, by rotating the tenant's epoch (see decisiontrail.ledger.epochs):
        # an erasure cut short (a crash) before it is run again and finds them, or completed
        # by the next erasure's rotation.
        await self.epochs.rotate(tenant, set(keys), lambda key: self._finish(tenant, key))
        return list(dict.fromkeys(decision_ids)), erased

    async def _erase_key(self, tenant: str, key: str) -> tuple[list[str], int]:
        """Erase the personal values of every decision linked to a claimed key; the decision
        ids and how many values were erased."""
        decision_ids = await self._linked(tenant, key)
        erased = 0
        for decision_id in decision_ids:
            erased += await self.genesis.erase_data(personal_subject(tenant, decision_id))
        # Links written by earlier versions were stored by reference: erase those too.
        erased += await self.genesis.erase_data(subject_path(tenant, key))
        # SapixDB never held the values; cut the graph's links to the subject's key too.
        await self.provenance.unlink_subject(tenant, key, decision_ids)
        return decision_ids, erased

    async def _finish(self, tenant: str, key: str) -> None:
        await self._erase_key(tenant, key)

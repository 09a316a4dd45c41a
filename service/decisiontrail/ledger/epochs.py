"""Subject epochs: the erasable secrets that name data subjects' key events.

A data subject's key event lives at ``/tenants/{t}/subject-keys/{epoch}/{HMAC(secret, id)}``.
The secret of each epoch is itself erasable data in Genesis DB (not a file), and an erasure
*rotates* the tenant's epoch: a new secret, every other live subject's key event written again
under it, then the old epoch's key events and its secret erased. After that, the erased
subject's old key event is named by an HMAC whose secret no longer exists anywhere, so nothing
on disk (event names, their positions and batches, indexes, WAL) can be tied to the person,
even by someone holding the data directory. The cost is one rewrite of the tenant's subject
index per erasure.

Writers name new key events in the current epoch and require the next epoch not to exist yet
(:meth:`SubjectEpochs.unchanged`), so a writer that missed a rotation loses its precondition
instead of naming a key event in an epoch about to be erased. Look-ups consult every epoch
still holding its secret (normally one; two while a rotation is under way or was cut short).
"""

from __future__ import annotations

import contextlib
import hashlib
import hmac
import secrets
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from decisiontrail.ledger.events import (
    SUBJECT_KEY_TYPE,
    erased_key_subject,
    event,
    is_new,
    tenant_path,
)
from genesisdb import Client, PreconditionFailedError
from genesisdb.events import to_dict

EPOCH_TYPE = "io.decisiontrail.subject.epoch"
EPOCH_DONE_TYPE = "io.decisiontrail.subject.epoch-done"
COPY_CHUNK = 500  # key events rewritten per commit during a rotation


@dataclass(frozen=True)
class Epoch:
    number: int
    secret: bytes

    def name(self, subject_id: str) -> str:
        return hmac.new(self.secret, subject_id.encode(), hashlib.sha256).hexdigest()


def epoch_subject(tenant: str, number: int) -> str:
    return f"{tenant_path(tenant)}/subject-epochs/{number:08d}"


def done_subject(tenant: str, number: int) -> str:
    return f"{tenant_path(tenant)}/subject-epochs-done/{number:08d}"


def keys_path(tenant: str, number: int) -> str:
    return f"{tenant_path(tenant)}/subject-keys/{number:08d}"


class SubjectEpochs:
    def __init__(self, genesis: Client) -> None:
        self.genesis = genesis
        self._live: dict[str, list[Epoch]] = {}  # tenant -> live epochs, newest last

    def forget(self, tenant: str) -> None:
        self._live.pop(tenant, None)

    async def live(self, tenant: str) -> list[Epoch]:
        """The tenant's epochs whose secret is not erased, oldest first (none before the
        tenant's first data subject)."""
        if tenant not in self._live:
            found = await self._load(tenant)
            if not found:
                return []  # not cached: the first writer makes one
            self._live[tenant] = found
        return self._live[tenant]

    async def current(self, tenant: str) -> Epoch:
        """The epoch new key events are named in (the first one is made here)."""
        found = await self.live(tenant)
        if not found:
            await self._create(tenant, 0, done=True)  # or another replica did
            found = await self.live(tenant)
        return found[-1]

    async def _load(self, tenant: str) -> list[Epoch]:
        found = []
        for stored in await self.genesis.stream_events(f"{tenant_path(tenant)}/subject-epochs"):
            data = to_dict(stored)
            secret = data["data"].get("secret") if isinstance(data["data"], dict) else None
            if data["type"] == EPOCH_TYPE and isinstance(secret, str) and secret:
                found.append(Epoch(int(data["subject"].rsplit("/", 1)[-1]), bytes.fromhex(secret)))
        return sorted(found, key=lambda e: e.number)

    async def _create(self, tenant: str, number: int, *, done: bool = False) -> bool:
        """Start epoch ``number``; False if another replica started it first."""
        subject = epoch_subject(tenant, number)
        events = [event(subject, EPOCH_TYPE, {"secret": secrets.token_hex(32)}, erasable=True)]
        preconditions = [is_new(subject)]
        if number > 0:  # one rotation at a time: the previous one finished
            done_before = done_subject(tenant, number - 1)
            preconditions.append({"type": "isSubjectExisting", "payload": {"subject": done_before}})
        if done:
            events.append(event(done_subject(tenant, number), EPOCH_DONE_TYPE, {}))
        try:
            await self.genesis.commit_events(events, preconditions)
        except PreconditionFailedError:
            return False
        return True

    def unchanged(self, tenant: str, epoch: Epoch) -> dict[str, Any]:
        """The precondition that ``epoch`` is still the tenant's newest."""
        return is_new(epoch_subject(tenant, epoch.number + 1))

    async def rotate(
        self, tenant: str, erased_keys: set[str], finish: Callable[[str], Awaitable[None]]
    ) -> None:
        """Move every live subject to a new epoch but those whose key an erasure claimed
        (``erased_keys``, this erasure's, or any with an erased-key marker: ``finish`` is
        awaited for each of those first, so an erasure cut short is completed here), then
        erase the older epochs' key events and secrets. A rotation cut short is finished by
        the next one (or run again): copying is idempotent and an epoch is erased only after
        it was copied."""
        self.forget(tenant)
        older = await self.live(tenant)
        if not older:
            return  # no subject was ever named in this tenant
        newest = older[-1].number
        done = await self.genesis.stream_events(done_subject(tenant, newest))
        if done:  # start a new epoch; else finish the rotation into ``newest`` first
            if not await self._create(tenant, newest + 1):
                self.forget(tenant)
                older = await self.live(tenant)
                newest = older[-1].number
            else:
                newest += 1
        self.forget(tenant)
        live = await self.live(tenant)
        target = next(e for e in live if e.number == newest)
        sources = [e for e in live if e.number < newest]
        for source in sources:
            await self._copy(tenant, source, target, erased_keys, finish)
        for source in sources:
            await self.genesis.erase_data(keys_path(tenant, source.number))
            await self.genesis.erase_data(epoch_subject(tenant, source.number))
        if not await self.genesis.stream_events(done_subject(tenant, newest)):
            # (another replica may finish the same rotation at the same time)
            with contextlib.suppress(PreconditionFailedError):
                await self.genesis.commit_events(
                    [event(done_subject(tenant, newest), EPOCH_DONE_TYPE, {})],
                    [is_new(done_subject(tenant, newest))],
                )
        self.forget(tenant)

    async def _copy(
        self,
        tenant: str,
        source: Epoch,
        target: Epoch,
        skip: set[str],
        finish: Callable[[str], Awaitable[None]],
    ) -> None:
        chunk: list[tuple[str, str]] = []
        async for stored in self.genesis.iter_events(keys_path(tenant, source.number)):
            data = to_dict(stored)["data"]
            if not isinstance(data, dict):
                continue
            key, subject_id = data.get("key"), data.get("subject")
            if not (isinstance(key, str) and key and isinstance(subject_id, str) and subject_id):
                continue  # erased, or never named
            if key not in skip:
                chunk.append((key, subject_id))
            if len(chunk) == COPY_CHUNK:
                await self._copy_chunk(tenant, target, chunk, finish)
                chunk = []
        if chunk:
            await self._copy_chunk(tenant, target, chunk, finish)

    async def _copy_chunk(
        self,
        tenant: str,
        target: Epoch,
        chunk: list[tuple[str, str]],
        finish: Callable[[str], Awaitable[None]],
    ) -> None:
        listed = ", ".join(f"'{erased_key_subject(tenant, key)}'" for key, _ in chunk)
        rows = await self.genesis.q(
            f"STREAM e FROM events WHERE e.subject IN [{listed}] MAP e.subject"
        )
        claimed = {str(row).rsplit("/", 1)[-1] for row in rows}
        events = []
        for key, subject_id in chunk:
            if key in claimed:
                await finish(key)  # an erasure claimed it and may have stopped short
                continue
            name = f"{keys_path(tenant, target.number)}/{target.name(subject_id)}"
            data = {"key": key, "subject": subject_id}
            events.append(event(name, SUBJECT_KEY_TYPE, data, erasable=True))
        if events:
            await self.genesis.commit_events(events)

"""Live streams of new decisions: one Genesis DB observation per tenant, shared by every stream
of that tenant, with a cap on the number of streams.

Each stream gets a bounded queue the tenant's observation fills; a stream that falls so far
behind that its queue is full is ended (its client resumes with ``Last-Event-ID``), so one
slow reader neither holds the others back nor grows memory. A stream that resumes after a log
index first replays what the store holds after it, then the queue, skipping what it replayed.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator
from dataclasses import dataclass, field

from decisiontrail.ledger.events import DECISION_TYPE, Receipt, tenant_path
from decisiontrail.ledger.failures import TooManyStreamsError
from decisiontrail.ledger.reads import Reads
from genesisdb import Client
from genesisdb.events import to_dict

log = logging.getLogger("decisiontrail")

QUEUE_SIZE = 10_000  # decisions a stream may fall behind before it is ended


@dataclass(eq=False)
class _Subscriber:
    queue: asyncio.Queue[Receipt | None] = field(default_factory=lambda: asyncio.Queue(QUEUE_SIZE))


@dataclass
class _TenantFeed:
    task: asyncio.Task[None]
    subscribers: set[_Subscriber] = field(default_factory=set)


class ChangeFeed:
    def __init__(self, genesis: Client, reads: Reads, *, max_streams: int) -> None:
        self.genesis = genesis
        self.reads = reads
        self.max_streams = max_streams
        self._feeds: dict[str, _TenantFeed] = {}

    @property
    def open_streams(self) -> int:
        return sum(len(feed.subscribers) for feed in self._feeds.values())

    def check_capacity(self) -> None:
        """Raise :class:`TooManyStreamsError` if no stream may open now."""
        if self.open_streams >= self.max_streams:
            raise TooManyStreamsError(
                f"{self.max_streams} live streams are open, the most this service allows"
            )

    async def follow(self, tenant: str, after: int | None) -> AsyncIterator[Receipt]:
        """New decisions of the tenant as they are committed; with ``after``, first those
        after that log index (from the store), with no gap or repeat at the seam."""
        self.check_capacity()
        subscriber = _Subscriber()
        feed = self._feeds.get(tenant)
        if feed is None or feed.task.done():
            feed = self._feeds[tenant] = _TenantFeed(asyncio.create_task(self._observe(tenant)))
        feed.subscribers.add(subscriber)
        try:
            last = after
            if after is not None:
                async for stored in self.reads.replay(tenant, after):
                    last = stored.log_index
                    yield stored
            while (live := await subscriber.queue.get()) is not None:
                if last is not None and live.log_index <= last:
                    continue  # replayed already
                last = live.log_index
                yield live
        finally:
            feed.subscribers.discard(subscriber)
            if not feed.subscribers:
                feed.task.cancel()
                if self._feeds.get(tenant) is feed:
                    del self._feeds[tenant]

    async def _observe(self, tenant: str) -> None:
        """The tenant's one observation, handed to every subscriber (from the newest decision
        the store held when it started, so nothing committed meanwhile is missed)."""
        agents = f"{tenant_path(tenant)}/agents"
        newest = await self.genesis.q(
            f"STREAM e FROM events WHERE e.subject UNDER '{agents}' "
            "ORDER BY e.time DESC LIMIT 1 MAP e.id"
        )
        options = {"lower_bound": str(newest[0])} if newest else {}
        try:
            async for found in self.genesis.observe_events(agents, options):
                data = to_dict(found)
                if data["type"] != DECISION_TYPE:
                    continue
                receipt = Receipt(data["data"]["record"], int(data["data"]["log_index"]))
                feed = self._feeds.get(tenant)
                if feed is None:
                    return
                for subscriber in list(feed.subscribers):
                    try:
                        subscriber.queue.put_nowait(receipt)
                    except asyncio.QueueFull:  # too far behind: end it, it resumes later
                        feed.subscribers.discard(subscriber)
                        _end(subscriber)
        except Exception:
            log.exception("the change feed stopped", extra={"tenant": tenant})
        finally:
            feed = self._feeds.get(tenant)
            for subscriber in list(feed.subscribers if feed else ()):
                _end(subscriber)


def _end(subscriber: _Subscriber) -> None:
    """End a subscriber's stream. A full queue is emptied first, so the stream ends right
    after the last decision its client got, and resuming from there leaves no gap."""
    if subscriber.queue.full():
        with contextlib.suppress(asyncio.QueueEmpty):
            while True:
                subscriber.queue.get_nowait()
    subscriber.queue.put_nowait(None)

"""Rate limits: a token bucket per API key for requests, and one per client address for failed
authentications (so secrets cannot be guessed at wire speed). Both keep a bounded number of
buckets, least recently used going first.

Hand-written: a token bucket is a few lines, and the libraries for it (slowapi, limits) bring
storage backends and decorators this service does not need.
"""

from __future__ import annotations

import time
from collections import OrderedDict
from dataclasses import dataclass

MAX_BUCKETS = 100_000


@dataclass
class _Bucket:
    tokens: float
    updated: float


class TokenBuckets:
    """A token bucket per name: ``rate`` tokens a second, up to ``capacity``."""

    def __init__(self, max_buckets: int = MAX_BUCKETS) -> None:
        self.max_buckets = max_buckets
        self._buckets: OrderedDict[str, _Bucket] = OrderedDict()

    def _bucket(self, name: str, capacity: float, rate: float) -> _Bucket:
        now = time.monotonic()
        bucket = self._buckets.get(name)
        if bucket is None:
            bucket = self._buckets[name] = _Bucket(capacity, now)
            while len(self._buckets) > self.max_buckets:
                self._buckets.popitem(last=False)
        self._buckets.move_to_end(name)
        bucket.tokens = min(capacity, bucket.tokens + (now - bucket.updated) * rate)
        bucket.updated = now
        return bucket

    def take(self, name: str, capacity: float, rate: float) -> float | None:
        """Take a token: None if there was one; else the seconds until there is."""
        bucket = self._bucket(name, capacity, rate)
        if bucket.tokens >= 1.0:
            bucket.tokens -= 1.0
            return None
        return (1.0 - bucket.tokens) / rate

    def wait(self, name: str, capacity: float, rate: float) -> float | None:
        """None if a token is there (none is taken); else the seconds until one is."""
        if name not in self._buckets:
            return None
        bucket = self._bucket(name, capacity, rate)
        return None if bucket.tokens >= 1.0 else (1.0 - bucket.tokens) / rate


class RateLimiter:
    """A token bucket per key: ``rate`` requests a second, bursts up to ``rate`` (at least 1)."""

    def __init__(self) -> None:
        self._buckets = TokenBuckets()

    def take(self, key_id: str, rate: float) -> float | None:
        """None if allowed; else the seconds until a request would be."""
        return self._buckets.take(key_id, max(rate, 1.0), rate)


class FailedAuthLimiter:
    """Failed authentications per client address: ``burst`` at once, then one every
    ``60 / per_minute`` seconds. Only failures count; a blocked client is refused before its
    key is even looked at."""

    def __init__(self, *, burst: int = 20, per_minute: float = 30.0) -> None:
        self.burst = float(burst)
        self.rate = per_minute / 60.0
        self._buckets = TokenBuckets()

    def blocked(self, client: str) -> float | None:
        """None if the client may try; else the seconds until it may."""
        return self._buckets.wait(client, self.burst, self.rate)

    def failed(self, client: str) -> None:
        self._buckets.take(client, self.burst, self.rate)

"""Hybrid logical clock values: ``wall-clock milliseconds << 16 | counter``."""

from __future__ import annotations

import math
from datetime import UTC, datetime
from typing import Any

__all__ = ["MAX_HLC", "to_hlc"]

MAX_HLC = 2**64 - 1


def to_hlc(value: Any) -> int:
    """An HLC from an HLC int, a datetime, or an ISO-8601 string (a naive time means UTC).

    A time stands for its whole millisecond: the result is the largest HLC within it, so
    "as of t" includes everything written during t's millisecond. Raises ValueError.
    """
    if isinstance(value, bool):
        raise ValueError("a time is an HLC integer, an ISO-8601 string or a datetime")
    if isinstance(value, int):
        if not 0 <= value <= MAX_HLC:
            raise ValueError("an HLC timestamp is an unsigned 64-bit integer")
        return value
    if isinstance(value, str):
        try:
            value = datetime.fromisoformat(value.replace("Z", "+00:00"))
        except ValueError:
            raise ValueError("not an ISO-8601 time") from None
    if isinstance(value, datetime):
        moment = value if value.tzinfo else value.replace(tzinfo=UTC)
        ms = math.floor(moment.timestamp() * 1000)
        return max(0, (ms << 16) | 0xFFFF)
    raise ValueError("a time is an HLC integer, an ISO-8601 string or a datetime")

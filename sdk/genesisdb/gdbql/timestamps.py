"""RFC 3339 timestamps as instants: integer nanoseconds since the Unix epoch.

Accepted: ``YYYY-MM-DDTHH:MM:SS[.fraction](Z|±HH:MM)`` (``t``/space for ``T``, ``z`` for
``Z``). Fractions beyond nanoseconds are truncated; leap seconds (``:60``) are not accepted.
The canonical form, the one stored events use, is UTC with nine fraction digits and ``Z``.
"""

from __future__ import annotations

import re
from datetime import date
from functools import lru_cache

_RFC3339 = re.compile(
    r"(\d{4})-(\d{2})-(\d{2})[Tt ](\d{2}):(\d{2}):(\d{2})(?:\.(\d+))?"
    r"(?:[Zz]|([+-])(\d{2}):(\d{2}))\Z",
    re.ASCII,
)
_NANOS_PER_SECOND = 1_000_000_000
_SECONDS_PER_DAY = 86_400
_EPOCH_ORDINAL = date(1970, 1, 1).toordinal()


@lru_cache(maxsize=4096)
def parse_instant(text: str) -> int | None:
    """Nanoseconds since the epoch, or None when ``text`` is not an RFC 3339 timestamp."""
    match = _RFC3339.match(text)
    if match is None:
        return None
    year, month, day, hour, minute, second = (int(part) for part in match.groups()[:6])
    fraction, sign, offset_hours, offset_minutes = match.groups()[6:]
    if hour > 23 or minute > 59 or second > 59:
        return None
    try:
        days = date(year, month, day).toordinal() - _EPOCH_ORDINAL
    except ValueError:
        return None
    seconds = days * _SECONDS_PER_DAY + hour * 3600 + minute * 60 + second
    if sign is not None:
        offset = int(offset_hours) * 3600 + int(offset_minutes) * 60
        if int(offset_hours) > 23 or int(offset_minutes) > 59:
            return None
        seconds -= offset if sign == "+" else -offset
    nanos = int((fraction or "").ljust(9, "0")[:9])
    return seconds * _NANOS_PER_SECOND + nanos


def format_instant(instant: int) -> str | None:
    """The canonical UTC form of an instant, or None outside years 0001–9999."""
    seconds, nanos = divmod(instant, _NANOS_PER_SECOND)
    days, second_of_day = divmod(seconds, _SECONDS_PER_DAY)
    try:
        day = date.fromordinal(days + _EPOCH_ORDINAL)
    except (ValueError, OverflowError):
        return None
    hours, rest = divmod(second_of_day, 3600)
    minutes, secs = divmod(rest, 60)
    return f"{day.isoformat()}T{hours:02d}:{minutes:02d}:{secs:02d}.{nanos:09d}Z"


def normalize_timestamp(text: str) -> str | None:
    """The canonical form of an RFC 3339 string, or None when it is not one."""
    instant = parse_instant(text)
    return None if instant is None else format_instant(instant)

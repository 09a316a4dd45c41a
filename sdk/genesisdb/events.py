"""Stored events as CloudEvent objects from the ``cloudevents`` package.

cloudevents 2.x keeps the class at ``cloudevents.v1.http``; 1.x (and the official clients)
at ``cloudevents.http``. Either works. Events are built the way the official client builds
them — every field an attribute, so ``event['data']`` works — and ``data`` is also passed as
the payload, so ``event.data`` works too.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any, overload

try:  # cloudevents 2.x
    from cloudevents.v1.http import CloudEvent
except ImportError:  # pragma: no cover - cloudevents 1.x
    from cloudevents.http import CloudEvent  # type: ignore[no-redef]

__all__ = ["CloudEvent", "CloudEvents", "to_cloudevent", "to_dict"]


def to_cloudevent(event: dict[str, Any]) -> Any:
    """A CloudEvent holding every stored field (``data`` as attribute and as payload)."""
    return CloudEvent(dict(event), event.get("data"))


def to_dict(event: Any) -> dict[str, Any]:
    """The stored fields of a CloudEvent (or a dict), in wire order."""
    if isinstance(event, dict):
        return dict(event)
    attributes: dict[str, Any] = dict(event.get_attributes())
    if "data" not in attributes:
        attributes["data"] = event.data
    return attributes


class CloudEvents(Sequence[Any]):
    """Stored events as CloudEvents, each built when first looked at.

    A commit answers with every event it stored; a caller that commits thousands of events
    and ignores the answer should not pay for thousands of CloudEvent objects.
    """

    __slots__ = ("_events", "_raw")

    def __init__(self, raw: Sequence[dict[str, Any]]) -> None:
        self._raw = raw
        self._events: list[Any] = [None] * len(raw)

    def __len__(self) -> int:
        return len(self._raw)

    @overload
    def __getitem__(self, index: int) -> Any: ...

    @overload
    def __getitem__(self, index: slice) -> list[Any]: ...

    def __getitem__(self, index: int | slice) -> Any:
        if isinstance(index, slice):
            return [self[i] for i in range(*index.indices(len(self._raw)))]
        event = self._events[index]
        if event is None:
            event = self._events[index] = to_cloudevent(self._raw[index])
        return event

    def __iter__(self) -> Iterator[Any]:
        return (self[i] for i in range(len(self._raw)))

    def __eq__(self, other: object) -> bool:
        if isinstance(other, Sequence) and not isinstance(other, str | bytes):
            return len(other) == len(self) and all(a == b for a, b in zip(self, other, strict=True))
        return NotImplemented

    __hash__ = None  # type: ignore[assignment]  # mutable-looking, like a list

    def __repr__(self) -> str:
        return f"CloudEvents({list(self)!r})"

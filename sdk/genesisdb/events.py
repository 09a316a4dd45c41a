"""Stored events as CloudEvent objects from the ``cloudevents`` package.

cloudevents 2.x keeps the class at ``cloudevents.v1.http``; 1.x (and the official clients)
at ``cloudevents.http``. Either works. Events are built the way the official client builds
them — every field an attribute, so ``event['data']`` works — and ``data`` is also passed as
the payload, so ``event.data`` works too.
"""

from __future__ import annotations

from typing import Any

try:  # cloudevents 2.x
    from cloudevents.v1.http import CloudEvent
except ImportError:  # pragma: no cover - cloudevents 1.x
    from cloudevents.http import CloudEvent  # type: ignore[no-redef]

__all__ = ["CloudEvent", "to_cloudevent", "to_dict"]


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

"""Restoring a backup: each event is checked against the chain before it becomes an entry."""

from __future__ import annotations

from typing import Any

import orjson
import uuid_utils

import ledgerstore
from genesisdb import chain
from genesisdb.exceptions import BadRequestError
from genesisdb.gdbql.timestamps import parse_instant
from genesisdb.storage import EVENTS_LOG
from genesisdb.validation import subject_path, text
from ledgerstore import NewEntry, SideValue

__all__ = ["restored_entry"]


def restored_entry(
    index: int, event: object, previous: str, previous_time: int
) -> tuple[NewEntry, SideValue | None, int]:
    """Validate one backup event against the chain; its entry, side value and time."""
    where = f"backup[{index}]"
    if not isinstance(event, dict):
        raise BadRequestError(f"{where} must be a JSON object")
    source = text(event.get("source"), f"{where}.source")
    subject = subject_path(event.get("subject"), f"{where}.subject")
    event_type = text(event.get("type"), f"{where}.type")
    event_id = event.get("id")
    stamp_text = event.get("time")
    fields = ("predecessorhash", "hash")
    if not all(isinstance(event.get(name), str) for name in (*fields, "id", "time")):
        raise BadRequestError(f"{where} lacks id, time, predecessorhash or hash")
    assert isinstance(event_id, str) and isinstance(stamp_text, str)
    try:
        event_id = str(uuid_utils.UUID(event_id))
    except ValueError:
        raise BadRequestError(f"{where}.id is not a UUID") from None
    stamp = parse_instant(stamp_text)
    if stamp is None or stamp <= previous_time:
        raise BadRequestError(f"{where}.time is not an RFC 3339 time after the previous event's")
    if event["predecessorhash"] != previous:
        raise BadRequestError(f"{where}.predecessorhash does not link to the previous event")
    if "data" not in event:
        raise BadRequestError(f"{where}.data is required")
    data = event["data"]
    hashed: dict[str, Any] = {
        "source": source,
        "subject": subject,
        "type": event_type,
        "specversion": "1.0",
        "id": event_id,
        "time": stamp_text,
        "datacontenttype": "application/json",
        "predecessorhash": previous,
        "data": data,
    }
    record: dict[str, Any] = {"source": source, "id": event_id, "time": stamp_text}
    value: SideValue | None = None
    reference = event.get("reference")
    if reference is not None:
        if not isinstance(reference, dict) or not all(
            isinstance(reference.get(name), str) for name in ("id", "digest")
        ):
            raise BadRequestError(f"{where}.reference must have an id and a digest")
        keys = chain.skeleton(data)
        hashed["data"] = chain.commitment(reference["id"], reference["digest"], keys)
        record["ref"] = {"id": reference["id"], "digest": reference["digest"], "keys": keys}
        salt = reference.get("salt")
        if isinstance(salt, str):
            try:
                salt_bytes = bytes.fromhex(salt)
            except ValueError:
                raise BadRequestError(f"{where}.reference.salt is not hex") from None
            if chain.salted_digest(salt_bytes, data) != reference["digest"]:
                raise BadRequestError(f"{where}.data does not match its reference digest")
            raw = orjson.dumps({"salt": salt, "data": data})
            value = SideValue(reference["id"], subject, raw)
    else:
        record["data"] = data
    if chain.event_hash(hashed) != event["hash"]:
        raise BadRequestError(f"{where}.hash does not match the event's content")
    record["predecessorhash"] = previous
    record["hash"] = event["hash"]
    entry = NewEntry(
        EVENTS_LOG,
        orjson.dumps(record),
        ledgerstore.PayloadFormat.BYTES,
        type=event_type,
        subject=subject,
        key=event_id,
    )
    return entry, value, stamp

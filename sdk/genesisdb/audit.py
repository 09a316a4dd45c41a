"""Auditing one stored event against the hash chain and its referenced data."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import orjson

from genesisdb import chain
from genesisdb.gdbql.timestamps import parse_instant
from genesisdb.storage import hashed_form
from ledgerstore import Entry

__all__ = ["audit_event"]


def audit_event(
    entry: Entry,
    record: dict[str, Any],
    values: Mapping[str, bytes],
    previous: str,
    previous_time: int,
) -> list[str]:
    problems: list[str] = []
    try:
        event = hashed_form(entry, record)
    except (KeyError, TypeError):
        return ["the stored event is malformed"]
    if event["predecessorhash"] != previous:
        problems.append("predecessorhash does not match the previous event's hash")
    if chain.event_hash(event) != event["hash"]:
        problems.append("hash does not match the event's content")
    stamp = parse_instant(str(event["time"]))
    if stamp is None or stamp <= previous_time:
        problems.append("time does not increase in commit order")
    if "ref" in record:
        raw = values.get(record["ref"]["id"])
        if raw is not None:
            value = orjson.loads(raw)
            digest = chain.salted_digest(bytes.fromhex(value["salt"]), value["data"])
            if (
                digest != record["ref"]["digest"]
                or chain.skeleton(value["data"]) != record["ref"]["keys"]
            ):
                problems.append("referenced data does not match its commitment")
    return problems

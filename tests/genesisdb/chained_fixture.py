"""The GDBQL conformance fixture as a valid Genesis DB backup: ids and times kept, the hash
chain recomputed (the fixture's hashes are placeholders), so ``restore`` accepts it."""

from __future__ import annotations

import copy
import hashlib
from typing import Any

import rfc8785

from tests.genesisdb.gdbql_cases import EVENTS


def chained(events: list[dict[str, Any]]) -> list[dict[str, Any]]:
    previous = "0" * 64
    result = []
    for event in copy.deepcopy(events):
        event["predecessorhash"] = previous
        body = {key: value for key, value in event.items() if key != "hash"}
        event["hash"] = previous = hashlib.sha256(rfc8785.dumps(body)).hexdigest()
        result.append(event)
    return result


FIXTURE = chained(EVENTS)

"""The SDK suite: every test runs on embedded SQLite, embedded PostgreSQL and HTTP.

The HTTP server is shared by the session, so every test works under its own subject.
"""

from __future__ import annotations

import asyncio
import hashlib
from typing import Any

import pytest
import rfc8785

from genesisdb import (
    BadRequestError,
    Client,
    CloudEvent,
    EventTooLargeError,
    InvalidEventError,
    NotFoundError,
    PreconditionFailedError,
    QueryError,
    SchemaViolationError,
)

FIELDS = [
    "source", "subject", "type", "specversion", "id", "time", "datacontenttype",
    "predecessorhash", "data", "hash",
]  # fmt: skip


def event(subject: str, kind: str = "io.test.added", **data: Any) -> dict[str, Any]:
    return {"source": "io.test", "subject": subject, "type": kind, "data": data}


async def test_commit_returns_the_stored_events_with_the_ten_fields(
    client: Client, subject: str
) -> None:
    stored = await client.commit_events([event(subject, n=1), event(subject + "/a", n=2)])
    assert [type(item) for item in stored] == [CloudEvent, CloudEvent]
    first, second = stored
    assert list(first.get_attributes()) == FIELDS
    assert first["data"] == {"n": 1} and first.data == {"n": 1}
    assert first["specversion"] == "1.0" and first["datacontenttype"] == "application/json"
    assert first["time"].endswith("Z") and len(first["time"].split(".")[1]) == 10
    assert second["predecessorhash"] == first["hash"]
    assert second["time"] > first["time"]
    streamed = await client.stream_events(subject)
    assert [item.get_attributes() for item in streamed] == [
        item.get_attributes() for item in stored
    ]


async def test_committed_events_behave_as_a_sequence(client: Client, subject: str) -> None:
    stored = await client.commit_events([event(subject, n=i) for i in range(4)])
    assert len(stored) == 4 and stored[-1]["data"] == {"n": 3}
    assert [e["data"]["n"] for e in stored[1:3]] == [1, 2]
    assert stored[0] is stored[0]  # built once, when first looked at
    assert stored == list(stored) and stored != list(stored)[:3]
    streamed = await client.stream_events(subject)
    assert [e["id"] for e in stored] == [e["id"] for e in streamed]


async def test_the_hash_is_sha256_over_the_canonical_event(client: Client, subject: str) -> None:
    (stored,) = await client.commit_events([event(subject, price=2990000.00, name="Tumbler")])
    body = {key: value for key, value in stored.get_attributes().items() if key != "hash"}
    assert stored["hash"] == hashlib.sha256(rfc8785.dumps(body)).hexdigest()


async def test_stream_is_hierarchical_and_segment_aware(client: Client, subject: str) -> None:
    await client.commit_events(
        [
            event(subject),
            event(subject + "/42"),
            event(subject + "/42/orders/7"),
            event(subject + "s"),
        ]
    )
    assert [e["subject"] for e in await client.stream_events(subject)] == [
        subject, subject + "/42", subject + "/42/orders/7"
    ]  # fmt: skip
    assert [e["subject"] for e in await client.stream_events(subject + "/42")] == [
        subject + "/42", subject + "/42/orders/7"
    ]  # fmt: skip
    assert await client.stream_events(subject + "/nothing") == []


async def test_stream_bounds_are_exclusive_unless_included(client: Client, subject: str) -> None:
    a, b, c = await client.commit_events([event(subject, n=i) for i in range(3)])

    async def ids(options: dict[str, Any]) -> list[str]:
        return [e["id"] for e in await client.stream_events(subject, options)]

    assert await ids({"lower_bound": a["id"]}) == [b["id"], c["id"]]
    assert await ids({"lower_bound": a["id"], "include_lower_bound_event": True}) == [
        a["id"], b["id"], c["id"]
    ]  # fmt: skip
    assert await ids({"upper_bound": c["id"]}) == [a["id"], b["id"]]
    assert await ids({"lower_bound": a["id"], "upper_bound": c["id"]}) == [b["id"]]
    assert await ids({"upper_bound": c["id"], "include_upper_bound_event": True}) == [
        a["id"], b["id"], c["id"]
    ]  # fmt: skip
    # A bound that names no event selects nothing (our documented choice).
    assert await ids({"lower_bound": "2d6d4141-6107-4fb2-905f-445730f4f2a9"}) == []


async def test_latest_by_event_type_keeps_the_latest_per_subject(
    client: Client, subject: str
) -> None:
    await client.commit_events(
        [
            event(subject + "/1", "updated", v=1),
            event(subject + "/2", "updated", v=1),
            event(subject + "/1", "updated", v=2),
            event(subject + "/1", "other", v=3),
        ]
    )
    latest = await client.stream_events(subject, {"latest_by_event_type": "updated"})
    assert [(e["subject"], e["data"]["v"]) for e in latest] == [
        (subject + "/2", 1), (subject + "/1", 2)
    ]  # fmt: skip


async def test_is_subject_new_fails_with_details_and_writes_nothing(
    client: Client, subject: str
) -> None:
    await client.commit_events(
        [event(subject)], [{"type": "isSubjectNew", "payload": {"subject": subject}}]
    )
    with pytest.raises(PreconditionFailedError) as failure:
        await client.commit_events(
            [event(subject, n=2), event(subject + "/other", n=3)],
            [{"type": "isSubjectNew", "payload": {"subject": subject}}],
        )
    assert failure.value.status == 412
    assert failure.value.details == {
        "index": 0, "type": "isSubjectNew", "payload": {"subject": subject}
    }  # fmt: skip
    assert len(await client.stream_events(subject)) == 1


async def test_is_subject_existing(client: Client, subject: str) -> None:
    guard = [{"type": "isSubjectExisting", "payload": {"subject": subject}}]
    with pytest.raises(PreconditionFailedError):
        await client.commit_events([event(subject)], guard)
    await client.commit_events([event(subject)])
    await client.commit_events([event(subject)], guard)
    assert len(await client.stream_events(subject)) == 2


async def test_is_query_result_true_with_aggregates(client: Client, subject: str) -> None:
    limit = (
        f"STREAM e FROM events WHERE e.subject UNDER '{subject}' AND e.type == 'tx' "
        "MAP SUM(e.data.amount) + 500 <= 1000"
    )
    guard = [{"type": "isQueryResultTrue", "payload": {"query": limit}}]
    await client.commit_events([event(subject, "tx", amount=500)], guard)
    await client.commit_events([event(subject, "tx", amount=500)], guard)
    with pytest.raises(PreconditionFailedError) as failure:
        await client.commit_events([event(subject, "tx", amount=500)], guard)
    assert failure.value.details["type"] == "isQueryResultTrue"
    assert failure.value.details["index"] == 0
    assert len(await client.stream_events(subject)) == 2


async def test_a_bad_event_in_a_batch_writes_nothing(client: Client, subject: str) -> None:
    with pytest.raises(InvalidEventError):
        await client.commit_events(
            [event(subject), {"source": "s", "subject": "no-slash", "type": "t", "data": {}}]
        )
    with pytest.raises(InvalidEventError):
        await client.commit_events([{"source": "s", "subject": subject, "type": "t"}])
    assert await client.stream_events(subject) == []


async def test_an_event_over_64_kb_is_refused(client: Client, subject: str) -> None:
    with pytest.raises(EventTooLargeError) as failure:
        await client.commit_events([event(subject, blob="x" * 70_000)])
    assert failure.value.status == 413
    assert await client.stream_events(subject) == []


async def test_gdpr_erase_blanks_referenced_data_and_keeps_the_chain(
    client: Client, subject: str
) -> None:
    personal = {"firstName": "Zelda", "address": {"city": "Hyrule", "zip": [1, 2]}}
    stored = await client.commit_events(
        [
            {
                **event(subject + "/p"),
                "data": personal,
                "options": {"store_data_as_reference": True},
            },
            event(subject + "/q", keep="me"),
        ]
    )
    assert stored[0]["data"] == personal
    assert (await client.stream_events(subject + "/p"))[0]["data"] == personal
    assert await client.erase_data(subject) == 1
    erased, kept = await client.stream_events(subject)
    assert erased["data"] == {"firstName": "", "address": {"city": "", "zip": ["", ""]}}
    assert kept["data"] == {"keep": "me"}
    assert erased["hash"] == stored[0]["hash"] and kept["predecessorhash"] == erased["hash"]
    report = await client.audit()
    assert report["valid"] is True and report["errors"] == []
    rows = await client.q(f"STREAM e FROM events WHERE e.subject UNDER '{subject}' MAP e.data")
    assert rows == [erased["data"], kept["data"]]


async def test_queries(client: Client, subject: str) -> None:
    await client.commit_events(
        [event(subject + f"/{i % 3}", "order" if i % 2 else "refund", amount=i) for i in range(10)]
    )
    base = f"STREAM e FROM events WHERE e.subject UNDER '{subject}'"
    assert await client.q(f"{base} AND e.type == 'order' MAP COUNT()") == [5]
    assert await client.query_events(f"{base} GROUP BY e.type MAP {{t: e.type, n: COUNT()}}") == [
        {"t": "refund", "n": 5}, {"t": "order", "n": 5}
    ]  # fmt: skip
    assert await client.q(f"{base} ORDER BY e.data.amount DESC LIMIT 3 MAP e.data.amount") == [
        9, 8, 7
    ]  # fmt: skip
    assert await client.q(f"{base} AND e.subject DESCENDANTS '{subject}/1' MAP COUNT()") == [0]
    assert await client.q(
        f"{base} AND e.time >= '2000-01-01T00:00:00Z' MAP SUM(e.data.amount)"
    ) == [45]
    assert await client.q(f"{base} AND e.time < '2000-01-01T00:00:00Z'") == []
    rows = await client.q(
        f"FROM e IN events WHERE e.subject UNDER '{subject}' TOP 2 PROJECT INTO e.data"
    )
    assert rows == [{"amount": 0}, {"amount": 1}]


async def test_a_malformed_query_names_the_position(client: Client) -> None:
    with pytest.raises(QueryError) as failure:
        await client.q("STREAM e FROM events WHERE")
    assert failure.value.status == 400
    assert failure.value.details["position"] == 26
    assert "expected" in str(failure.value)


async def test_schemas_validate_commits(client: Client, subject: str) -> None:
    kind = f"io.test.schema.{subject[3:]}"
    schema = {
        "properties": {"amount": {"type": "number", "required": True}},
        "allowAdditionalProperties": False,
    }
    await client.register_schema(kind, schema)
    assert (await client.get_schema(kind))["schema"] == schema
    await client.commit_events([event(subject, kind, amount=3)])
    with pytest.raises(SchemaViolationError) as failure:
        await client.commit_events([event(subject, kind, amount="3", extra=1)])
    assert failure.value.status == 422
    assert failure.value.details["violations"] == [
        "amount must be of type number", "extra is not allowed"
    ]  # fmt: skip
    with pytest.raises(NotFoundError):
        await client.get_schema(kind + ".unknown")


async def test_subjects_types_status_ping(client: Client, subject: str) -> None:
    await client.commit_events(
        [event(subject + "/x", "io.test.kind-a"), event(subject, "io.test.kind-b")]
    )
    subjects = await client.subjects()
    assert {subject, subject + "/x"} <= set(subjects) and subjects == sorted(subjects)
    assert {"io.test.kind-a", "io.test.kind-b"} <= set(await client.types())
    status = await client.status()
    assert status["events"]["count"] >= 2 and status["engine"]["version"]
    assert await client.ping() == "pong"


async def test_observe_replays_then_follows_live_without_gap(client: Client, subject: str) -> None:
    first = await client.commit_events([event(subject, n=i) for i in range(3)])
    seen: list[int] = []

    async def observe() -> None:
        options = {"lower_bound": first[0]["id"], "include_lower_bound_event": True}
        async for item in client.observe_events(subject, options):
            seen.append(item["data"]["n"])
            if len(seen) == 6:
                return

    task = asyncio.create_task(observe())
    while len(seen) < 3:
        await asyncio.sleep(0.02)
    await client.commit_events([event(subject + "s", n=99)])  # not under the subject
    await client.commit_events([event(subject, n=3), event(subject + "/child", n=4)])
    await client.commit_events([event(subject, n=5)])
    await asyncio.wait_for(task, 20)
    assert seen == [0, 1, 2, 3, 4, 5]


async def test_observe_without_lower_bound_sees_only_new_events(
    client: Client, subject: str
) -> None:
    await client.commit_events([event(subject, n=0)])
    seen: list[int] = []

    async def observe() -> None:
        async for item in client.observe_events(subject):
            seen.append(item["data"]["n"])
            return

    task = asyncio.create_task(observe())
    # The observation goes live at some moment after the call; commit until it sees one.
    for n in range(1, 100):
        await client.commit_events([event(subject, n=n)])
        for _ in range(10):
            if seen:
                break
            await asyncio.sleep(0.02)
        if seen:
            break
    await asyncio.wait_for(task, 20)
    assert len(seen) == 1 and seen[0] >= 1  # the event from before never comes


async def test_observe_with_an_upper_bound_ends(client: Client, subject: str) -> None:
    a, b, _ = await client.commit_events([event(subject, n=i) for i in range(3)])
    options = {"lower_bound": a["id"], "upper_bound": b["id"], "include_upper_bound_event": True}
    seen = [item["data"]["n"] async for item in client.observe_events(subject, options)]
    assert seen == [1]


async def test_bad_requests_are_400(client: Client, subject: str) -> None:
    attempts = [
        client.stream_events("customer"),
        client.stream_events(subject, {"lower_bound": "not-a-uuid"}),
        client.stream_events(subject, {"include_lower_bound_event": "yes"}),
        client.commit_events([event(subject)], [{"type": "isSubjectOld", "payload": {}}]),
        client.commit_events([event(subject)], [{"type": "isSubjectNew", "payload": "x"}]),
        client.erase_data(""),
        client.q(""),
    ]
    for attempt in attempts:
        with pytest.raises(BadRequestError) as failure:
            await attempt
        assert failure.value.status == 400 and failure.value.code in (
            "BAD_REQUEST",
            "INVALID_QUERY",
        )
    assert await client.stream_events(subject) == []


async def test_iterators_stream_without_a_list(client: Client, subject: str) -> None:
    await client.commit_events([event(subject, n=i) for i in range(600)])
    numbers = [e["data"]["n"] async for e in client.iter_events(subject)]
    assert numbers == list(range(600))
    query = f"STREAM e FROM events WHERE e.subject == '{subject}' MAP e.data.n"
    assert [row async for row in client.iter_query(query)] == list(range(600))

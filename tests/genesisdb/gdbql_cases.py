"""GDBQL conformance data: a fixture of 30 events and queries with hand-written results.

Event ``n`` has id ``ID_PREFIX + f"{n:012d}"``; ``ids(…)`` and ``events(…)`` spell the
expected rows by event number. Nothing here is computed by the code under test.

Subjects (segment-awareness): /customer, /customer/7, /customer/9, /customer/42,
/customer/420 and their orders, /customers/9 (not under /customer), /decisions/…, /notes/…
and the root /.
"""

from __future__ import annotations

from typing import Any, NamedTuple

ID_PREFIX = "018f2a6c-0000-7000-8000-"
SOURCES = {"crm": "https://crm.example", "shop": "https://shop.example"}
SOURCES |= {"agents": "urn:agents", "misc": "urn:misc"}


def event_id(number: int) -> str:
    return f"{ID_PREFIX}{number:012d}"


def _event(
    number: int, subject: str, type_: str, time: str, source: str, data: dict[str, Any]
) -> dict[str, Any]:
    return {
        "source": SOURCES[source],
        "subject": subject,
        "type": type_,
        "specversion": "1.0",
        "id": event_id(number),
        "time": time,
        "datacontenttype": "application/json",
        "predecessorhash": f"{number - 1:064x}",
        "data": data,
        "hash": f"{number:064x}",
    }


_T = "2026-01-"
EVENTS = [
    _event(1, "/customer/42", "customer-added", _T + "01T08:00:00.000000000Z", "crm",
           {"name": "Alice", "city": "Berlin", "tier": "gold", "age": 34,
            "tags": ["vip", "early"]}),
    _event(2, "/customer/7", "customer-added", _T + "01T09:30:00.000000000Z", "crm",
           {"name": "Bob", "city": "Hamburg", "tier": "silver", "age": 41, "tags": []}),
    _event(3, "/customers/9", "customer-added", _T + "01T12:00:00.000000000Z", "crm",
           {"name": "Zoë", "city": "München", "tier": "gold", "age": 28, "tags": ["vip"]}),
    _event(4, "/customer", "customer-added", _T + "02T00:00:00.000000000Z", "crm",
           {"name": "Root", "city": None, "tier": None}),
    _event(5, "/customer/420", "customer-added", _T + "02T10:15:30.500000000Z", "crm",
           {"name": "Carol", "city": "Berlin", "tier": "bronze", "age": 52.5,
            "tags": ["early"]}),
    _event(6, "/customer/42/orders/7", "order-placed", _T + "03T10:00:00.000000000Z", "shop",
           {"orderId": 7, "amount": 120, "currency": "EUR",
            "items": [{"sku": "A1", "qty": 2}, {"sku": "B2", "qty": 1}],
            "shipping": {"country": "DE", "express": True}}),
    _event(7, "/customer/42/orders/8", "order-placed", _T + "03T11:00:00.000000000Z", "shop",
           {"orderId": 8, "amount": 80.5, "currency": "EUR", "items": [{"sku": "C3", "qty": 1}],
            "shipping": {"country": "AT", "express": False}}),
    _event(8, "/customer/7/orders/1", "order-placed", _T + "04T09:00:00.000000000Z", "shop",
           {"orderId": 1, "amount": 300, "currency": "USD", "items": [],
            "shipping": {"country": "US", "express": False}}),
    _event(9, "/customers/9/orders/2", "order-placed", _T + "04T18:45:00.123456789Z", "shop",
           {"orderId": 2, "amount": 45.25, "currency": "EUR",
            "items": [{"sku": "A1", "qty": 5}], "shipping": None}),
    _event(10, "/customer/420/orders/3", "order-placed", _T + "05T07:00:00.000000000Z", "shop",
           {"orderId": 3, "amount": 0, "currency": "EUR", "items": [], "note": "free sample"}),
    _event(11, "/customer/42/orders/7", "order-shipped", _T + "05T12:00:00.000000000Z", "shop",
           {"carrier": "DHL", "tracking": "DHL-001"}),
    _event(12, "/customer/7/orders/1", "order-shipped", _T + "06T08:00:00.000000000Z", "shop",
           {"carrier": "UPS", "tracking": "UPS-777"}),
    _event(13, "/customer/42", "customer-updated", _T + "06T09:00:00.000000000Z", "crm",
           {"city": "Potsdam", "tier": "platinum"}),
    _event(14, "/customer/7", "customer-updated", _T + "06T23:59:59.999999999Z", "crm",
           {"city": "Kiel"}),
    _event(15, "/decisions/credit/1", "decision-made", _T + "07T00:00:00.000000000Z", "agents",
           {"agent": "risk-bot", "outcome": "approve", "score": 0.875,
            "customer": "/customer/42", "limit": 5000}),
    _event(16, "/decisions/credit/2", "decision-made", _T + "07T06:00:00.000000000Z", "agents",
           {"agent": "risk-bot", "outcome": "reject", "score": 0.125,
            "customer": "/customer/7", "limit": 0}),
    _event(17, "/decisions/credit/3", "decision-made", _T + "07T12:00:00.000000000Z", "agents",
           {"agent": "human", "outcome": "approve", "score": 0.5,
            "customer": "/customers/9", "limit": 2500}),
    _event(18, "/decisions/fraud/1", "decision-made", _T + "08T00:00:00.000000000Z", "agents",
           {"agent": "fraud-bot", "outcome": "escalate", "score": None,
            "customer": "/customer/420"}),
    _event(19, "/customer/42/orders/9", "order-placed", _T + "08T09:00:00.000000000Z", "shop",
           {"orderId": 9, "amount": 99.75, "currency": "EUR", "items": [{"sku": "B2", "qty": 3}],
            "shipping": {"country": "DE", "express": True}}),
    _event(20, "/customer/7/orders/2", "order-placed", _T + "08T10:00:00.000000000Z", "shop",
           {"orderId": 2, "amount": 1000, "currency": "USD", "items": [{"sku": "D4", "qty": 1}],
            "shipping": {"country": "US", "express": True}}),
    _event(21, "/notes/1", "note", _T + "08T12:00:00.000000000Z", "misc",
           {"text": "日本語のメモ", "lang": "ja"}),
    _event(22, "/notes/2", "note", _T + "09T00:00:00.000000000Z", "misc",
           {"text": "naïve café ☕", "lang": "fr"}),
    _event(23, "/", "note", _T + "09T06:30:00.000000000Z", "misc",
           {"text": "root note", "lang": None}),
    _event(24, "/notes/3", "note", _T + "09T12:00:00.000000000Z", "misc",
           {"text": "", "lang": "en", "weird key": "spaced",
            "nested": {"deep": {"deeper": 42}}}),
    _event(25, "/customer/42/orders/9", "order-shipped", _T + "09T18:00:00.000000000Z", "shop",
           {"carrier": "DHL", "tracking": "DHL-002"}),
    _event(26, "/customer/9", "customer-added", _T + "10T00:00:00.000000000Z", "crm",
           {"name": "Dave", "city": "Köln", "tier": "silver", "age": 19}),
    _event(27, "/customer/9/orders/4", "order-placed", _T + "10T01:00:00.000000000Z", "shop",
           {"orderId": 4, "amount": -15, "currency": "EUR", "items": [],
            "shipping": {"country": "DE", "express": False}, "refund": True}),
    _event(28, "/decisions/credit/4", "decision-made", _T + "10T08:00:00.000000000Z", "agents",
           {"agent": "risk-bot", "outcome": "approve", "score": 0.75,
            "customer": "/customer/9", "limit": 1500}),
    _event(29, "/customer/42/orders/7/returns/1", "order-returned",
           _T + "10T09:00:00.000000000Z", "shop", {"amount": 40, "reason": "damaged"}),
    _event(30, "/customer/7", "customer-updated", _T + "10T23:00:00.000000000Z", "crm",
           {"tier": "gold", "age": 42}),
]  # fmt: skip


def ids(*numbers: int) -> list[str]:
    """Expected rows of ``MAP e.id``: the ids of these events, in this order."""
    return [event_id(number) for number in numbers]


def events(*numbers: int) -> list[dict[str, Any]]:
    """Expected rows without MAP: these whole events, in this order."""
    return [EVENTS[number - 1] for number in numbers]


class Case(NamedTuple):
    name: str
    query: str
    rows: list[Any]


S = "STREAM e FROM events "
ONE = "STREAM e FROM events LIMIT 1 "

CASES = [
    # -- headers, keywords, clauses ------------------------------------------------------
    Case("stream-where", S + "WHERE e.type == 'order-returned'", events(29)),
    Case("lowercase-keywords", "stream e from events where e.type == 'order-returned'",
         events(29)),
    Case("mixed-case-keywords", "Stream e From Events Where e.type == 'order-returned' "
         "Map e.id", ids(29)),
    Case("old-syntax", "FROM e IN events WHERE e.type == 'order-returned' PROJECT INTO e.id",
         ids(29)),
    Case("other-variable-name", "STREAM ev FROM events WHERE ev.type == \"note\" "
         "MAP ev.subject", ["/notes/1", "/notes/2", "/", "/notes/3"]),
    Case("limit", S + "LIMIT 3 MAP e.id", ids(1, 2, 3)),
    Case("top", "FROM e IN events TOP 2 PROJECT INTO e.data.name", ["Alice", "Bob"]),
    Case("limit-zero", S + "LIMIT 0", []),
    Case("where-source", S + "WHERE e.source == 'urn:agents' MAP e.subject",
         ["/decisions/credit/1", "/decisions/credit/2", "/decisions/credit/3",
          "/decisions/fraud/1", "/decisions/credit/4"]),
    Case("no-map-whole-event", S + f"WHERE e.id == '{event_id(23)}'", events(23)),
    Case("single-equals", S + "WHERE e.type = 'order-returned' MAP e.id", ids(29)),
    Case("angle-not-equal", S + "WHERE e.source <> 'https://crm.example' "
         "AND e.source <> 'https://shop.example' MAP e.id",
         ids(15, 16, 17, 18, 21, 22, 23, 24, 28)),
    Case("trailing-semicolon", S + "WHERE e.type == 'order-returned' MAP e.data.reason;",
         ["damaged"]),
    Case("multi-line", "STREAM e\n\tFROM events\n  WHERE e.type == 'order-returned'\n"
         "  MAP e.data.amount\n", [40]),
    Case("map-whole-variable", S + "WHERE e.subject == '/' MAP e", events(23)),
    Case("specversion", ONE + "MAP e.specversion", ["1.0"]),
    Case("datacontenttype", ONE + "MAP e.datacontenttype", ["application/json"]),
    Case("predecessorhash", ONE + "MAP e.predecessorhash", ["0" * 64]),
    Case("hash", S + f"WHERE e.id == '{event_id(2)}' MAP e.hash", [f"{2:064x}"]),
    # -- fields and nested data ----------------------------------------------------------
    Case("nested-path", S + "WHERE e.type == 'order-placed' MAP e.data.shipping.country",
         ["DE", "AT", "US", None, None, "DE", "US", "DE"]),
    Case("array-index", S + "WHERE e.type == 'order-placed' MAP e.data.items[0].sku",
         ["A1", "C3", None, "A1", None, "B2", "D4", None]),
    Case("bracket-key", S + "WHERE e.type == 'note' MAP e.data[\"weird key\"]",
         [None, None, None, "spaced"]),
    Case("deep-path", S + "WHERE e.data.nested.deep.deeper == 42 MAP e.id", ids(24)),
    Case("missing-field-is-null", S + "WHERE e.type == 'customer-updated' MAP e.data.name",
         [None, None, None]),
    Case("map-data", S + "WHERE e.type == 'order-returned' MAP e.data",
         [{"amount": 40, "reason": "damaged"}]),
    Case("path-into-string", S + f"WHERE e.id == '{event_id(1)}' MAP e.data.name.first",
         [None]),
    Case("index-out-of-range", S + f"WHERE e.id == '{event_id(1)}' MAP e.data.tags[5]",
         [None]),
    Case("null-equals-null", S + "WHERE e.data.city == null AND e.type == 'customer-added' "
         "MAP e.data.name", ["Root"]),
    Case("missing-equals-null", S + "WHERE e.data.age == null "
         "AND e.source == 'https://crm.example' MAP e.id", ids(4, 13, 14)),
    Case("not-null", S + "WHERE e.data.age != null MAP e.data.age", [34, 41, 28, 52.5, 19, 42]),
    Case("bracket-top-level", S + "WHERE e[\"type\"] == 'order-returned' MAP e['subject']",
         ["/customer/42/orders/7/returns/1"]),
    # -- comparisons and types -----------------------------------------------------------
    Case("greater-than", S + "WHERE e.data.amount > 100 MAP e.data.orderId", [7, 1, 2]),
    Case("range", S + "WHERE e.data.amount >= 80.5 AND e.data.amount <= 120 "
         "MAP e.data.amount", [120, 80.5, 99.75]),
    Case("negative", S + "WHERE e.data.amount < 0 MAP e.id", ids(27)),
    Case("zero", S + "WHERE e.data.amount == 0 MAP e.id", ids(10)),
    Case("no-number-string-coercion", S + "WHERE e.data.orderId == '7' MAP e.id", []),
    Case("int-equals-float", S + "WHERE e.data.amount == 120.0 MAP e.id", ids(6)),
    Case("string-ordering", S + "WHERE e.data.tier > 'g' MAP e.data.tier",
         ["gold", "silver", "gold", "platinum", "silver", "gold"]),
    Case("null-never-ordered", S + "WHERE e.data.score < 0.6 MAP e.subject",
         ["/decisions/credit/2", "/decisions/credit/3"]),
    Case("not-of-null-comparison", S + "WHERE NOT (e.data.score >= 0.6) "
         "AND e.type == 'decision-made' MAP e.id", ids(16, 17, 18)),
    Case("number-vs-string-ordering", S + "WHERE e.data.amount > 'a' MAP e.id", []),
    Case("boolean-equality", S + "WHERE e.data.shipping.express == true MAP e.data.orderId",
         [7, 9, 2]),
    Case("true-is-not-one", S + "WHERE e.data.shipping.express == 1 MAP e.id", []),
    Case("truthy-field", S + "WHERE e.data.refund MAP e.id", ids(27)),
    Case("object-equality", S + "WHERE e.data.shipping == {country: 'DE', express: true} "
         "MAP e.data.orderId", [7, 9]),
    Case("array-equality", S + "WHERE e.data.tags == ['vip'] MAP e.data.name", ["Zoë"]),
    Case("empty-array-equality", S + "WHERE e.data.items == [] MAP e.data.orderId", [1, 3, 4]),
    Case("unicode-compare", S + "WHERE e.data.city == 'München' MAP e.data.name", ["Zoë"]),
    Case("unicode-literal", S + "WHERE e.data.name == 'Zoë' MAP e.subject", ["/customers/9"]),
    Case("unicode-escapes", S + "WHERE e.data.text == 'na\\u00efve caf\\u00e9 \\u2615' "
         "MAP e.id", ids(22)),
    Case("double-quote-escape", ONE + 'MAP "say \\"hi\\""', ['say "hi"']),
    Case("doubled-quote", ONE + "MAP 'it''s'", ["it's"]),
    Case("other-escapes", ONE + "MAP 'a\\tb\\nc\\\\d\\'e'", ["a\tb\nc\\d'e"]),
    Case("empty-string", S + "WHERE e.data.text == '' MAP e.subject", ["/notes/3"]),
    # -- logic ---------------------------------------------------------------------------
    Case("and-or-parentheses", S + "WHERE e.type == 'order-placed' "
         "AND (e.data.currency == 'USD' OR e.data.amount < 50) MAP e.data.orderId",
         [1, 2, 3, 2, 4]),
    Case("and-binds-tighter", S + "WHERE e.type == 'order-shipped' OR "
         "e.type == 'order-returned' AND e.data.amount > 100 MAP e.id", ids(11, 12, 25)),
    Case("not-binds-to-comparison", S + "WHERE NOT e.type == 'note' "
         "AND e.source == 'urn:misc'", []),
    Case("double-not", S + "WHERE NOT NOT e.data.refund MAP e.id", ids(27)),
    Case("truthy-array", S + "WHERE e.data.tags MAP e.data.name", ["Alice", "Zoë", "Carol"]),
    Case("truthy-string-or-null", S + "WHERE e.data.lang MAP e.data.lang", ["ja", "fr", "en"]),
    Case("truthy-number", S + "WHERE e.data.amount AND e.type == 'order-placed' "
         "MAP e.data.orderId", [7, 8, 1, 2, 9, 2, 4]),
    Case("empty-string-is-false", S + "WHERE e.data.text MAP e.id", ids(21, 22, 23)),
    # -- IN, NOT IN, BETWEEN -------------------------------------------------------------
    Case("in-array", S + "WHERE e.type IN ['order-shipped', 'order-returned'] MAP e.id",
         ids(11, 12, 25, 29)),
    Case("in-parentheses", S + "WHERE e.type IN ('order-shipped', 'order-returned') MAP e.id",
         ids(11, 12, 25, 29)),
    Case("not-in", S + "WHERE e.type == 'order-placed' AND e.data.currency NOT IN ['EUR'] "
         "MAP e.data.orderId", [1, 2]),
    Case("in-mixed-types", S + "WHERE e.data.orderId IN [1, 2.0, '3'] MAP e.id", ids(8, 9, 20)),
    Case("in-field-array", S + "WHERE 'vip' IN e.data.tags MAP e.data.name", ["Alice", "Zoë"]),
    Case("between-numbers", S + "WHERE e.data.amount BETWEEN 45.25 AND 120 MAP e.data.amount",
         [120, 80.5, 45.25, 99.75]),
    Case("not-between-includes-missing", S + "WHERE e.data.amount NOT BETWEEN 0 AND 1000 "
         "MAP e.id", ids(1, 2, 3, 4, 5, 11, 12, 13, 14, 15, 16, 17, 18, 21, 22, 23, 24, 25,
                         26, 27, 28, 30)),
    Case("between-strings", S + "WHERE e.data.name BETWEEN 'B' AND 'D' MAP e.data.name",
         ["Bob", "Carol"]),
    Case("in-with-null", S + "WHERE e.data.tier IN [null, 'bronze'] "
         "AND e.source == 'https://crm.example' MAP e.id", ids(4, 5, 14)),
    Case("in-empty", S + "WHERE e.data.score IN [] MAP e.id", []),
    # -- UNDER and DESCENDANTS -----------------------------------------------------------
    Case("under", S + "WHERE e.subject UNDER '/customer' MAP e.id",
         ids(1, 2, 4, 5, 6, 7, 8, 10, 11, 12, 13, 14, 19, 20, 25, 26, 27, 29, 30)),
    Case("descendants", S + "WHERE e.subject DESCENDANTS '/customer' MAP e.id",
         ids(1, 2, 5, 6, 7, 8, 10, 11, 12, 13, 14, 19, 20, 25, 26, 27, 29, 30)),
    Case("under-segment-aware", S + "WHERE e.subject UNDER '/customer/42' MAP e.id",
         ids(1, 6, 7, 11, 13, 19, 25, 29)),
    Case("descendants-segment-aware", S + "WHERE e.subject DESCENDANTS '/customer/42' "
         "MAP e.subject", ["/customer/42/orders/7", "/customer/42/orders/8",
                           "/customer/42/orders/7", "/customer/42/orders/9",
                           "/customer/42/orders/9", "/customer/42/orders/7/returns/1"]),
    Case("under-plural", S + "WHERE e.subject UNDER '/customers' MAP e.id", ids(3, 9)),
    Case("subject-in", S + "WHERE e.subject IN ['/customers/9', '/customer/42/orders/9', "
         "'/nowhere'] MAP e.subject", ["/customers/9", "/customer/42/orders/9",
                                       "/customer/42/orders/9"]),
    Case("subject-in-empty", S + "WHERE e.subject IN [] MAP COUNT()", [0]),
    Case("under-root", S + "WHERE e.subject UNDER '/' MAP COUNT()", [30]),
    Case("descendants-root", S + "WHERE e.subject DESCENDANTS '/' MAP COUNT()", [29]),
    Case("under-deep", S + "WHERE e.subject UNDER '/customer/42/orders/7' MAP e.type",
         ["order-placed", "order-shipped", "order-returned"]),
    Case("under-trailing-slash", S + "WHERE e.subject UNDER '/customer/42/' MAP COUNT()", [8]),
    Case("not-under", S + "WHERE e.subject UNDER '/decisions' "
         "AND NOT (e.subject UNDER '/decisions/fraud') MAP e.data.outcome",
         ["approve", "reject", "approve", "approve"]),
    Case("under-on-data", S + "WHERE e.type == 'decision-made' "
         "AND e.data.customer UNDER '/customer/42' MAP e.id", ids(15)),
    Case("under-partial-segment", S + "WHERE e.subject UNDER '/customer/4' MAP COUNT()", [0]),
    Case("descendants-notes", S + "WHERE e.subject DESCENDANTS '/notes' MAP e.data.lang",
         ["ja", "fr", "en"]),
    # -- time ----------------------------------------------------------------------------
    Case("time-short-form", S + "WHERE e.time == '2026-01-02T00:00:00Z' MAP e.id", ids(4)),
    Case("time-nanos-form", S + "WHERE e.time == '2026-01-02T00:00:00.000000000Z' MAP e.id",
         ids(4)),
    Case("time-positive-offset", S + "WHERE e.time == '2026-01-02T02:00:00+02:00' MAP e.id",
         ids(4)),
    Case("time-negative-offset", S + "WHERE e.time == '2026-01-01T19:00:00-05:00' MAP e.id",
         ids(4)),
    Case("time-lowercase", S + "WHERE e.time == '2026-01-02t00:00:00z' MAP e.id", ids(4)),
    Case("time-at-or-after", S + "WHERE e.time >= '2026-01-09T00:00:00Z' MAP e.id",
         ids(22, 23, 24, 25, 26, 27, 28, 29, 30)),
    Case("time-after", S + "WHERE e.time > '2026-01-09T00:00:00Z' MAP e.id",
         ids(23, 24, 25, 26, 27, 28, 29, 30)),
    Case("time-nanosecond-bound", S + "WHERE e.time < '2026-01-01T12:00:00.000000001Z' "
         "MAP e.id", ids(1, 2, 3)),
    Case("time-between-inclusive", S + "WHERE e.time BETWEEN '2026-01-06T00:00:00Z' "
         "AND '2026-01-06T23:59:59.999999999Z' MAP e.id", ids(12, 13, 14)),
    Case("time-exact-nanos", S + "WHERE e.time == '2026-01-04T18:45:00.123456789Z' "
         "MAP e.data.orderId", [2]),
    Case("time-micros-differ", S + "WHERE e.time == '2026-01-04T18:45:00.123456Z' "
         "MAP COUNT()", [0]),
    Case("time-short-fraction", S + "WHERE e.time == '2026-01-02T10:15:30.5Z' "
         "MAP e.data.name", ["Carol"]),
    Case("time-in", S + "WHERE e.time IN ['2026-01-02T01:00:00+01:00', "
         "'2026-01-10T00:00:00Z'] MAP e.id", ids(4, 26)),
    Case("time-literal-on-left", S + "WHERE '2026-01-10T00:00:00+00:00' <= e.time MAP e.id",
         ids(26, 27, 28, 29, 30)),
    Case("time-non-timestamp-compares-as-string", S + "WHERE e.time < '2026-01-02' "
         "MAP COUNT()", [3]),
    Case("time-in-map", ONE + "MAP e.time == '2026-01-01T09:00:00+01:00'", [True]),
    Case("time-window", S + "WHERE e.time > '2026-01-08T00:00:00Z' "
         "AND e.time < '2026-01-09T00:00:00Z' MAP e.id", ids(19, 20, 21)),
    # -- arithmetic and strings ----------------------------------------------------------
    Case("multiply", S + "WHERE e.type == 'order-placed' MAP e.data.amount * 2",
         [240, 161.0, 600, 90.5, 0, 199.5, 2000, -30]),
    Case("divide", S + "WHERE e.type == 'order-placed' MAP e.data.amount / 2",
         [60, 40.25, 150, 22.625, 0, 49.875, 500, -7.5]),
    Case("modulo", S + "WHERE e.type == 'order-placed' MAP e.data.orderId % 4",
         [3, 0, 1, 2, 3, 1, 2, 0]),
    Case("modulo-signs", ONE + "MAP [-7 % 3, 7 % -3, 7.5 % 2]", [[-1, 1, 1.5]]),
    Case("division-by-zero", ONE + "MAP [1 / 0, 1 % 0, 0 / 0, 2.5 / 0.0]",
         [[None, None, None, None]]),
    Case("type-errors-are-null", ONE + "MAP ['a' * 2, true + 1, null + 1, -'x', [1] - 1]",
         [[None, None, None, None, None]]),
    Case("precedence", ONE + "MAP [2 + 3 * 4 - 10 / 5, (2 + 3) * 4, 2 - 3 - 4]",
         [[12, 20, -5]]),
    Case("unary-minus", S + "WHERE e.type == 'order-returned' "
         "MAP [-e.data.amount, - -3, -(1 + 2), +4]", [[-40, 3, -3, 4]]),
    Case("concatenation-null", S + "WHERE e.type == 'customer-added' "
         "MAP e.data.name + ' from ' + e.data.city",
         ["Alice from Berlin", "Bob from Hamburg", "Zoë from München", None,
          "Carol from Berlin", "Dave from Köln"]),
    Case("concatenation-numbers", S + "WHERE e.type == 'order-placed' "
         "MAP 'order #' + e.data.orderId + ': ' + e.data.amount",
         ["order #7: 120", "order #8: 80.5", "order #1: 300", "order #2: 45.25",
          "order #3: 0", "order #9: 99.75", "order #2: 1000", "order #4: -15"]),
    Case("concatenation-json", ONE + "MAP 'x' + true + [1, 'a'] + {k: null} + 2.0",
         ['xtrue[1,"a"]{"k":null}2.0']),
    Case("concatenation-left-to-right", ONE + "MAP [1 + 2 + 'a', 'a' + 1 + 2]",
         [["3a", "a12"]]),
    Case("overflow-is-null", ONE + "MAP [1e308 * 10, 9007199254740993 + 0]",
         [[None, 9007199254740993]]),
    # -- MAP shapes and literals ---------------------------------------------------------
    Case("object-keys", S + "WHERE e.type == 'order-returned' "
         "MAP {\"sub\": e.subject, amount: e.data.amount, 'the reason': e.data.reason}",
         [{"sub": "/customer/42/orders/7/returns/1", "amount": 40, "the reason": "damaged"}]),
    Case("nested-literals", S + f"WHERE e.id == '{event_id(6)}' "
         "MAP {order: {id: e.data.orderId, skus: [e.data.items[0].sku, e.data.items[1].sku]},"
         " flags: [e.data.shipping.express, null, false]}",
         [{"order": {"id": 7, "skus": ["A1", "B2"]}, "flags": [True, None, False]}]),
    Case("scalar-literal", S + "LIMIT 2 MAP 42", [42, 42]),
    Case("null-row", ONE + "MAP null", [None]),
    Case("boolean-rows", S + "LIMIT 4 MAP e.subject UNDER '/customer'",
         [True, True, False, True]),
    Case("keyword-keys", S + f"WHERE e.id == '{event_id(15)}' "
         "MAP {type: e.type, limit: e.data.limit, order: 1}",
         [{"type": "decision-made", "limit": 5000, "order": 1}]),
    Case("keyword-field-names", S + "WHERE e.data.limit > 1000 MAP e.data.limit",
         [5000, 2500, 1500]),
    Case("trailing-commas", ONE + "MAP [[1, 2,], {a: 1,}]", [[[1, 2], {"a": 1}]]),
    Case("float-literals", ONE + "MAP [1.5e3, 2.5E-1, 0.0]", [[1500.0, 0.25, 0.0]]),
    Case("empty-containers", ONE + "MAP [{}, []]", [[{}, []]]),
    # -- ORDER BY ------------------------------------------------------------------------
    Case("order-asc", S + "WHERE e.type == 'order-placed' ORDER BY e.data.amount "
         "MAP e.data.amount", [-15, 0, 45.25, 80.5, 99.75, 120, 300, 1000]),
    Case("order-desc", S + "WHERE e.type == 'order-placed' ORDER BY e.data.amount DESC "
         "MAP e.data.amount", [1000, 300, 120, 99.75, 80.5, 45.25, 0, -15]),
    Case("order-multi-key", S + "WHERE e.type == 'order-placed' "
         "ORDER BY e.data.currency ASC, e.data.amount DESC MAP e.data.orderId",
         [7, 9, 8, 2, 3, 4, 2, 1]),
    Case("order-limit", S + "WHERE e.type == 'order-placed' ORDER BY e.data.amount DESC "
         "LIMIT 3 MAP e.data.orderId", [2, 1, 7]),
    Case("order-nulls-first", S + "WHERE e.source == 'https://crm.example' "
         "ORDER BY e.data.tier MAP e.data.tier",
         [None, None, "bronze", "gold", "gold", "gold", "platinum", "silver", "silver"]),
    Case("order-desc-nulls-last", S + "WHERE e.type == 'decision-made' "
         "ORDER BY e.data.limit DESC MAP e.subject",
         ["/decisions/credit/1", "/decisions/credit/3", "/decisions/credit/4",
          "/decisions/credit/2", "/decisions/fraud/1"]),
    Case("order-desc-strings", S + "WHERE e.type == 'note' ORDER BY e.data.lang DESC "
         "MAP e.subject", ["/notes/1", "/notes/2", "/notes/3", "/"]),
    Case("order-null-false-true", S + "WHERE e.type == 'order-placed' "
         "ORDER BY e.data.shipping.express MAP e.data.orderId", [2, 3, 8, 1, 4, 7, 9, 2]),
    Case("order-stable-ties", S + "WHERE e.type == 'order-shipped' ORDER BY e.data.carrier "
         "MAP e.data.tracking", ["DHL-001", "DHL-002", "UPS-777"]),
    Case("order-time-desc", S + "ORDER BY e.time DESC LIMIT 2 MAP e.id", ids(30, 29)),
    Case("order-expression", S + "WHERE e.type == 'order-placed' "
         "ORDER BY e.data.amount * -1 LIMIT 2 MAP e.data.orderId", [2, 1]),
    Case("order-old-syntax", "FROM e IN events WHERE e.type == 'customer-added' "
         "ORDER BY e.data.age DESC TOP 2 PROJECT INTO e.data.name", ["Carol", "Bob"]),
    Case("order-unicode", S + "WHERE e.type == 'customer-added' ORDER BY e.data.city "
         "MAP e.data.city", [None, "Berlin", "Berlin", "Hamburg", "Köln", "München"]),
    Case("order-mixed-types", S + "WHERE e.subject UNDER '/customer/42/orders/7' "
         "ORDER BY e.data.shipping MAP e.id", ids(11, 29, 6)),
    # -- aggregates without GROUP BY -----------------------------------------------------
    Case("count", S + "MAP COUNT()", [30]),
    Case("sum", S + "WHERE e.type == 'order-placed' MAP SUM(e.data.amount)", [1630.5]),
    Case("count-empty", S + "WHERE e.type == 'nothing' MAP COUNT()", [0]),
    Case("count-equals-zero", S + "WHERE e.type == 'nothing' MAP COUNT() == 0", [True]),
    Case("sum-empty", S + "WHERE e.type == 'nothing' MAP SUM(e.data.amount)", [0]),
    Case("aggregates-empty", S + "WHERE e.type == 'nothing' MAP {n: COUNT(), "
         "s: SUM(e.data.amount), a: AVG(e.data.amount), lo: MIN(e.data.amount), "
         "hi: MAX(e.data.amount)}", [{"n": 0, "s": 0, "a": None, "lo": None, "hi": None}]),
    Case("sum-in-expression", S + "WHERE e.type == 'order-placed' "
         "MAP SUM(e.data.amount) + 500 <= 10000", [True]),
    Case("sum-compared", S + "WHERE e.type == 'order-placed' MAP SUM(e.data.amount) > 2000",
         [False]),
    Case("avg", S + "WHERE e.type == 'decision-made' MAP AVG(e.data.score)", [0.5625]),
    Case("min-max", S + "MAP {lo: MIN(e.data.amount), hi: MAX(e.data.amount)}",
         [{"lo": -15, "hi": 1000}]),
    Case("min-max-time", S + "MAP [MIN(e.time), MAX(e.time)]",
         [["2026-01-01T08:00:00.000000000Z", "2026-01-10T23:00:00.000000000Z"]]),
    Case("min-max-strings", S + "WHERE e.type == 'customer-added' "
         "MAP [MIN(e.data.name), MAX(e.data.name)]", [["Alice", "Zoë"]]),
    Case("count-values", S + "MAP COUNT(e.data.age)", [6]),
    Case("avg-exact-integer", S + "WHERE e.type == 'decision-made' MAP AVG(e.data.limit)",
         [2250]),
    Case("avg-float", S + "WHERE e.type == 'order-placed' MAP AVG(e.data.amount)", [203.8125]),
    Case("sum-skips-non-numbers", S + "MAP [SUM(e.data.name), SUM(e.data.age)]",
         [[0, 216.5]]),
    Case("aggregate-arithmetic", S + "WHERE e.type == 'order-placed' "
         "MAP MAX(e.data.amount) - MIN(e.data.amount)", [1015]),
    Case("count-divided", S + "MAP COUNT() / 4", [7.5]),
    Case("aggregate-limit-zero", S + "LIMIT 0 MAP COUNT()", []),
    Case("aggregate-order-by", S + "ORDER BY COUNT() DESC MAP COUNT()", [30]),
    Case("min-objects", S + "MAP MIN(e.data.shipping)", [{"country": "AT", "express": False}]),
    Case("max-arrays", S + "MAP MAX(e.data.tags)", [["vip", "early"]]),
    Case("aggregate-old-syntax", "FROM e IN events WHERE e.type == 'order-shipped' "
         "PROJECT INTO COUNT()", [3]),
    # -- GROUP BY ------------------------------------------------------------------------
    Case("group-count", S + "GROUP BY e.type MAP {type: e.type, n: COUNT()}",
         [{"type": "customer-added", "n": 6}, {"type": "order-placed", "n": 8},
          {"type": "order-shipped", "n": 3}, {"type": "customer-updated", "n": 3},
          {"type": "decision-made", "n": 5}, {"type": "note", "n": 4},
          {"type": "order-returned", "n": 1}]),
    Case("group-sum", S + "WHERE e.type == 'order-placed' GROUP BY e.data.currency "
         "MAP {currency: e.data.currency, total: SUM(e.data.amount), n: COUNT()}",
         [{"currency": "EUR", "total": 330.5, "n": 6},
          {"currency": "USD", "total": 1300, "n": 2}]),
    Case("having", S + "GROUP BY e.type HAVING COUNT() >= 5 MAP e.type",
         ["customer-added", "order-placed", "decision-made"]),
    Case("group-order-by-count", S + "GROUP BY e.source ORDER BY COUNT() DESC "
         "MAP {source: e.source, n: COUNT()}",
         [{"source": "https://shop.example", "n": 12}, {"source": "https://crm.example", "n": 9},
          {"source": "urn:agents", "n": 5}, {"source": "urn:misc", "n": 4}]),
    Case("group-without-map", S + "WHERE e.type == 'order-placed' "
         "GROUP BY e.data.shipping.country", ["DE", "AT", "US", None]),
    Case("group-null-key-ordered", S + "WHERE e.type == 'order-placed' "
         "GROUP BY e.data.shipping.country ORDER BY e.data.shipping.country "
         "MAP {c: e.data.shipping.country, n: COUNT()}",
         [{"c": None, "n": 2}, {"c": "AT", "n": 1}, {"c": "DE", "n": 3}, {"c": "US", "n": 2}]),
    Case("group-by-expression", S + "WHERE e.type == 'order-placed' "
         "GROUP BY e.data.amount >= 100 "
         "MAP {big: e.data.amount >= 100, n: COUNT(), total: SUM(e.data.amount)}",
         [{"big": True, "n": 3, "total": 1420}, {"big": False, "n": 5, "total": 210.5}]),
    Case("having-avg", S + "WHERE e.type == 'decision-made' GROUP BY e.data.agent "
         "HAVING AVG(e.data.score) > 0.5 "
         "MAP {agent: e.data.agent, n: COUNT(), total: SUM(e.data.score)}",
         [{"agent": "risk-bot", "n": 3, "total": 1.75}]),
    Case("group-limit", S + "GROUP BY e.type LIMIT 2 MAP e.type",
         ["customer-added", "order-placed"]),
    Case("group-order-by-key", S + "GROUP BY e.source ORDER BY e.source DESC MAP e.source",
         ["urn:misc", "urn:agents", "https://shop.example", "https://crm.example"]),
    Case("group-old-syntax", "FROM e IN events WHERE e.source == 'urn:agents' "
         "GROUP BY e.data.outcome PROJECT INTO {outcome: e.data.outcome, n: COUNT()}",
         [{"outcome": "approve", "n": 3}, {"outcome": "reject", "n": 1},
          {"outcome": "escalate", "n": 1}]),
    Case("having-key-and-aggregate", S + "GROUP BY e.source "
         "HAVING e.source != 'https://crm.example' AND COUNT() < 10 MAP e.source",
         ["urn:agents", "urn:misc"]),
    Case("group-numbers", S + "WHERE e.type == 'order-placed' GROUP BY e.data.orderId "
         "MAP {id: e.data.orderId, n: COUNT()}",
         [{"id": 7, "n": 1}, {"id": 8, "n": 1}, {"id": 1, "n": 1}, {"id": 2, "n": 2},
          {"id": 3, "n": 1}, {"id": 9, "n": 1}, {"id": 4, "n": 1}]),
    Case("group-key-in-expression", S + "WHERE e.type == 'order-placed' "
         "GROUP BY e.data.currency MAP e.data.currency + ':' + COUNT()", ["EUR:6", "USD:2"]),
    Case("group-empty", S + "WHERE e.type == 'nothing' GROUP BY e.type MAP COUNT()", []),
    Case("group-order-by-sum", S + "WHERE e.type == 'order-placed' GROUP BY e.data.currency "
         "ORDER BY SUM(e.data.amount) MAP e.data.currency", ["EUR", "USD"]),
    Case("group-null-and-missing", S + "WHERE e.source == 'https://crm.example' "
         "GROUP BY e.data.tier MAP {tier: e.data.tier, n: COUNT()}",
         [{"tier": "gold", "n": 3}, {"tier": "silver", "n": 2}, {"tier": None, "n": 2},
          {"tier": "bronze", "n": 1}, {"tier": "platinum", "n": 1}]),
    Case("group-max-per-group", S + "WHERE e.type == 'order-placed' GROUP BY e.data.currency "
         "ORDER BY MAX(e.data.amount) DESC "
         "MAP {c: e.data.currency, top: MAX(e.data.amount), low: MIN(e.data.amount)}",
         [{"c": "USD", "top": 1000, "low": 300}, {"c": "EUR", "top": 120, "low": -15}]),
]  # fmt: skip

# (query, expected evaluate_truthy result)
TRUTHY_CASES = [
    (S + "WHERE e.type == 'nothing'", False),
    (S + "WHERE e.type == 'note'", True),
    (S + "WHERE e.type == 'nothing' MAP COUNT() == 0", True),
    (S + "WHERE e.type == 'nothing' MAP COUNT()", False),
    (S + "WHERE e.type == 'order-placed' MAP SUM(e.data.amount) + 500 <= 10000", True),
    (S + "WHERE e.type == 'order-placed' MAP SUM(e.data.amount) > 10000", False),
    (S + "WHERE e.type == 'order-placed' MAP e.data.amount", True),
    (S + f"WHERE e.id == '{event_id(10)}' MAP e.data.amount", False),
    (S + "MAP {}", False),
    (S + "MAP {a: null}", True),
    (S + "MAP []", False),
    (S + "MAP ''", False),
    (S + "MAP 'x'", True),
    (S + "MAP null", False),
    (S + "WHERE e.subject UNDER '/customer/42' MAP e.data.tags", True),
    (S + "ORDER BY e.time DESC MAP e.data.tier == 'gold'", True),
]

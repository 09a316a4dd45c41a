"""The OpenAPI document types what each operation answers (the schema fuzz test checks the
answers against it)."""

from __future__ import annotations

from tests.service.inprocess import Service

UNTYPED = {
    ("GET", "/v1/decisions/stream"),  # Server-Sent Events, not JSON
    ("POST", "/v1/traces"),  # OTLP's own ExportTraceServiceResponse, protobuf or JSON
}


async def test_every_json_answer_has_a_named_schema(service: Service) -> None:
    document = (await service.client.get("/openapi.json")).json()
    untyped = []
    for path, operations in document["paths"].items():
        for method, operation in operations.items():
            if (method.upper(), path) in UNTYPED or path in ("/healthz", "/readyz"):
                continue
            status = "201" if "201" in operation["responses"] else "200"
            content = operation["responses"][status]["content"]["application/json"]
            if "$ref" not in content["schema"]:
                untyped.append(f"{method.upper()} {path}")
    assert untyped == []
    receipt = document["components"]["schemas"]["DecisionReceipt"]
    assert {"id", "hash", "signature", "log_index"} <= set(receipt["required"])

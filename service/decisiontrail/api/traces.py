"""``POST /v1/traces``: OTLP/HTTP, so an OpenTelemetry Collector or any SDK's OTLP exporter can
send GenAI spans straight to the trail (API key as bearer or ``x-api-key``, like every route)."""

from __future__ import annotations

from fastapi import APIRouter, Request, Response

from decisiontrail import otlp
from decisiontrail.deps import IngestKey, StateDep

router = APIRouter(tags=["otlp"])


@router.post(
    "/v1/traces",
    response_class=Response,
    responses={200: {"content": {otlp.PROTOBUF: {}, otlp.JSON: {}},
                     "description": "ExportTraceServiceResponse (partial success)"}},
)  # fmt: skip
async def export_traces(request: Request, key: IngestKey, state: StateDep) -> Response:
    """An OTLP ``ExportTraceServiceRequest``: its GenAI spans (OpenTelemetry GenAI conventions
    or OpenInference) are recorded as decisions, other spans ignored; spans that are not valid
    decisions are reported as OTLP partial success."""
    media_type = otlp.media_type_of(request.headers.get("content-type"))
    body = otlp.decompress(
        await request.body(), request.headers.get("content-encoding"),
        state.settings.max_body_bytes,
    )  # fmt: skip
    result = await otlp.ingest_traces(
        ledger=state.ledger, metrics=state.metrics, tenant=key.tenant,
        request=otlp.decode(body, media_type), max_batch=state.settings.max_batch_size,
    )  # fmt: skip
    return Response(result.response(media_type), media_type=media_type)

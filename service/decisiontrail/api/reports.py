"""Compliance reports as JSON, CSV or HTML, signed."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Annotated, Literal

from fastapi import APIRouter, Query, Response
from fastapi.responses import JSONResponse

from decisiontrail import compliance, reports
from decisiontrail.api.schemas import SignedReport
from decisiontrail.deps import AuditKey, StateDep
from decisiontrail.errors import Unprocessable
from decisiontrail.report_model import ComplianceReport
from decisiontrail.signing import Keyring

router = APIRouter(prefix="/v1/reports", tags=["reports"])
_RENDERED = {"schema": {"type": "string"}}


@router.get(
    "/compliance",
    response_model=None,
    responses={
        200: {
            "model": SignedReport,
            "content": {"text/csv": _RENDERED, "text/html": _RENDERED},
        }
    },
)
async def compliance_report(
    key: AuditKey,
    state: StateDep,
    from_: Annotated[datetime | None, Query(alias="from")] = None,
    to: datetime | None = None,
    agent: Annotated[str | None, Query(max_length=200)] = None,
    format: Literal["json", "csv", "html"] = "json",
) -> Response:
    """What the AI decided in a period, who reviewed it, and the proof nothing changed since."""
    period_to = to or datetime.now(UTC) + timedelta(seconds=1)
    period_from = from_ or period_to - timedelta(days=30)
    if period_from.tzinfo is None or period_to.tzinfo is None:
        raise Unprocessable("from and to need a time zone (for example a trailing Z)")
    if period_from >= period_to:
        raise Unprocessable("from must be before to")
    report = await compliance.build_report(
        ledger=state.ledger, keyring=state.keyring, tenant=key.tenant, period_from=period_from,
        period_to=period_to, agent=agent, retention_days=state.settings.retention_days,
    )  # fmt: skip
    return signed_report_response(report, state.keyring, format)


def signed_report_response(
    report: ComplianceReport, keyring: Keyring, format: str, *, download: bool = False
) -> Response:
    """The signed report as JSON (``{"report", "signature"}``), CSV or HTML; the CSV and HTML
    carry the signature of the JSON form in ``X-Report-*`` headers. For the API and the
    console's downloads."""
    body = reports.render_json(report)
    signature = compliance.sign_report(body, keyring)
    headers = {
        "X-Report-Sha256": signature["sha256"],
        "X-Report-Key-Id": signature["key_id"],
        "X-Report-Signature": signature["signature"],
    }
    if download or format == "csv":
        headers["Content-Disposition"] = f'attachment; filename="compliance.{format}"'
    if format == "json":
        return JSONResponse({"report": body, "signature": signature}, headers=headers)
    if format == "csv":
        text = "\ufeff" + reports.render_csv(report)
        return Response(text, media_type="text/csv; charset=utf-8", headers=headers)
    headers["Content-Security-Policy"] = reports.HTML_POLICY
    return Response(reports.render_html(report), media_type="text/html; charset=utf-8",
                    headers=headers)  # fmt: skip

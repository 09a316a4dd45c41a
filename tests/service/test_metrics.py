"""/metrics: behind a metrics key, HTTP metrics by route template and status, no tenant names,
no raw paths, no ``_created`` series."""

from __future__ import annotations

from decisiontrail.apikeys import Scope
from tests.service.inprocess import Service


async def test_metrics_need_a_metrics_key(service: Service) -> None:
    assert (await service.client.get("/metrics")).status_code == 401
    reader = await service.key("acme", Scope.READ)
    assert (await service.client.get("/metrics", headers=reader)).status_code == 403
    scraper = await service.key("acme", Scope.METRICS)
    response = await service.client.get("/metrics", headers=scraper)
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain")


async def test_http_requests_are_counted_by_route_template_and_status(service: Service) -> None:
    headers = await service.key("secret-tenant-name")
    receipt = await service.record(headers)
    await service.client.get(f"/v1/decisions/{receipt['id']}", headers=headers)
    await service.client.get("/v1/decisions/no-such-id", headers=headers)
    await service.client.delete("/v1/data-subjects/customer-17", headers=headers)
    await service.client.get("/no/such/path/customer-17")
    scraper = await service.key("ops", Scope.METRICS)
    text = (await service.client.get("/metrics", headers=scraper)).text
    ok = 'handler="/v1/decisions/{decision_id}",method="GET",status="200"'
    missing = 'handler="/v1/decisions/{decision_id}",method="GET",status="404"'
    assert f"decisiontrail_http_requests_total{{{ok}}} 1.0" in text
    assert f"decisiontrail_http_requests_total{{{missing}}} 1.0" in text
    assert 'decisiontrail_http_request_duration_seconds_bucket{handler="/v1/decisions"' in text
    assert 'handler="/v1/data-subjects/{subject_id}"' in text
    assert 'handler="none"' in text  # an unknown path, not its text
    assert "customer-17" not in text and receipt["id"] not in text
    assert "secret-tenant-name" not in text
    assert "_created" not in text

"""The console over HTTP, in process: sessions, CSRF, tenant and scope enforcement, escaping,
security headers and the offline API docs. (The browser tests are in test_console_browser.py.)"""

from __future__ import annotations

import asyncio
import html
import json
import re

import httpx

from decisiontrail.apikeys import Scope
from tests.service.inprocess import Service


async def signed_in(service: Service, tenant: str, *scopes: Scope) -> httpx.AsyncClient:
    """A client of its own (its own cookie jar) signed in with a new key."""
    text, _ = await service.state.keys.create(tenant=tenant, scopes=frozenset(scopes))
    client = httpx.AsyncClient(transport=service.client._transport, base_url="http://dt.test")
    response = await client.post("/console/sign-in", data={"api_key": text})
    assert response.status_code == 303, response.text
    assert response.headers["location"] == "/console"
    return client


def csrf_of(page: str) -> str:
    match = re.search(r'name="csrf" value="([^"]+)"', page)
    assert match is not None
    return match.group(1)


async def test_the_session_cookie_is_http_only_strict_and_not_the_key(service: Service) -> None:
    text, _ = await service.state.keys.create(tenant="acme", scopes=frozenset({Scope.READ}))
    response = await service.client.post("/console/sign-in", data={"api_key": text})
    cookie = response.headers["set-cookie"]
    assert "HttpOnly" in cookie and "SameSite=strict" in cookie and "Path=/console" in cookie
    assert "Max-Age=900" in cookie
    assert text not in cookie


async def test_pages_need_a_session(service: Service) -> None:
    for path in ("/console", "/console/decisions", "/console/integrity", "/console/compliance"):
        response = await service.client.get(path)
        assert response.status_code == 303
        assert response.headers["location"] == "/console/sign-in"


async def test_a_sign_in_from_another_site_is_refused(service: Service) -> None:
    text, _ = await service.state.keys.create(tenant="acme", scopes=frozenset({Scope.READ}))
    response = await service.client.post(
        "/console/sign-in", data={"api_key": text}, headers={"Origin": "https://evil.example"}
    )
    assert response.status_code == 403
    assert "set-cookie" not in response.headers


async def test_another_tenants_decision_is_not_found(service: Service) -> None:
    other = await service.record(await service.key("other"))
    client = await signed_in(service, "acme", Scope.READ)
    response = await client.get(f"/console/decisions/{other['id']}")
    assert response.status_code == 404
    assert "support-bot" not in response.text


async def test_a_revoked_key_ends_its_sessions(service: Service) -> None:
    text, key = await service.state.keys.create(tenant="acme", scopes=frozenset({Scope.READ}))
    client = httpx.AsyncClient(transport=service.client._transport, base_url="http://dt.test")
    await client.post("/console/sign-in", data={"api_key": text})
    assert (await client.get("/console")).status_code == 200
    await service.state.keys.revoke(key.key_id)
    response = await client.get("/console")
    assert response.status_code == 303


async def test_forms_without_the_csrf_token_change_nothing(service: Service) -> None:
    client = await signed_in(service, "acme", Scope.READ, Scope.AUDIT)
    refused = await client.post("/console/integrity/verify", data={"csrf": "forged"})
    assert refused.status_code == 403
    assert "verification-result" not in refused.text
    page = await client.get("/console/integrity")
    started = await client.post("/console/integrity/verify", data={"csrf": csrf_of(page.text)})
    assert started.status_code == 303 and started.headers["location"] == "/console/integrity"
    assert "The whole trail verifies" in await finished_verification(client)


async def finished_verification(client: httpx.AsyncClient) -> str:
    """The integrity page once the background verification is done (it runs on this loop)."""
    for _ in range(200):
        page = await client.get("/console/integrity")
        if 'id="verify-running"' not in page.text:
            return page.text
        await asyncio.sleep(0.05)
    raise AssertionError("the verification did not finish")


async def test_a_verification_reports_its_progress(service: Service) -> None:
    headers = await service.key("acme")
    for i in range(3):
        await service.record(headers, action=f"a{i}")
    client = await signed_in(service, "acme", Scope.READ, Scope.AUDIT)
    page = await client.get("/console/integrity")
    await client.post("/console/integrity/verify", data={"csrf": csrf_of(page.text)})
    await finished_verification(client)
    progress = (await client.get("/console/integrity/progress")).json()
    assert progress == {"running": False, "checked": 3, "total": 3}


async def test_scopes_hold_as_on_the_api(service: Service) -> None:
    client = await signed_in(service, "acme", Scope.INGEST)
    assert (await client.get("/console/decisions")).status_code == 403
    reader = await signed_in(service, "acme", Scope.READ)
    assert (await reader.get("/console/compliance")).status_code == 403
    page = await reader.get("/console/integrity")
    verify = await reader.post("/console/integrity/verify", data={"csrf": csrf_of(page.text)})
    assert verify.status_code == 403


async def test_client_strings_are_escaped(service: Service) -> None:
    headers = await service.key("acme")
    receipt = await service.record(headers, agent="<script>alert(1)</script>", action="a&b")
    client = await signed_in(service, "acme", Scope.READ)
    page = (await client.get(f"/console/decisions/{receipt['id']}")).text
    assert "<script>alert(1)</script>" not in page
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page


async def test_a_subject_search_keeps_the_subject_out_of_urls(service: Service) -> None:
    headers = await service.key("acme")
    await service.record(headers, data_subjects=["customer-99"], action="match")
    await service.record(headers, data_subjects=["customer-1"], action="other")
    client = await signed_in(service, "acme", Scope.READ)
    page = await client.get("/console/decisions")
    found = await client.post(
        "/console/decisions", data={"csrf": csrf_of(page.text), "subject": "customer-99"}
    )
    assert found.status_code == 200
    rows = re.findall(r"<tr>\s*<td><a href=\"/console/decisions/", found.text)
    assert len(rows) == 1 and "match" in found.text
    assert "customer-99" not in str(found.url)


async def test_html_responses_carry_nosniff_and_a_content_security_policy(
    service: Service,
) -> None:
    page = await service.client.get("/console/sign-in")
    assert page.headers["x-content-type-options"] == "nosniff"
    assert "script-src 'self'" in page.headers["content-security-policy"]
    headers = await service.key("acme")
    report = await service.client.get("/v1/reports/compliance?format=html", headers=headers)
    assert (
        report.headers["content-security-policy"] == "default-src 'none'; style-src 'unsafe-inline'"
    )
    assert report.headers["x-content-type-options"] == "nosniff"
    api = await service.client.get("/healthz")
    assert api.headers["x-content-type-options"] == "nosniff"


async def test_the_api_docs_load_nothing_from_elsewhere(service: Service) -> None:
    for path in ("/docs", "/redoc"):
        page = (await service.client.get(path)).text
        sources = re.findall(r'(?:src|href)="([^"]+)"', page)
        assert sources, page
        for source in sources:
            assert source.startswith("/"), source
            if source != "/openapi.json":
                assert (await service.client.get(source)).status_code == 200, source


async def test_console_assets_ship_in_the_package(service: Service) -> None:
    client = await signed_in(service, "acme", Scope.READ)
    page = (await client.get("/console")).text
    for source in re.findall(r'(?:src|href)="(/console/static/[^"]+)"', page):
        assert (await client.get(source)).status_code == 200
    assert "http://" not in page and "https://" not in page


async def test_verify_needs_no_body_and_no_content_type(service: Service) -> None:
    headers = await service.key("acme")
    await service.record(headers)
    for content in (None, b"", b"{}"):
        response = await service.client.post("/v1/verify", content=content, headers=headers)
        assert response.status_code == 200, response.text
        assert response.json()["ok"] is True
    form = {**headers, "Content-Type": "application/x-www-form-urlencoded"}  # curl -d '{}'
    assert (await service.client.post("/v1/verify", content=b"{}", headers=form)).json()["ok"]
    bad = await service.client.post("/v1/verify", content=b"[1]", headers=headers)
    assert bad.status_code == 422
    assert (await service.client.post("/v1/verify", content=b"[1]")).status_code == 401


async def test_personal_true_without_read_personal_is_refused(service: Service) -> None:
    receipt = await service.record(await service.key("acme"))
    reader = await service.key("acme", Scope.READ)
    for path in ("", "/provenance"):
        url = f"/v1/decisions/{receipt['id']}{path}"
        refused = await service.client.get(f"{url}?personal=true", headers=reader)
        assert refused.status_code == 403 and "read-personal" in refused.json()["detail"]
        assert (await service.client.get(url, headers=reader)).status_code == 200


async def test_erasing_an_unknown_subject_is_no_erasure(service: Service) -> None:
    headers = await service.key("acme")
    await service.record(headers)
    response = await service.client.delete("/v1/data-subjects/nobody-we-know", headers=headers)
    assert response.status_code == 404
    assert "nobody-we-know" not in response.text
    report = (await service.client.get("/v1/reports/compliance", headers=headers)).json()
    assert report["report"]["erasures"] == []
    assert report["report"]["extra"]["log_size"] == 1  # no erasure record was written
    erased = await service.client.delete("/v1/data-subjects/customer-17", headers=headers)
    assert erased.status_code == 200
    report = (await service.client.get("/v1/reports/compliance", headers=headers)).json()
    assert len(report["report"]["erasures"]) == 1


async def test_overview_and_compliance_show_chain_heads_and_legal_holds(service: Service) -> None:
    headers = await service.key("acme")
    for action in ("first", "second"):
        last = await service.record(headers, action=action)
    await service.client.put("/v1/data-subjects/person-5/legal-hold", headers=headers)
    auditor = await signed_in(service, "acme", Scope.READ, Scope.AUDIT, Scope.ERASE)
    overview = (await auditor.get("/console")).text
    assert last["hash"][:24] in overview  # the support-bot chain's head
    assert re.search(r'<strong id="hold-count">1</strong>', overview)
    compliance = (await auditor.get("/console/compliance")).text
    assert "No legal hold is in force" not in compliance and "person-5" not in compliance
    reader = await signed_in(service, "acme", Scope.READ, Scope.AUDIT)
    assert (
        "needs a key with the <code>erase</code> scope"
        in (await reader.get("/console/compliance")).text
    )


async def test_sign_out_ends_the_session(service: Service) -> None:
    client = await signed_in(service, "acme", Scope.READ)
    page = await client.get("/console")
    assert (await client.post("/console/sign-out", data={"csrf": "forged"})).status_code == 403
    assert (await client.get("/console")).status_code == 200
    out = await client.post("/console/sign-out", data={"csrf": csrf_of(page.text)})
    assert out.status_code == 303
    assert (await client.get("/console")).status_code == 303


async def test_every_form_field_has_a_label(service: Service) -> None:
    headers = await service.key("acme")
    receipt = await service.record(headers)
    client = await signed_in(service, "acme", Scope.READ, Scope.AUDIT, Scope.ERASE)
    paths = ["/console", "/console/decisions", "/console/integrity", "/console/compliance",
             f"/console/decisions/{receipt['id']}"]  # fmt: skip
    pages = [(await client.get(path)).text for path in paths]
    pages.append((await service.client.get("/console/sign-in")).text)
    for page in pages:
        assert '<html lang="en">' in page and '<main id="main"' in page
        labelled = set(re.findall(r'<label for="([^"]+)"', page))
        for field in re.findall(r"<(?:input|select)\b[^>]*>", page):
            if 'type="hidden"' in field:
                continue
            match = re.search(r'id="([^"]+)"', field)
            assert match is not None and match.group(1) in labelled, field


async def test_a_filter_value_cannot_break_out_of_an_attribute(service: Service) -> None:
    client = await signed_in(service, "acme", Scope.READ)
    hostile = 'x" autofocus onfocus="alert(1)\' <b>'
    page = (await client.get("/console/decisions", params={"agent": hostile})).text
    script = re.search(r"<script src=\"/console/static/live.js\" data-filters='([^']*)'", page)
    assert script is not None
    assert json.loads(html.unescape(script.group(1))) == {"agent": hostile}
    assert 'onfocus="alert' not in page and "<b>" not in page


async def test_the_overview_counts_decisions_per_day(service: Service) -> None:
    headers = await service.key("acme")
    receipts = [await service.record(headers, action=f"a{i}") for i in range(3)]
    await service.client.delete("/v1/data-subjects/customer-17", headers=headers)  # not counted
    client = await signed_in(service, "acme", Scope.READ)
    page = (await client.get("/console")).text
    days = [receipt["recorded_at"][:10] for receipt in receipts]
    for day in set(days):  # one day, unless the test ran across midnight UTC
        count = days.count(day)
        assert re.search(rf'<time datetime="{day}">{day}</time></td><td>{count}</td>', page)
    assert page.count("<meter") == 14

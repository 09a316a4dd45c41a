"""The auditor console in a real browser: Debian's Chromium driven by Playwright, against a real
server process. Each test screenshots its page into a scratch folder; with
``DECISIONTRAIL_SCREENSHOT_DIR=docs/screenshots`` they refresh the ones the README shows."""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from playwright.sync_api import Browser, Page, sync_playwright
from playwright.sync_api import TimeoutError as PlaywrightTimeout

from tests.service import rawdb
from tests.service.server_process import ServerProcess, make_server

CHROMIUM = Path("/usr/bin/chromium")
ROOT = Path(__file__).resolve().parents[2]
CHROMIUM_ARGS = [
    "--no-sandbox", "--disable-gpu", "--disable-background-networking",
    "--disable-component-update", "--disable-sync", "--no-first-run",
]  # fmt: skip

if not CHROMIUM.exists():  # CI installs Debian's chromium (.ci/run); it must not skip there
    if os.environ.get("CI"):
        raise RuntimeError("CI needs /usr/bin/chromium (apt-get install chromium)")
    pytest.skip("no /usr/bin/chromium (apt-get install chromium)", allow_module_level=True)

pytestmark = pytest.mark.slow


def decisions() -> list[dict[str, Any]]:
    planner = {"agent": "support-bot", "action": "plan", "kind": "agent_action", "run_id": "r1",
               "session_id": "s1", "model": {"provider": "openai", "name": "gpt-4o"}}  # fmt: skip
    return [
        planner,
        {"agent": "support-bot", "action": "refund", "kind": "llm_call", "run_id": "r1",
         "session_id": "s1", "model": {"provider": "openai", "name": "gpt-4o"},
         "input": {"message": "Refund order 42 for Alice"}, "output": "approved",
         "confidence": 0.93, "data_subjects": ["customer-17"], "personal": ["input"]},
        {"agent": "support-bot", "action": "lookup_order", "kind": "tool_call",
         "run_id": "r2", "parent_run_id": "r1", "session_id": "s1"},
        {"agent": "reviewer", "action": "approve", "kind": "human_review", "run_id": "r1",
         "session_id": "s1", "oversight": {"reviewer": "ops-1", "overridden": False}},
        {"agent": "triage-bot", "action": "route", "kind": "llm_call", "tags": ["email"],
         "model": {"provider": "anthropic", "name": "claude-sonnet"}, "confidence": 0.71},
    ]  # fmt: skip


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    process = make_server(tmp_path_factory.mktemp("console"))
    process.start()
    yield process
    process.stop()


def create_key(server: ServerProcess, *scopes: str, tenant: str = "default") -> str:
    args = ["keys", "create", "--tenant", tenant]
    for scope in scopes:
        args += ["--scope", scope]
    return next(line for line in server.cli(*args).splitlines() if line.startswith("dtk_"))


@pytest.fixture(scope="module")
def auditor_key(server: ServerProcess) -> str:
    ingest = create_key(server, "ingest", "read")
    headers = {"Authorization": f"Bearer {ingest}"}
    with httpx.Client(base_url=server.url, headers=headers, timeout=30) as client:
        for decision in decisions():
            assert client.post("/v1/decisions", json=decision).status_code == 201
        batch = [{"agent": "triage-bot", "action": f"route-{i}", "kind": "llm_call"}
                 for i in range(30)]  # fmt: skip
        assert client.post("/v1/decisions/batch", json=batch).status_code == 201
    return create_key(server, "read", "audit")


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    with sync_playwright() as driver:
        launched = driver.chromium.launch(
            executable_path=str(CHROMIUM), headless=True, args=CHROMIUM_ARGS
        )
        yield launched
        launched.close()


@pytest.fixture
def page(browser: Browser, server: ServerProcess) -> Iterator[Page]:
    context = browser.new_context(
        base_url=server.url, viewport={"width": 1280, "height": 900}, accept_downloads=True
    )
    opened = context.new_page()
    loaded: list[str] = []
    blocked: list[tuple[str, str | None]] = []
    opened.on("requestfinished", lambda request: loaded.append(request.url))
    opened.on("requestfailed", lambda request: blocked.append((request.url, request.failure)))
    yield opened
    context.close()
    local = (server.url, f"blob:{server.url}", "data:")
    outside = [url for url in loaded if not url.startswith(local)]
    assert outside == [], f"the page loaded something from elsewhere: {outside}"
    # ReDoc's footer asks for its logo from its CDN: the Content-Security-Policy stops it.
    tried = [(url, why) for url, why in blocked if not url.startswith(local)]
    assert all(why == "csp" for _, why in tried), tried


def sign_in(page: Page, key: str) -> None:
    page.goto("/console")
    assert page.url.endswith("/console/sign-in")
    page.get_by_label("API key").fill(key)
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_url("**/console")


@pytest.fixture(scope="module")
def screenshots(tmp_path_factory: pytest.TempPathFactory) -> Path:
    chosen = os.environ.get("DECISIONTRAIL_SCREENSHOT_DIR")
    folder = ROOT / chosen if chosen else tmp_path_factory.mktemp("screenshots")
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def shoot(page: Page, folder: Path, name: str) -> None:
    path = folder / f"{name}.png"
    page.screenshot(path=str(path), full_page=False)
    assert path.read_bytes().startswith(b"\x89PNG")


def test_sign_in_sets_a_strict_http_only_session_cookie(
    page: Page, auditor_key: str, screenshots: Path
) -> None:
    sign_in(page, auditor_key)
    cookies = page.context.cookies()
    (cookie,) = [c for c in cookies if c["name"] == "dt_console"]
    assert cookie["httpOnly"] is True
    assert cookie["sameSite"] == "Strict"
    assert auditor_key not in cookie["value"]
    assert page.get_by_role("heading", name="Overview").is_visible()
    assert "support-bot" in page.content()
    shoot(page, screenshots, "console-overview")


def test_a_wrong_key_is_refused(page: Page) -> None:
    page.goto("/console/sign-in")
    page.get_by_label("API key").fill("dtk_0123456789abcdef_nope")
    page.get_by_role("button", name="Sign in").click()
    alert = page.get_by_role("alert")
    assert "unknown, revoked or expired" in alert.inner_text()
    assert page.context.cookies() == []


def test_search_and_open_a_decision_whose_proof_verifies_in_the_browser(
    page: Page, auditor_key: str, screenshots: Path
) -> None:
    sign_in(page, auditor_key)
    page.get_by_role("navigation").get_by_role("link", name="Decisions").click()
    page.get_by_label("Agent").fill("support-bot")
    page.get_by_label("Kind").select_option("llm_call")
    with page.expect_navigation():
        page.get_by_role("button", name="Search").click()
    rows = page.locator("#decision-rows tr")
    assert rows.count() == 1
    assert "refund" in rows.first.inner_text()
    assert "customer-17" not in page.url
    shoot(page, screenshots, "console-decisions")
    rows.first.get_by_role("link").click()
    result = page.locator("#proof-result")
    result.and_(page.locator("[data-state=ok]")).wait_for(timeout=15_000)
    assert "Verified in your browser" in result.inner_text()
    steps = page.locator("#proof-steps li").all_inner_texts()
    assert len(steps) == 4 and all(step.startswith("✓") for step in steps)
    text = page.content()
    assert "Alice" not in text and "customer-17" not in text  # personal values stay committed
    assert "lookup_order" in text  # the child run in the run tree
    assert "approve" in text  # the human review
    shoot(page, screenshots, "console-decision")


def test_paging_goes_to_older_decisions(page: Page, auditor_key: str) -> None:
    sign_in(page, auditor_key)
    page.goto("/console/decisions")
    first = page.locator("#decision-rows tr").all_inner_texts()
    assert len(first) == 25
    with page.expect_navigation():
        page.get_by_role("button", name="Older decisions").click()
    second = page.locator("#decision-rows tr").all_inner_texts()
    assert len(second) == 35 - 25
    assert not set(first) & set(second)


def test_a_verification_runs_from_the_integrity_page(
    page: Page, auditor_key: str, screenshots: Path
) -> None:
    sign_in(page, auditor_key)
    page.get_by_role("navigation").get_by_role("link", name="Integrity").click()
    with page.expect_navigation():
        page.get_by_role("button", name="Run a verification").click()
    result = page.locator("#verification-result")
    assert "The whole trail verifies" in result.inner_text()
    page.get_by_label("From size").fill("3")
    page.get_by_role("button", name="Check consistency").click()
    assert "extends the tree at size 3" in page.locator("#consistency-result").inner_text()
    shoot(page, screenshots, "console-integrity")


def test_the_compliance_report_is_shown_and_downloads(
    page: Page, auditor_key: str, screenshots: Path
) -> None:
    sign_in(page, auditor_key)
    page.get_by_role("navigation").get_by_role("link", name="Compliance").click()
    assert page.locator("#report-total").inner_text() == "35"
    shoot(page, screenshots, "console-compliance")
    with page.expect_download() as info:
        page.locator("#download-json").click()
    download = info.value
    body = json.loads(Path(download.path()).read_text())
    assert body["report"]["total_decisions"] == 35
    assert body["signature"]["sha256"]
    with page.expect_download() as info:
        page.locator("#download-csv").click()
    assert "total_decisions" in Path(info.value.path()).read_text(encoding="utf-8-sig")


def test_new_decisions_arrive_live(page: Page, server: ServerProcess) -> None:
    """In a tenant of its own, so the other tests' counts hold in any order."""
    sign_in(page, create_key(server, "read", tenant="live"))
    page.goto("/console/decisions")
    assert page.locator("#decision-rows tr.empty").count() == 1  # nothing yet
    ingest = create_key(server, "ingest", tenant="live")
    decision = {"agent": "live-bot", "action": "arrived", "kind": "llm_call"}
    headers = {"Authorization": f"Bearer {ingest}"}
    # The stream starts when the page has opened it; a decision is recorded until one shows.
    new_rows = page.locator("#decision-rows tr.new")
    for _ in range(20):
        assert httpx.post(f"{server.url}/v1/decisions", json=decision, headers=headers).is_success
        try:
            new_rows.first.wait_for(timeout=1_000)
            break
        except PlaywrightTimeout:
            continue
    assert "arrived" in new_rows.first.inner_text()
    assert "new decision" in page.locator("#live-status").inner_text()
    assert page.locator("#decision-rows tr.empty").count() == 0


def test_pages_read_with_javascript_off(
    browser: Browser, server: ServerProcess, auditor_key: str
) -> None:
    context = browser.new_context(base_url=server.url, java_script_enabled=False)
    page = context.new_page()
    sign_in(page, auditor_key)
    page.goto("/console/decisions")
    link = page.locator("#decision-rows tr a").first
    link.click()
    assert "needs JavaScript" in page.locator("#proof-result").inner_text()
    assert '"hash"' in page.locator("pre.record").inner_text()
    context.close()


def test_the_api_docs_render_from_the_package(page: Page) -> None:
    """Swagger UI and ReDoc draw the document with nothing fetched from elsewhere (the page
    fixture fails the test on any outside request)."""
    page.goto("/docs")
    page.locator(".swagger-ui .info .title").wait_for(timeout=30_000)
    assert "DecisionTrail" in page.locator(".swagger-ui .info .title").inner_text()
    assert page.locator(".opblock").count() > 10
    page.goto("/redoc")
    page.get_by_text("/v1/trust-root").first.wait_for(state="attached", timeout=30_000)


def test_a_read_key_cannot_run_a_verification(
    page: Page, server: ServerProcess, auditor_key: str
) -> None:
    sign_in(page, create_key(server, "read"))
    page.goto("/console/integrity")
    assert page.get_by_role("button", name="Run a verification").count() == 0
    response = page.goto("/console/compliance")
    assert response is not None and response.status == 403


def test_a_tampered_record_fails_the_browser_check(
    browser: Browser, tmp_path: Path, screenshots: Path
) -> None:
    """A decision changed in the database file, as someone with file access would."""
    server = make_server(tmp_path)
    server.start()
    try:
        ingest = create_key(server, "ingest", "read")
        with httpx.Client(base_url=server.url, timeout=30) as client:
            client.headers["Authorization"] = f"Bearer {ingest}"
            ids = [client.post("/v1/decisions", json=d).json()["id"] for d in decisions()]
            client.get("/v1/checkpoints/latest").raise_for_status()
        key = create_key(server, "read", "audit")
    finally:
        server.stop()
    with rawdb.connect(rawdb.genesis_file(server.data_dir)) as conn:
        for position, stored in rawdb.decision_rows(conn):
            if stored["data"]["record"]["id"] == ids[1]:
                stored["data"]["record"]["decision"]["output"] = "denied"
                rawdb.write_payload(conn, position, stored)
    server.start()
    try:
        context = browser.new_context(base_url=server.url)
        page = context.new_page()
        sign_in(page, key)
        page.goto(f"/console/decisions/{ids[1]}")
        result = page.locator("#proof-result")
        result.and_(page.locator("[data-state=failed]")).wait_for(timeout=15_000)
        assert "does not match its hash" in result.inner_text()
        shoot(page, screenshots, "console-tampered")
        page.goto(f"/console/decisions/{ids[0]}")
        page.locator("#proof-result[data-state=ok]").wait_for(timeout=15_000)
        context.close()
    finally:
        server.stop()

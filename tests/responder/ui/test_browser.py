"""The console in a real browser: Debian's chromium, headless, driven by Playwright for Python (its own
browser download is not used). An approver approves a pending scale_instance and moto's instance goes one
class up; a viewer sees no buttons and a forged POST is refused; the report page renders every section with
its charts (a screenshot is saved in the test's temporary directory)."""

from __future__ import annotations

import shutil
import time
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient
from playwright.async_api import Browser, BrowserContext, Page, async_playwright

from devtools.motoserver import MotoServer
from responder.app import make_app
from responder.config import Config
from tests.responder.playbooks.rds import describe_instance, rds_config
from tests.responder.report.scenario import ReportScenario, report_scenario
from tests.responder.ui.console import ALICE, VICTOR, people
from tests.support.responder import TOKEN, ConfigFactory
from tests.support.services import missing_service
from tests.support.webhook import alert, post_alerts, wait_done

__all__ = ["report_scenario"]

CHROMIUM = "/usr/bin/chromium"
Client = TestClient[web.Request, web.Application]


@pytest.fixture
async def browser() -> AsyncIterator[Browser]:
    if shutil.which(CHROMIUM) is None:
        missing_service("Debian's chromium")
    async with async_playwright() as playwright:
        # --no-sandbox: the tests may run as root, where chromium's sandbox refuses to start
        launched = await playwright.chromium.launch(
            executable_path=CHROMIUM, headless=True, args=["--no-sandbox"]
        )
        yield launched
        await launched.close()


@pytest.fixture
def serve(aiohttp_client: Any) -> Callable[[Config], Any]:
    async def factory(config: Config) -> Client:
        client: Client = await aiohttp_client(make_app(config))
        return client

    return factory


async def signed_in(browser: Browser, client: Client, token: str) -> tuple[BrowserContext, Page]:
    context = await browser.new_context(base_url=str(client.make_url("")))
    page = await context.new_page()
    await page.goto("/ui")
    assert page.url.endswith("/ui/login")
    await page.fill("input[name=token]", token)
    await page.click("button[type=submit]")
    await page.wait_for_url("**/ui")
    return context, page


async def test_an_approver_approves_a_pending_scale_instance_and_it_runs(
    browser: Browser,
    serve: Callable[[Config], Any],
    make_config: ConfigFactory,
    moto_server: MotoServer,
    rds_client: Any,
    rds_instance: Callable[..., str],
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
) -> None:
    ident = rds_instance("db.t3.medium")
    config = rds_config(
        make_config, moto_server, scale={"require_approval": True}, **people(monkeypatch, tmp_path)
    )
    client: Client = await serve(config)
    (d,) = await post_alerts(client, alert("RDSCPUHigh", dbidentifier=ident, aws_region="us-east-1"))
    assert d["state"] == "pending"

    # the webhook's token does not sign in
    context = await browser.new_context(base_url=str(client.make_url("")))
    page = await context.new_page()
    await page.goto("/ui/login")
    await page.fill("input[name=token]", TOKEN)
    await page.click("button[type=submit]")
    assert "Not an approver" in await page.inner_text("#error")
    await context.close()

    context, page = await signed_in(browser, client, ALICE)
    assert await page.inner_text("#who") == "alice"
    await page.click(f'#pending tr[data-id="{d["id"]}"] button.approve')
    await page.wait_for_url(f"**/ui?decided={d['id']}&answer=approved")
    row = await wait_done(client, d["id"])
    deadline = time.monotonic() + 30
    while row["state"] != "done":
        assert time.monotonic() < deadline, row
        row = await wait_done(client, d["id"])
    assert row["outcome"] == "succeeded" and row["decided_by"] == "alice"
    assert describe_instance(rds_client, ident)["DBInstanceClass"] == "db.r6g.large"
    await page.goto("/ui")
    decision = page.locator(f'#timeline tr[data-id="{d["id"]}"]')
    assert "succeeded" in await decision.locator(".outcome").inner_text()
    assert await decision.locator(".decided-by").inner_text() == "alice"
    headline = await decision.locator(".headline").inner_text()
    assert headline == f"scaled {ident} db.t3.medium → db.r6g.large", headline
    await decision.locator("details.plan-result > summary").click()
    assert "db.r6g.large" in await decision.locator("dl.plan").inner_text()
    assert await decision.locator("dl.plan").is_visible()
    await page.screenshot(path=str(tmp_path / "timeline.png"), full_page=True)
    await context.close()


async def test_a_viewer_sees_no_buttons_and_a_forged_post_is_refused(
    browser: Browser,
    serve: Callable[[Config], Any],
    make_config: ConfigFactory,
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
) -> None:
    playbook = {"name": "held", "match": {"alertname": "Held"}, "action": "record", "require_approval": True}
    client: Client = await serve(make_config(playbooks=[playbook], **people(monkeypatch, tmp_path)))
    (d,) = await post_alerts(client, alert("Held"))
    context, page = await signed_in(browser, client, VICTOR)
    for path in ("/ui", "/ui/approvals"):
        await page.goto(path)
        assert await page.locator(f'#pending tr[data-id="{d["id"]}"]').count() == 1
        assert await page.locator("button.approve, button.reject").count() == 0
    # the browser's own session cookie goes along; without the form's CSRF token the post is refused
    forged = await context.request.post(f"/ui/actions/{d['id']}/approve", form={"comment": "ok"})
    assert forged.status == 403
    await context.close()
    context, page = await signed_in(browser, client, ALICE)
    assert await page.locator("button.approve").count() == 1
    forged = await context.request.post(f"/ui/actions/{d['id']}/approve", form={"csrf": "guessed"})
    assert forged.status == 403
    await context.close()
    assert (await wait_done(client, d["id"]))["state"] == "pending"


async def test_the_report_page_renders_every_section_with_its_charts(
    browser: Browser,
    serve: Callable[[Config], Any],
    make_config: ConfigFactory,
    report_scenario: ReportScenario,
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
) -> None:
    journal = tmp_path / "journal.db"
    shutil.copy(report_scenario.journal, journal)  # with the scenario's drill
    playbook = {
        "name": "weekly-report",
        "match": {"alertname": "MaintenanceReportDue"},
        "action": "maintenance_report",
        "params": {
            "period": "weekly",
            "prometheus": report_scenario.prometheus,
            "out_dir": str(tmp_path / "reports"),
        },
    }
    config = make_config(
        journal=f"sqlite:///{journal}",
        targets=[{"name": "rpt", "dsn": report_scenario.target_dsn}],
        playbooks=[playbook],
        **people(monkeypatch, tmp_path),
    )
    client: Client = await serve(config)
    (d,) = await post_alerts(client, alert("MaintenanceReportDue", target="rpt"))
    row = await wait_done(client, d["id"], wait=60)
    assert row["outcome"] == "succeeded", row
    assert row["result"]["verdicts"]["backup_tests"] == "ok"
    listed = await (await client.get("/reports", headers={"Authorization": f"Bearer {VICTOR}"})).json()
    assert [r["id"] for r in listed["reports"]] == [d["id"]]

    context, page = await signed_in(browser, client, VICTOR)
    await page.goto("/ui/reports")
    await page.click(f'#reports tr[data-id="{d["id"]}"] a')
    await page.wait_for_url(f"**/reports/{d['id']}")
    sections = page.locator("section.section")
    # the four with charts below, the schema migrations and the index advice (no chart)
    assert await sections.count() == 6
    for key in ("slow_queries", "index_usage", "backup_tests", "connection_pool"):
        section = page.locator(f"section#{key}")
        assert await section.get_attribute("data-verdict") in ("ok", "attention")
        assert await section.locator(".reason").inner_text()
        chart = section.locator(".chart svg").first
        assert await chart.is_visible()
        box = await chart.bounding_box()
        assert box is not None and box["width"] > 200 and box["height"] > 50
    assert "rpt_long_query" in await page.inner_text("section#slow_queries")
    assert await page.locator("#summary tr").count() == 7  # its header and the six sections
    assert await page.locator("section#schema_migrations").get_attribute("data-verdict") == "ok"
    assert await page.locator("section#index_advice").get_attribute("data-verdict") == "no data"
    await page.screenshot(path=str(tmp_path / "report.png"), full_page=True)
    assert (tmp_path / "report.png").stat().st_size > 10_000
    await context.close()

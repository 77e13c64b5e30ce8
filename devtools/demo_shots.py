"""Screenshots of the demo in Debian's chromium (headless, through Playwright, as the console's browser tests
take theirs): the console's timeline with a drill's plan and result open, its approvals page, and a weekly
report built by `pgwarden-responder report` from the demo's Prometheus and journal. For docs/images:
`DEMO_ONCE=1 DEMO_SCREENSHOTS=docs/images python -m devtools.demo`."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import tempfile
from collections.abc import Mapping
from pathlib import Path

from devtools.services import Service

CHROMIUM = "/usr/bin/chromium"
WIDTH = 1280


def take_screenshots(
    folder: Path, services: Mapping[str, Service], config: Path, env: Mapping[str, str], token: str
) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="pgwarden-report-") as scratch:
        report = Path(scratch) / "weekly.html"
        subprocess.run(
            [sys.executable, "-m", "responder", "report", "--period", "weekly", "--config", str(config),
             "--prometheus", services["prometheus"].url, "--out", str(report)],
            env={**os.environ, **env}, check=True, capture_output=True, timeout=120,
        )  # fmt: skip
        asyncio.run(_shoot(folder, services["responder"].url, report.resolve().as_uri(), token))
    print(f"demo: screenshots in {folder}", flush=True)


async def _shoot(folder: Path, responder: str, report: str, token: str) -> None:
    from playwright.async_api import async_playwright  # a dev dependency: only the screenshots need it

    async with async_playwright() as playwright:
        browser = await playwright.chromium.launch(
            executable_path=CHROMIUM, headless=True, args=["--no-sandbox"]
        )
        page = await browser.new_page(viewport={"width": WIDTH, "height": 800}, base_url=responder)
        await page.goto("/ui/login")
        await page.fill("input[name=token]", token)
        await page.click("button[type=submit]")
        await page.wait_for_url("**/ui")
        drill = page.locator("#timeline tr.decision", has_text="restored").first
        await drill.locator("details.plan-result > summary").click()
        await page.screenshot(path=str(folder / "console-timeline.png"), full_page=True)
        await page.goto("/ui/approvals")
        await page.screenshot(path=str(folder / "console-approvals.png"), full_page=True)
        await page.goto(report)
        await page.screenshot(path=str(folder / "weekly-report.png"), full_page=True)
        await browser.close()

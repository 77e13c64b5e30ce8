"""The docs' picture of pgwarden in Slack: two decisions sent by the Slack transport (bot token) to the local
Slack of the tests (tests/support/chat_receivers.py), which draws its channel at `/preview`
(devtools/slack_preview.py), screenshotted in Debian's chromium (headless, through Playwright, as
devtools/demo_shots.py does): a scale-up waiting with its Approve/Reject buttons, and a cancelled query that
alice approved, its message edited in place. `python -m devtools.chat_shots [docs/images]`."""

from __future__ import annotations

import asyncio
import sys
import tempfile
from pathlib import Path

from devtools.demo_shots import CHROMIUM
from responder.journal import Journal, open_store
from responder.notify.config import Receiver
from responder.notify.transports.slack import TRANSPORT
from responder.targets import RdsTarget
from tests.responder.notify.decisions import alert, approve_and_run, journaled, notice
from tests.support.chat_receivers import SlackApi

IMAGE = "slack-messages.png"
TOKEN = "xoxb-0000-docs-screenshot"  # the local Slack's, nobody's
CPU_ALERT = {
    "alertname": "RDSCPUHigh",
    "dbidentifier": "prod-db",
    "region": "us-east-1",
    "severity": "warning",
}


async def render(folder: Path) -> Path:
    """Journal and send the two decisions, and screenshot the channel: the image's path."""
    from playwright.async_api import async_playwright  # a dev dependency: only the screenshots need it

    slack = SlackApi(TOKEN)
    with tempfile.TemporaryDirectory(prefix="pgwarden-chat-") as scratch:
        journal = Journal(open_store(f"sqlite:///{Path(scratch) / 'journal.db'}"), "chat-shots")
        await journal.start()
        try:
            async with slack.serving():
                receiver = Receiver(
                    "oncall-slack", "slack", slack.api_url, TOKEN, "#db-oncall", "signing-secret"
                )
                cancel = await journaled(journal)
                ref = await TRANSPORT.send(receiver, notice(cancel), None)
                scale = await journaled(
                    journal, alert(CPU_ALERT, "fp-cpu"), playbook="scale-up-on-cpu", action="scale_instance",
                    target=RdsTarget("prod-db", "us-east-1"),
                )  # fmt: skip
                await TRANSPORT.send(receiver, notice(scale), None)
                done = await approve_and_run(journal, cancel.id)
                await TRANSPORT.send(receiver, notice(done), ref)  # the first message, edited in place
                async with async_playwright() as playwright:
                    browser = await playwright.chromium.launch(
                        executable_path=CHROMIUM, headless=True, args=["--no-sandbox"]
                    )
                    page = await browser.new_page(viewport={"width": 820, "height": 600})
                    await page.goto(f"{slack.url}/preview")
                    await page.screenshot(path=str(folder / IMAGE), full_page=True)
                    await browser.close()
        finally:
            await journal.close()
    return folder / IMAGE


def main(folder: Path) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    return asyncio.run(render(folder))


if __name__ == "__main__":
    print(main(Path(sys.argv[1] if len(sys.argv) > 1 else "docs/images")))

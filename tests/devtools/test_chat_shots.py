"""The docs' Slack screenshot can be made again: devtools/chat_shots.py sends two decisions to the local Slack
and screenshots its `/preview` in Debian's chromium."""

from __future__ import annotations

import shutil
from pathlib import Path

from devtools.chat_shots import render
from devtools.demo_shots import CHROMIUM
from tests.support.services import missing_service

PNG = b"\x89PNG\r\n\x1a\n"


async def test_the_slack_screenshot_is_made_from_the_local_slack(tmp_path: Path) -> None:
    if shutil.which(CHROMIUM) is None:
        missing_service("Debian's chromium")
    image = await render(tmp_path)
    data = image.read_bytes()
    assert data.startswith(PNG) and len(data) > 20_000

"""Secrets never reach a viewer: a DSN that libpq cannot parse quotes itself in libpq's error, password and
all, and a Prometheus URL may carry credentials. Neither may show in `/actions`, the console, the log lines or
a report (HTML and Markdown).

The DSN here is a restore drill's (`connect.dsn_env`, read when the drill runs): a target's `dsn` is checked
when the configuration is loaded, and one that does not parse never gets as far as an action. The drill runs
against a real moto server; its restored instance is never reached, the DSN fails first."""

from __future__ import annotations

import asyncio
import json
import logging
from pathlib import Path
from typing import Any

import pytest
import yaml

from devtools.motoserver import MotoServer
from pgwarden.logs import StructuredFormatter
from pgwarden.redact import redact, redact_data, redact_url
from responder.cli import main
from tests.responder.ui.console import VICTOR, people, sign_in
from tests.support.drills import DSN_ENV, REGION, checks, production, weekly_drill
from tests.support.responder import AUTH, ClientFactory, ConfigFactory
from tests.support.webhook import wait_done

MARKER = "SECRETMARKER123"
# libpq stops at the unclosed `[` and quotes the whole URI in its error.
UNPARSEABLE_DSN = f"postgresql://drill:{MARKER}@[::1/drilldb"


@pytest.mark.parametrize(
    "text",
    [
        f"host=db password={MARKER} port=5432",
        f"host=db password = '{MARKER} with spaces\\' and a quote' port=5432",
        f'host=db password="{MARKER}"',
        f"postgresql://app:{MARKER}@db:5432/orders",
        f"postgresql://app:{MARKER}@with-an-at@db/orders",
        f"http://user:{MARKER}@prometheus:9090",
        f"postgresql://app@db/orders?sslmode=require&password={MARKER}",
        f"PGPASSWORD={MARKER} psql -h db",
        f'{{"username": "app", "password": "{MARKER}"}}',
        f"{{'user': 'app', 'password': '{MARKER}'}}",
        f'invalid percent-encoded token: "{MARKER}%zz"',
        f'end of string reached when looking for matching "]" in IPv6 host address in URI: "{UNPARSEABLE_DSN}"',
    ],
)
def test_redact_masks_every_password_shape(text: str) -> None:
    assert MARKER not in redact(text)
    assert "***" in redact(text)


def test_redact_keeps_what_is_not_a_secret() -> None:
    text = "postgresql://app@db:5432/orders password_env=PGW_PASSWORD connection refused"
    assert redact(text) == text
    assert redact(None) is None
    assert redact_url(f"http://user:{MARKER}@127.0.0.1:9090/x?a=1") == "http://user:***@127.0.0.1:9090/x?a=1"
    assert redact_url("http://127.0.0.1:9090") == "http://127.0.0.1:9090"
    assert redact_data({"password": MARKER, "steps": [{"error": f"password={MARKER}"}], "n": 3}) == {
        "password": "***",
        "steps": [{"error": "password=***"}],
        "n": 3,
    }


def _formatted_logs(records: list[logging.LogRecord]) -> str:
    """The log records as the responder writes them, in both formats."""
    return "\n".join(StructuredFormatter(fmt).format(r) for r in records for fmt in ("json", "logfmt"))


async def test_a_dsn_that_does_not_parse_never_shows_its_password(
    make_config: ConfigFactory,
    client_for: ClientFactory,
    moto_server: MotoServer,
    rds_client: Any,
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
    capsys: pytest.CaptureFixture[str],
) -> None:
    caplog.set_level(logging.INFO)
    monkeypatch.setenv(DSN_ENV, UNPARSEABLE_DSN)
    ident = production(rds_client)
    params = {
        "source": "latest_snapshot",
        "instance_class": "db.t3.medium",
        "wait_timeout": "10m",
        "max_lifetime": "1h",
        "connect": {"dsn_env": DSN_ENV, "host_override": "127.0.0.1", "port_override": 1},
        "checks": checks(),
    }
    journal = tmp_path / "journal.db"
    config = make_config(
        aws={"region": REGION, "endpoint_url": moto_server.endpoint_url},
        playbooks=[],
        schedules=[weekly_drill(ident, params)],
        journal=f"sqlite:///{journal}",
        **people(monkeypatch, tmp_path),
    )
    client = await client_for(config)
    resp = await client.post("/schedules/weekly-restore-test/run", headers=AUTH)
    assert resp.status == 202, await resp.text()
    action_id = (await resp.json())["id"]
    row = await wait_done(client, action_id, wait=60)
    # the drill failed on the DSN itself, and says so without quoting it
    assert row["outcome"] == "failed", row
    assert "ProgrammingError" in row["error"] and "postgresql://drill:***@" in row["error"], row

    seen = {"/actions": await (await client.get("/actions?limit=100", headers=AUTH)).text()}
    await sign_in(client, VICTOR)
    for path in ("/ui", f"/ui/actions/{action_id}", "/ui/drills", "/ui/schedules"):
        seen[path] = await (await client.get(path)).text()
    assert str(action_id) in seen["/ui"]
    seen["log"] = _formatted_logs(caplog.records)
    assert "decision" in seen["log"]

    # a report of the same journal, from a Prometheus URL with credentials (nothing listens: its sections say
    # why, and the drill's row is in the backup tests)
    config_file = tmp_path / "responder.yml"
    config_file.write_text(
        yaml.safe_dump({"token": "report-token-0123456789", "journal": f"sqlite:///{journal}", "targets": []})
    )
    out = tmp_path / "weekly.html"
    prometheus = f"http://user:{MARKER}@127.0.0.1:9"
    capsys.readouterr()
    argv = ["report", "--period", "weekly", "--prometheus", prometheus, "--out", str(out), "--config", str(config_file)]  # fmt: skip
    code = await asyncio.to_thread(main, argv)  # the command runs its own event loop
    assert code == 0
    printed = capsys.readouterr()
    seen["report html"] = out.read_text()
    seen["report markdown"] = out.with_suffix(".md").read_text()
    seen["report output"] = printed.out + printed.err
    assert "Prometheus did not answer" in seen["report html"]
    assert "http://user:***@127.0.0.1:9" in seen["report html"]
    assert "weekly-restore-test" in seen["/ui/schedules"] and ident in seen["report html"]

    leaks = [where for where, text in seen.items() if MARKER in text]
    assert leaks == [], {where: _around(seen[where]) for where in leaks}


def _around(text: str) -> str:
    at = text.index(MARKER)
    return json.dumps(text[max(0, at - 120) : at + 40])

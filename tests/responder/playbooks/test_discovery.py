"""Playbooks are discovered: a file in responder/playbooks/ with a module-level SPEC is an action.

The last test copies the package tree to a temporary directory, adds one playbook file there and nothing
else, starts the responder from that copy and sees the new action run from a webhook.
"""

from __future__ import annotations

import os
import shutil
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests

from devtools.processes import free_port, spawn, wait_http
from responder.playbooks import default_registry
from tests.support.responder import AUTH, config_file
from tests.support.webhook import alert, payload

ROOT = Path(__file__).resolve().parents[3]
PLAYBOOKS = ROOT / "responder" / "playbooks"

NOTE_ALERT = '''
"""note_alert: writes down that the alert came, and nothing else."""

from __future__ import annotations

from responder.core import ActionContext, ActionParams, ActionResult, ActionSpec, TargetKind


class NoteAlertParams(ActionParams):
    note: str = "noted"


async def run(ctx: ActionContext[NoteAlertParams]) -> ActionResult:
    await ctx.save_plan({"note": ctx.params.note, "target": ctx.target.key})
    ctx.count("alerts_noted")
    return {"noted": ctx.params.note, "dry_run": ctx.dry_run}


SPEC = ActionSpec(
    params_model=NoteAlertParams,
    target_kind=TargetKind.POSTGRES,
    run=run,
    description="note that the alert came",
    counters={"alerts_noted": "Alerts noted by note_alert."},
)
'''


def test_every_module_is_an_action_named_after_its_file() -> None:
    modules = sorted(p.stem for p in PLAYBOOKS.glob("*.py") if not p.name.startswith("_"))
    assert default_registry().names() == modules
    assert {"terminate_queries", "scale_instance", "grow_storage", "vacuum_analyze"} <= set(modules)


@pytest.fixture
def copied_tree(tmp_path: Path) -> Path:
    """responder/ and pgwarden/ copied, plus one new playbook file."""
    tree = tmp_path / "tree"
    for package in ("responder", "pgwarden"):
        shutil.copytree(ROOT / package, tree / package, ignore=shutil.ignore_patterns("__pycache__"))
    assert not (PLAYBOOKS / "note_alert.py").exists()
    (tree / "responder" / "playbooks" / "note_alert.py").write_text(NOTE_ALERT.lstrip())
    return tree


@pytest.fixture
def responder_from(copied_tree: Path, tmp_path: Path) -> Iterator[str]:
    """The copied responder running as its own process with a note_alert playbook; its base URL."""
    note = {
        "name": "note",
        "match": {"alertname": "NoteMe"},
        "action": "note_alert",
        "params": {"note": "hi"},
    }
    path = config_file(tmp_path, playbooks=[note])
    port = free_port()
    argv = [
        sys.executable,
        "-m",
        "responder",
        "--config",
        str(path),
        "--web.listen-address",
        f"127.0.0.1:{port}",
    ]
    process = spawn(
        "responder",
        argv,
        tmp_path / "responder.log",
        env={**os.environ, "PYTHONPATH": str(copied_tree)},
        cwd=copied_tree,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        wait_http(process, f"{base}/healthz")
        yield base
    finally:
        process.stop()


def _done(base: str, action_id: int) -> dict[str, Any]:
    deadline = time.monotonic() + 20
    while True:
        rows = requests.get(f"{base}/actions", headers=AUTH, timeout=5).json()["actions"]
        row = next((r for r in rows if r["id"] == action_id), None)
        if row is not None and row["state"] == "done":
            return dict(row)
        assert time.monotonic() < deadline, row
        time.sleep(0.05)


def test_a_new_playbook_file_is_an_action(responder_from: str) -> None:
    resp = requests.post(f"{responder_from}/webhook", json=payload(alert("NoteMe")), headers=AUTH, timeout=5)
    assert resp.status_code == 202, resp.text
    (decision,) = resp.json()["decisions"]
    assert decision["playbook"] == "note" and decision["state"] == "queued"
    row = _done(responder_from, decision["id"])
    assert row["action"] == "note_alert" and row["outcome"] == "succeeded", row
    assert row["result"] == {"noted": "hi", "dry_run": False}
    assert row["plan"] == {"note": "hi", "target": "pg:production"}
    metrics = requests.get(f"{responder_from}/metrics", timeout=5).text
    assert "pgwarden_responder_alerts_noted_total 1.0" in metrics
    assert (
        'pgwarden_responder_actions_total{action="note_alert",outcome="succeeded",playbook="note"} 1.0'
        in metrics
    )

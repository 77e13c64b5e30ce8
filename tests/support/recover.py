"""`recover` in the tests: its configuration on moto and the drill database, the command in-process, and
what it leaves (instances, the journal row)."""

from __future__ import annotations

import io
import json
import sqlite3
from pathlib import Path
from typing import Any

import yaml

from devtools.motoserver import MotoServer
from devtools.pgserver import PostgresServer
from responder import recover
from tests.support.drills import REGION, all_instances, checks, connect


def recovery_config(tmp_path: Path, moto: MotoServer, pg_server: PostgresServer, **recovery: Any) -> Path:
    """responder.yml in `tmp_path` for `recover` on moto and the drill database; each hook appends its
    name and instance to tmp_path/hooks.log; `recovery` on top of the recovery section."""
    hooks_log = tmp_path / "hooks.log"
    config = {
        "auth": "none",
        "journal": f"sqlite:///{tmp_path / 'journal.db'}",
        "replica_timeout": "1s",
        "aws": {"region": REGION, "endpoint_url": moto.endpoint_url},
        "recovery": {
            "connect": connect(pg_server),
            "checks": checks(),
            "drain": {"timeout": "10s"},
            "hooks": {
                name: ["sh", "-c", f'echo "{name} $PGWARDEN_INSTANCE" >> {hooks_log}']
                for name in ("maintenance_on", "restart", "maintenance_off")
            },
            **recovery,
        },
    }
    path = tmp_path / "responder.yml"
    path.write_text(yaml.safe_dump(config))
    return path


def run_recover(path: Path, *flags: str, answer: str = "") -> tuple[int, str]:
    """`recover` in this process, `answer` typed at its confirmation prompt: its exit code and what it
    printed."""
    out = io.StringIO()
    code = recover.main(["--config", str(path), *flags], out=out, confirm=lambda _: answer)
    return code, out.getvalue()


def latest_restorable(rds_client: Any, ident: str) -> str:
    """The instance's latest restorable time, as `recover --to` takes it."""
    instance = rds_client.describe_db_instances(DBInstanceIdentifier=ident)["DBInstances"][0]
    return str(instance["LatestRestorableTime"].strftime("%Y-%m-%dT%H:%M:%SZ"))


def instance_names(rds_client: Any, ident: str) -> set[str]:
    """The instances named after `ident` (it, and its recoveries), the ones being deleted left out."""
    return {
        i["DBInstanceIdentifier"]
        for i in all_instances(rds_client)
        if i["DBInstanceIdentifier"].startswith(ident) and i["DBInstanceStatus"] != "deleting"
    }


def recovery_row(tmp_path: Path, action_id: int) -> dict[str, Any]:
    """A recovery's journal row (state, outcome, plan, error) from the SQLite journal in `tmp_path`."""
    with sqlite3.connect(tmp_path / "journal.db") as conn:
        state, outcome, plan, error = conn.execute(
            "SELECT state, outcome, plan, error FROM pgwarden_actions WHERE id = ?", (action_id,)
        ).fetchone()
    return {"state": state, "outcome": outcome, "plan": json.loads(plan) if plan else None, "error": error}

"""`pgwarden-responder recover` against what an operator can get wrong (issue 19, holes 2, 7, 11, 13).

Like tests/responder/test_recover.py: a real moto server process, the checks against the local PostgreSQL
(`connect.host_override`), hooks as real commands, a SQLite journal. The calls the recovery sends are recorded
with botocore's `before-call` event on the responder's own (real) clients.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from devtools.motoserver import MotoServer
from devtools.pgserver import PostgresServer
from responder.aws import RdsApi
from responder.drills.models import ConnectSpec
from responder.drills.recovery import MODIFY_SETTINGS, RESTORE_SETTINGS, production_settings
from tests.support.drills import drill_database, production, tagged_instance
from tests.support.recover import (
    instance_names,
    latest_restorable,
    recovery_config,
    recovery_row,
    run_recover,
)


@pytest.fixture
def drill_db(pg_server: PostgresServer, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    yield from drill_database(pg_server, monkeypatch)


@pytest.fixture
def sent(monkeypatch: pytest.MonkeyPatch) -> list[tuple[str, dict[str, Any]]]:
    """Every RDS operation the responder's clients send, with its parameters, in order."""
    calls: list[tuple[str, dict[str, Any]]] = []
    original = RdsApi.client

    def record(model: Any, params: dict[str, Any], **_: Any) -> None:
        calls.append((str(model.name), dict(params.get("body") or {})))

    def client(self: RdsApi, region: str | None = None) -> Any:
        made = original(self, region)
        made.meta.events.register("before-call.rds.*", record, unique_id="test-recorder")
        return made

    monkeypatch.setattr(RdsApi, "client", client)
    return calls


def _recovered(ident: str, to: str) -> str:
    return f"{ident}-recovery-{to[:10].replace('-', '')}"


def _ended_as_a_dryrun_recover(tmp_path: Path, rds_client: Any, ident: str) -> None:
    """Recovery 1 is journaled as a dry run, and nothing was created or run: no instance but `ident`, no hook."""
    assert instance_names(rds_client, ident) == {ident}
    assert not (tmp_path / "hooks.log").exists()
    assert recovery_row(tmp_path, 1)["outcome"] == "dry_run"


@pytest.fixture
def setup(
    tmp_path: Path, moto_server: MotoServer, rds_client: Any, pg_server: PostgresServer, drill_db: str
) -> tuple[str, Path, str]:
    ident = production(rds_client)
    return ident, recovery_config(tmp_path, moto_server, pg_server), latest_restorable(rds_client, ident)


# ---- hole 2: resume and confirmation ------------------------------------------------------------------------


def test_a_finished_dry_run_cannot_be_resumed(
    tmp_path: Path, rds_client: Any, setup: tuple[str, Path, str]
) -> None:
    ident, path, to = setup
    code, out = run_recover(path, "--instance", ident, "--to", to, "--swap", "--yes", "--dry-run")
    assert code == 0, out
    code, out = run_recover(path, "--resume", "1")
    assert code == 2, out
    assert "recovery 1 is finished (dry_run): nothing to resume" in out
    _ended_as_a_dryrun_recover(tmp_path, rds_client, ident)


def test_a_stopped_dry_run_resumes_as_a_dryrun_recover(
    tmp_path: Path, rds_client: Any, setup: tuple[str, Path, str]
) -> None:
    ident, path, to = setup
    assert run_recover(path, "--instance", ident, "--to", to, "--swap", "--dry-run")[0] == 0
    with sqlite3.connect(tmp_path / "journal.db") as conn:  # as if the dry run had stopped on an error
        conn.execute("UPDATE pgwarden_actions SET outcome = 'failed' WHERE id = 1")
    code, out = run_recover(path, "--resume", "1", "--swap", "--yes")
    assert code == 0, out
    _ended_as_a_dryrun_recover(tmp_path, rds_client, ident)


def test_yes_without_swap_does_not_confirm_a_later_swap(
    tmp_path: Path, rds_client: Any, setup: tuple[str, Path, str]
) -> None:
    ident, path, to = setup
    code, out = run_recover(path, "--instance", ident, "--to", to, "--yes")
    assert code == 0, out
    code, out = run_recover(path, "--resume", "1", "--swap")
    assert code == 1 and "not confirmed; nothing swapped" in out, out
    assert instance_names(rds_client, ident) == {ident, _recovered(ident, to)}
    assert not (tmp_path / "hooks.log").exists()


def test_an_unswapped_recovery_can_be_swapped_later_with_a_typed_confirmation(
    tmp_path: Path, rds_client: Any, setup: tuple[str, Path, str]
) -> None:
    ident, path, to = setup
    assert run_recover(path, "--instance", ident, "--to", to)[0] == 0
    code, out = run_recover(path, "--resume", "1")
    assert code == 2 and "(--resume 1 --swap to swap it in)" in out, out
    code, out = run_recover(path, "--resume", "1", "--swap", answer=ident)
    assert code == 0, out
    assert instance_names(rds_client, ident) == {ident, f"{ident}-old"}
    assert recovery_row(tmp_path, 1)["outcome"] == "succeeded"


def test_a_finished_swap_cannot_be_resumed_nor_dry_run_again(
    tmp_path: Path, rds_client: Any, setup: tuple[str, Path, str]
) -> None:
    ident, path, to = setup
    assert run_recover(path, "--instance", ident, "--to", to, "--swap", "--yes")[0] == 0
    before = recovery_row(tmp_path, 1)
    for flags in (("--dry-run",), ("--swap", "--yes"), ()):
        code, out = run_recover(path, "--resume", "1", *flags)
        assert code == 2, (flags, out)
        assert "done calls" not in out and "would be made" not in out
    after = recovery_row(tmp_path, 1)
    assert after["outcome"] == "succeeded" and after["plan"] == before["plan"]
    assert instance_names(rds_client, ident) == {ident, f"{ident}-old"}


# ---- hole 7: the instance swapped in gets production's settings ---------------------------------------------


def test_the_recovered_instance_gets_productions_settings(
    tmp_path: Path,
    moto_server: MotoServer,
    rds_client: Any,
    pg_server: PostgresServer,
    drill_db: str,
    sent: list[tuple[str, dict[str, Any]]],
) -> None:
    ident = "shop"
    rds_client.create_db_parameter_group(
        DBParameterGroupName="shop-params", DBParameterGroupFamily="postgres13", Description="shop"
    )
    rds_client.create_option_group(
        OptionGroupName="shop-options",
        EngineName="postgres",
        MajorEngineVersion="13",
        OptionGroupDescription="shop",
    )
    role = "arn:aws:iam::123456789012:role/rds-monitoring"
    tagged_instance(
        rds_client,
        ident,
        {},
        DBInstanceClass="db.r6g.large",
        EngineVersion="13.7",
        BackupRetentionPeriod=14,
        MultiAZ=True,
        DeletionProtection=True,
        DBParameterGroupName="shop-params",
        OptionGroupName="shop-options",
        StorageType="io1",
        Iops=3000,
        MonitoringInterval=60,
        MonitoringRoleArn=role,
        CopyTagsToSnapshot=True,
        CACertificateIdentifier="rds-ca-rsa2048-g1",
    )
    path = recovery_config(tmp_path, moto_server, pg_server)
    to = latest_restorable(rds_client, ident)
    code, out = run_recover(path, "--instance", ident, "--to", to, "--swap", "--yes")
    assert code == 0, out
    recovered = _recovered(ident, to)
    restores = [p for op, p in sent if op == "RestoreDBInstanceToPointInTime"]
    assert len(restores) == 1
    restore = restores[0]
    assert restore["MultiAZ"] == "true" and restore["DeletionProtection"] == "true"
    assert restore["DBParameterGroupName"] == "shop-params"
    assert restore["OptionGroupName"] == "shop-options"
    assert restore["StorageType"] == "io1" and str(restore["Iops"]) == "3000"
    assert str(restore["BackupRetentionPeriod"]) == "14" and restore["CopyTagsToSnapshot"] == "true"
    assert restore["CACertificateIdentifier"] == "rds-ca-rsa2048-g1"
    modified = [p for op, p in sent if op == "ModifyDBInstance" and p["DBInstanceIdentifier"] == recovered]
    settings = [p for p in modified if "NewDBInstanceIdentifier" not in p]
    assert len(settings) == 1, modified
    assert str(settings[0]["MonitoringInterval"]) == "60" and settings[0]["MonitoringRoleArn"] == role
    modifies = [p for op, p in sent if op == "ModifyDBInstance"]
    assert "NewDBInstanceIdentifier" not in modifies[0]  # the settings come before the renames
    swapped = rds_client.describe_db_instances(DBInstanceIdentifier=ident)["DBInstances"][0]
    assert {"Key": "pgwarden:recovery", "Value": "1"} in swapped["TagList"]
    assert swapped["MultiAZ"] is True and swapped["DeletionProtection"] is True
    assert swapped["DBParameterGroups"][0]["DBParameterGroupName"] == "shop-params"
    assert swapped["MonitoringInterval"] == 60
    assert swapped["BackupRetentionPeriod"] == 14


def test_performance_insights_are_copied_by_a_modify(rds_client: Any) -> None:
    """moto cannot restore from a source with Performance Insights on (it copies the setting under the wrong
    name and refuses its own restore), so this reads production's description and checks the parameters."""
    described = rds_client.describe_db_instances(DBInstanceIdentifier=production(rds_client))["DBInstances"][
        0
    ]
    key = "arn:aws:kms:us-east-1:123456789012:key/shop"
    described.update(
        PerformanceInsightsEnabled=True,
        PerformanceInsightsKMSKeyId=key,
        PerformanceInsightsRetentionPeriod=731,
        StorageType="gp3",
        AllocatedStorage=500,
        Iops=12000,
        StorageThroughput=500,
    )
    settings = production_settings(described)
    assert settings["EnablePerformanceInsights"] is True
    assert settings["PerformanceInsightsKMSKeyId"] == key
    assert settings["PerformanceInsightsRetentionPeriod"] == 731
    assert settings["Iops"] == 12000 and settings["StorageThroughput"] == 500
    assert not set(settings) & set(RESTORE_SETTINGS) & set(MODIFY_SETTINGS)
    assert {"EnablePerformanceInsights", "PerformanceInsightsKMSKeyId"} <= set(MODIFY_SETTINGS)


def test_a_drill_style_recovery_without_swap_stays_cheap(
    tmp_path: Path, rds_client: Any, setup: tuple[str, Path, str], sent: list[tuple[str, dict[str, Any]]]
) -> None:
    ident, path, to = setup
    rds_client.modify_db_instance(DBInstanceIdentifier=ident, MultiAZ=True, ApplyImmediately=True)
    assert run_recover(path, "--instance", ident, "--to", to)[0] == 0
    (restore,) = [p for op, p in sent if op == "RestoreDBInstanceToPointInTime"]
    assert restore["MultiAZ"] == "false" and restore["DeletionProtection"] == "false"


# ---- hole 11: pre-checks before any part of the swap; no swap without checks --------------------------------


def test_swap_checks_old_name_is_free_before_any_hook(
    tmp_path: Path, rds_client: Any, setup: tuple[str, Path, str], sent: list[tuple[str, dict[str, Any]]]
) -> None:
    ident, path, to = setup
    tagged_instance(rds_client, f"{ident}-old", {"keep": "me"}, DBInstanceClass="db.t3.small")
    code, out = run_recover(path, "--instance", ident, "--to", to, "--swap", "--yes")
    assert code == 2, out
    assert f"{ident}-old already exists" in out
    assert not (tmp_path / "hooks.log").exists()  # maintenance mode was never switched on
    assert instance_names(rds_client, ident) == {ident, f"{ident}-old", _recovered(ident, to)}
    old = rds_client.describe_db_instances(DBInstanceIdentifier=f"{ident}-old")["DBInstances"][0]
    assert old["DBInstanceClass"] == "db.t3.small" and {"Key": "keep", "Value": "me"} in old["TagList"]
    assert not any("NewDBInstanceIdentifier" in p for op, p in sent if op == "ModifyDBInstance")
    assert recovery_row(tmp_path, 1)["outcome"] == "guardrail"


def _write(tmp_path: Path, path: Path, change: Callable[[dict[str, Any]], None]) -> Path:
    config = yaml.safe_load(path.read_text())
    change(config["recovery"])
    changed = tmp_path / "changed.yml"
    changed.write_text(yaml.safe_dump(config))
    return changed


@pytest.mark.parametrize("empty", [lambda r: r.update(checks=[]), lambda r: r.pop("checks")])
def test_recovery_without_checks_is_a_config_error(
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    rds_client: Any,
    setup: tuple[str, Path, str],
    empty: Callable[[dict[str, Any]], None],
) -> None:
    ident, path, to = setup
    code, _ = run_recover(_write(tmp_path, path, empty), "--instance", ident, "--to", to, "--swap", "--yes")
    assert code == 2
    assert "recovery.checks:" in capsys.readouterr().err
    assert instance_names(rds_client, ident) == {ident}


# ---- hole 13: host_override with a port -------------------------------------------------------------------


def test_host_override_with_a_port_is_a_config_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], rds_client: Any, setup: tuple[str, Path, str]
) -> None:
    ident, path, to = setup
    changed = _write(tmp_path, path, lambda r: r["connect"].update(host_override="127.0.0.1:5432"))
    code, _ = run_recover(changed, "--instance", ident, "--to", to)
    assert code == 2
    assert "recovery.connect.host_override: give the port in port_override" in capsys.readouterr().err


@pytest.mark.parametrize("host", ["db:5432", "127.0.0.1:5432", "[::1]:5432", "a/b", "db host", "db\n"])
def test_host_override_refuses_what_is_not_a_host(host: str) -> None:
    with pytest.raises(ValueError, match="host_override"):
        ConnectSpec(dsn_env="X", host_override=host)


@pytest.mark.parametrize("host", ["127.0.0.1", "db.internal", "::1", "[::1]", "fe80::1%eth0"])
def test_host_override_accepts_hosts(host: str) -> None:
    assert ConnectSpec(dsn_env="X", host_override=host).host_override == host

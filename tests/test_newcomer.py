"""The README's "Run it yourself" path, followed as a newcomer follows it: the block between the
`newcomer:begin`/`end` markers runs as it is written (only its port is a free one), in bash, with the
programs on PATH as an activated virtualenv puts them, and no other variable than the two it exports; then
the approver signs in to the console and finds the webhook's decision waiting. And the README's own exporter
example passes --check-config without AWS credentials, saying which checks it left for start-up."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from devtools.processes import free_port
from tests.support.services import moto_or_missing

ROOT = Path(__file__).resolve().parents[1]
README = (ROOT / "README.md").read_text()
DOCUMENTED_PORT = "127.0.0.1:9096"
# After the README's block: sign in to the console with the approver's token, as a browser does (the form's
# CSRF token, the session cookie), and look at the approvals page.
SIGN_IN = """
jar=$(mktemp)
csrf=$(curl -sS -c "$jar" http://{address}/ui/login | sed -n 's/.*name="csrf" value="\\([^"]*\\)".*/\\1/p')
curl -sS -b "$jar" -c "$jar" -o /dev/null -w 'sign-in: %{{http_code}} %{{redirect_url}}\\n' \\
  --data-urlencode "csrf=$csrf" --data-urlencode "token=$PGWARDEN_APPROVER_TOKEN" http://{address}/ui/login
curl -sS -b "$jar" http://{address}/ui/approvals | grep -o '<tr data-id="[0-9]*"' | sed 's/^/approvals: /'
"""


@pytest.fixture(scope="module")
def moto_env() -> Iterator[dict[str, str]]:
    """AWS credentials (moto's fake ones) and the endpoint of a moto server."""
    server = moto_or_missing()
    try:
        yield {**server.env, "AWS_ENDPOINT_URL": server.endpoint_url}
    finally:
        server.stop()


def newcomer_block() -> str:
    found = re.search(r"<!-- newcomer:begin -->\n```sh\n(.*?)```\n<!-- newcomer:end -->", README, re.S)
    assert found, "the README's newcomer block is gone"
    return found.group(1)


def a_newcomers_shell(home: Path) -> dict[str, str]:
    """PATH with the virtualenv's bin first (what `. .venv/bin/activate` does), the checkout importable, a HOME
    of its own (no ~/.aws, no ~/.pgpass): nothing else."""
    return {
        "PATH": f"{Path(sys.executable).parent}:/usr/bin:/bin",
        "PYTHONPATH": str(ROOT),
        "HOME": str(home),
        "LANG": "C.UTF-8",
    }


@pytest.mark.slow
def test_the_readme_path_runs_as_written(tmp_path: Path) -> None:
    block = newcomer_block()
    assert block.count(DOCUMENTED_PORT) == 2, block  # the responder's address and the webhook's URL
    address = f"127.0.0.1:{free_port()}"
    script = "\n".join(
        [
            "set -euo pipefail",
            "trap 'kill $(jobs -p) 2>/dev/null; wait' EXIT",
            block.replace(DOCUMENTED_PORT, address),
            "echo",
            SIGN_IN.format(address=address),
        ]
    )
    shutil.copytree(ROOT / "examples", tmp_path / "examples")
    done = subprocess.run(
        ["bash", "-c", script],
        cwd=tmp_path,
        env=a_newcomers_shell(tmp_path),
        capture_output=True,
        text=True,
        timeout=120,
    )
    out = done.stdout
    assert done.returncode == 0, out + done.stderr
    assert "configuration OK: 1 target(s)" in out and "examples/responder.yml: OK" in out, out
    assert "warning:" not in out and "note:" not in out, out  # someone can approve; nothing needs AWS
    (answer,) = [json.loads(line) for line in out.splitlines() if line.startswith('{"status"')]
    assert answer["status"] == "accepted" and answer["rejected"] == 0
    (decision,) = answer["decisions"]
    assert decision["playbook"] == "scale-up-on-cpu" and decision["state"] == "pending"
    assert f"sign-in: 303 http://{address}/ui" in out, out
    assert f'approvals: <tr data-id="{decision["id"]}"' in out, out
    assert (tmp_path / "pgwarden-journal.db").exists()  # where the example says its journal is


def test_the_readme_exporter_example_checks_without_aws_credentials(tmp_path: Path) -> None:
    section = README[README.index("### Configuration") :]
    example = re.search(r"```yaml\n(targets:\n.*?)```", section, re.S)
    assert example and "dsn_secret:" in example.group(1) and "rds:" in example.group(1)
    config = tmp_path / "exporter.yml"
    config.write_text(example.group(1))
    env = a_newcomers_shell(tmp_path) | {"PROD_DSN": "postgresql://pgwarden@prod.internal/postgres"}
    env["AWS_EC2_METADATA_DISABLED"] = "true"  # no instance role to ask for, and no second spent asking
    done = subprocess.run(
        [sys.executable, "-m", "exporter", "--config", str(config), "--check-config"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    notes = [line for line in done.stdout.splitlines() if line.startswith("note:")]
    assert notes == [
        "note: secret 'rds!db-3f1c...' (us-east-1) not read: no AWS credentials are configured;"
        " pgwarden-exporter reads it at start-up (secretsmanager:GetSecretValue)",
        "note: no AWS credentials are configured; AWS polling (rds: blocks, aws:) and RDS IAM auth tokens"
        " (iam_auth:) need them at start-up (the AWS default chain: environment, shared files, SSO,"
        " container or instance role)",
    ]
    assert "target reporting:" in done.stdout and "Unable to locate credentials" not in done.stdout


def test_with_aws_credentials_the_secret_is_read_and_a_missing_one_is_an_error(
    tmp_path: Path, moto_env: dict[str, str]
) -> None:
    config = tmp_path / "exporter.yml"
    config.write_text(
        "targets:\n  - name: reporting\n    dsn: host=db.internal dbname=postgres\n"
        "    dsn_secret: {secret_id: absent, region: us-east-1}\n"
    )
    done = subprocess.run(
        [sys.executable, "-m", "exporter", "--config", str(config), "--check-config"],
        env=a_newcomers_shell(tmp_path) | moto_env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 2, done.stdout + done.stderr
    assert (
        "targets.0.dsn_secret.secret_id: cannot read secret 'absent': ResourceNotFoundException"
        in done.stderr
    )
    assert "note:" not in done.stdout


def test_the_documented_webhook_is_the_example_file() -> None:
    """docs/responder.md shows the payload that the README's path posts (and the curl that posts it)."""
    docs = (ROOT / "docs" / "responder.md").read_text()
    shown = re.search(r"--data @examples/alertmanager-webhook\.json\n.*?```json\n(.*?)```", docs, re.S)
    assert shown, "docs/responder.md no longer shows the webhook payload"
    example = (ROOT / "examples" / "alertmanager-webhook.json").read_text()
    assert json.loads(shown.group(1)) == json.loads(example)

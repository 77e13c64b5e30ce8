"""The container deployment: docker-compose.yml, the Dockerfile and the configurations under deploy/.

No Docker engine runs here, so nothing is built or started. What is proven instead: Debian's docker-compose
accepts the file (`config -q`), every service of the loop is there, ports are published on 127.0.0.1 only,
every file the stack mounts from the repository exists (alerts/ and grafana/ only once delivered), secrets come
from files, the Prometheus configuration passes promtool, the exporter's and the responder's mounted
configurations pass `--check-config` with the secrets they are given in the containers, each program runs from
the image of its own install extra, and (slow) the exporter image's pip commands, run in a fresh venv, install
the exporter alone.
"""

from __future__ import annotations

import json
import os
import re
import shlex
import shutil
import subprocess
import sys
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import yaml
from psycopg.conninfo import conninfo_to_dict

from tests.deploy.venvs import check_exporter_only, copy_source, fresh_venv, pip
from tests.support.services import installed

REPO = Path(__file__).resolve().parents[2]
COMPOSE_FILE = REPO / "docker-compose.yml"
SECRETS_DIR = "/run/secrets"
EXPECTED_SERVICES = {
    "postgres",
    "moto",
    "moto-seed",
    "exporter",
    "responder",
    "prometheus",
    "alertmanager",
    "grafana",
}
TOKEN_IN_ALERTMANAGER = "/etc/alertmanager/pgwarden-responder.token"  # docs/responder.md's receiver
FAKE_AWS = {"AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN"}


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    data = yaml.safe_load(COMPOSE_FILE.read_text())
    assert isinstance(data, dict)
    return data


def service(compose: dict[str, Any], name: str) -> dict[str, Any]:
    result: dict[str, Any] = compose["services"][name]
    return result


def environment(svc: dict[str, Any]) -> dict[str, str]:
    env = svc.get("environment") or {}
    if isinstance(env, list):
        env = dict(item.split("=", 1) if "=" in item else (item, "") for item in env)
    return {str(k): str(v) for k, v in env.items()}


def bind_mounts(svc: dict[str, Any]) -> dict[str, str]:
    """container path -> host path (relative to the repository) of the service's bind mounts."""
    mounts: dict[str, str] = {}
    for volume in svc.get("volumes") or []:
        if isinstance(volume, dict):
            source, target = str(volume.get("source", "")), str(volume["target"])
        else:
            source, _, rest = str(volume).partition(":")
            target = rest.split(":")[0]
        if source.startswith(("./", "../", "/")):
            mounts[target] = source
    return mounts


def secret_targets(compose: dict[str, Any], svc: dict[str, Any]) -> dict[str, Path]:
    """container path -> the repository file of each secret the service gets."""
    result: dict[str, Path] = {}
    for entry in svc.get("secrets") or []:
        source = entry if isinstance(entry, str) else entry["source"]
        target = source if isinstance(entry, str) else entry.get("target", source)
        path = target if target.startswith("/") else f"{SECRETS_DIR}/{target}"
        result[path] = REPO / compose["secrets"][source]["file"]
    return result


def test_docker_compose_accepts_the_file() -> None:
    binary = installed("docker-compose", "docker-compose")
    result = subprocess.run(
        [binary, "-f", str(COMPOSE_FILE), "config", "-q"],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=60,
        env={k: v for k, v in os.environ.items() if not k.startswith(("COMPOSE_", "DOCKER_"))},
    )
    assert result.returncode == 0, result.stderr
    assert result.stderr == "" and result.stdout == ""


def test_the_whole_loop_is_there(compose: dict[str, Any]) -> None:
    assert set(compose["services"]) >= EXPECTED_SERVICES
    postgres = service(compose, "postgres")
    assert re.fullmatch(r"postgres:15(\.\d+)?(-[\w.]+)?", postgres["image"])
    command = " ".join(postgres["command"])
    assert "shared_preload_libraries=pg_stat_statements" in command
    moto = service(compose, "moto")
    assert moto["command"] == ["python", "-m", "moto.server", "-H", "0.0.0.0", "-p", "5000"]
    assert moto["build"]["target"] == "moto"
    seed = service(compose, "moto-seed")
    assert seed.get("restart") == "no"
    assert "moto" in seed["depends_on"]
    for name in ("exporter", "responder", "moto-seed"):
        env = environment(service(compose, name))
        assert env["AWS_ENDPOINT_URL"] == "http://moto:5000", name
    assert service(compose, "exporter")["command"][0] == "pgwarden-exporter"
    assert service(compose, "responder")["command"][0] == "pgwarden-responder"
    assert bind_mounts(service(compose, "prometheus"))["/etc/prometheus/rules"] == "./alerts"
    assert bind_mounts(service(compose, "alertmanager"))["/etc/alertmanager/alertmanager.yml"] == (
        "./alerts/alertmanager.yml"
    )
    grafana = bind_mounts(service(compose, "grafana"))
    assert grafana["/etc/grafana/provisioning"] == "./grafana/provisioning"
    assert grafana["/var/lib/grafana/dashboards"] == "./grafana/dashboards"


def test_ports_are_published_on_localhost_only(compose: dict[str, Any]) -> None:
    published = 0
    for name, svc in compose["services"].items():
        for port in svc.get("ports") or []:
            published += 1
            if isinstance(port, dict):
                assert port.get("host_ip") == "127.0.0.1", (name, port)
            else:
                assert str(port).startswith("127.0.0.1:"), (name, port)
    assert published >= 6


def test_every_mounted_file_exists(compose: dict[str, Any]) -> None:
    for name, svc in compose["services"].items():
        for relative in bind_mounts(svc).values():
            path = REPO / relative
            assert path.exists(), f"{name}: {relative} is mounted but missing"
        build = svc.get("build")
        if build is not None:
            context = REPO / (build if isinstance(build, str) else build.get("context", "."))
            assert (
                context / (build.get("dockerfile", "Dockerfile") if isinstance(build, dict) else "Dockerfile")
            ).is_file()
    for name, secret in compose["secrets"].items():
        path = REPO / secret["file"]
        assert path.is_file() and path.read_text().strip(), (
            f"secret {name}: {secret['file']} missing or empty"
        )


def test_secrets_come_from_files(compose: dict[str, Any]) -> None:
    for name, svc in compose["services"].items():
        for key, value in environment(svc).items():
            if key in FAKE_AWS:
                assert value == "testing", f"{name}: {key} must stay moto's fake credential"
            elif re.search(r"PASSWORD|TOKEN|SECRET|DSN|DATA_SOURCE", key):
                assert key.endswith("_FILE") and value.startswith(SECRETS_DIR), f"{name}: {key} is inline"
    token = secret_targets(compose, service(compose, "alertmanager"))[TOKEN_IN_ALERTMANAGER]
    assert token == secret_targets(compose, service(compose, "responder"))[f"{SECRETS_DIR}/responder-token"]
    assert "demo" in token.read_text()  # obviously a demo value; deploy/secrets/README.md says to replace it


@dataclass
class Program:
    service: str
    module: str
    mounted: str  # the configuration's path in the container
    extra_env: dict[str, str] = field(default_factory=dict)


PROGRAMS = [
    Program("exporter", "exporter", "/etc/pgwarden/exporter.yml"),
    Program("responder", "responder", "/etc/pgwarden/responder.yml"),
]


@pytest.mark.parametrize("program", PROGRAMS, ids=lambda p: p.service)
def test_mounted_configuration_passes_check_config(
    compose: dict[str, Any], program: Program, tmp_path: Path
) -> None:
    svc = service(compose, program.service)
    command = svc["command"]
    assert command[command.index("--config") + 1] == program.mounted
    source = REPO / bind_mounts(svc)[program.mounted]
    text = source.read_text()
    # The secrets the configuration reads in the container are the service's secrets: point them at the files.
    secrets = secret_targets(compose, svc)
    for used in sorted(set(re.findall(rf"{SECRETS_DIR}/[\w.-]+", text))):
        assert used in secrets, (
            f"{source.name} reads {used}, which the {program.service} service does not get"
        )
        text = text.replace(used, str(secrets[used]))
    config = tmp_path / source.name
    config.write_text(text)
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "PGWARDEN_"))},
        **environment(svc),
    }
    result = subprocess.run(
        [sys.executable, "-m", program.module, "--config", str(config), "--check-config"],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=60,
        env=env,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    if program.service == "exporter":
        assert "target production: postgres:5432/postgres" in result.stdout
        assert "aws:" in result.stdout and "off" not in result.stdout.split("aws:", 1)[1].split("\n")[0]
    else:
        assert "auth: bearer token" in result.stdout and "mode: dry-run" in result.stdout


def test_exporter_config_names_the_seeded_instance() -> None:
    config = yaml.safe_load((REPO / "deploy/exporter.yml").read_text())
    rds = config["targets"][0]["rds"]
    assert rds == {
        "identifier": "skillancer-production",
        "region": "us-east-1",
        "backup_regions": ["eu-west-1"],
    }
    seed = (REPO / "deploy/seed-moto.py").read_text()
    assert 'IDENTIFIER = "skillancer-production"' in seed and 'BACKUP_REGION = "eu-west-1"' in seed


def test_prometheus_config(compose: dict[str, Any], tmp_path: Path) -> None:
    mounts = bind_mounts(service(compose, "prometheus"))
    config = yaml.safe_load((REPO / mounts["/etc/prometheus/prometheus.yml"]).read_text())
    assert config["rule_files"] == ["/etc/prometheus/rules/*.rules.yml"]
    targets = {t for job in config["scrape_configs"] for sc in job["static_configs"] for t in sc["targets"]}
    assert {"exporter:9187", "responder:9096", "alertmanager:9093"} <= targets
    am = config["alerting"]["alertmanagers"][0]["static_configs"][0]["targets"]
    assert am == ["alertmanager:9093"]
    promtool = installed("promtool", "prometheus")
    # The rules are mounted from ./alerts (checked by their own tests); here the configuration alone.
    del config["rule_files"]
    copy = tmp_path / "prometheus.yml"
    copy.write_text(yaml.safe_dump(config))
    result = subprocess.run(
        [promtool, "check", "config", str(copy)], capture_output=True, text=True, timeout=30
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_alertmanager_sends_the_token_to_the_responder(compose: dict[str, Any]) -> None:
    path = REPO / "alerts/alertmanager.yml"
    assert path.is_file()
    config = yaml.safe_load(path.read_text())
    hooks = [
        hook
        for receiver in config.get("receivers") or []
        for hook in receiver.get("webhook_configs") or []
        if str(hook.get("url", "")).endswith("/webhook")
    ]
    assert hooks, "no webhook receiver for the responder"
    aliases = set(service(compose, "responder")["networks"]["default"]["aliases"]) | {"responder"}
    for hook in hooks:
        host = re.sub(r"^https?://", "", hook["url"]).split("/")[0]
        assert host in {f"{a}:9096" for a in aliases}, f"{hook['url']} is not the compose stack's responder"
        assert hook["http_config"]["authorization"]["credentials_file"] == TOKEN_IN_ALERTMANAGER


def test_postgres_init_creates_the_roles_of_the_dsns(compose: dict[str, Any], tmp_path: Path) -> None:
    postgres = service(compose, "postgres")
    init = REPO / bind_mounts(postgres)["/docker-entrypoint-initdb.d/10-pgwarden.sh"]
    script = init.read_text()
    assert subprocess.run(["bash", "-n", str(init)], capture_output=True, timeout=10).returncode == 0
    secrets = secret_targets(compose, postgres)
    assert environment(postgres)["POSTGRES_PASSWORD_FILE"] in secrets
    # init.sh takes each role's password from the DSN its program gets: run its extraction on the real files.
    function = re.search(r"^password_from_dsn\(\) \{.*?^\}", script, re.S | re.M)
    assert function is not None
    memberships = {
        "exporter-dsn": "IN ROLE pg_monitor",
        "responder-dsn": "pg_signal_backend, pg_read_all_stats",
    }
    for name, grant in memberships.items():
        path = secrets[f"{SECRETS_DIR}/{name}"]
        dsn = conninfo_to_dict(path.read_text().strip())
        assert dsn["host"] == "postgres" and dsn["port"] == "5432"
        extracted = subprocess.run(
            ["bash", "-c", f"{function.group(0)}\npassword_from_dsn {shlex.quote(str(path))}"],
            capture_output=True,
            text=True,
            timeout=10,
        ).stdout.strip()
        assert extracted == dsn["password"], name
        assert re.search(rf"CREATE ROLE {dsn['user']} LOGIN .*{re.escape(grant)}", script, re.S), name


def test_seed_script_refuses_real_aws() -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    result = subprocess.run(
        [sys.executable, str(REPO / "deploy/seed-moto.py")],
        capture_output=True,
        text=True,
        timeout=30,
        env=env,
    )
    assert result.returncode == 2 and "AWS_ENDPOINT_URL" in result.stderr


# --- the Dockerfile (no engine here: its instructions are read, not built) ---


@dataclass
class Stage:
    base: str
    name: str
    instructions: list[tuple[str, str]] = field(default_factory=list)


def dockerfile_stages() -> list[Stage]:
    text = re.sub(r"\\\n", " ", (REPO / "Dockerfile").read_text())
    args: dict[str, str] = {}
    stages: list[Stage] = []
    for raw in text.splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        keyword, _, rest = line.partition(" ")
        keyword = keyword.upper()
        if keyword == "ARG" and not stages:
            key, _, default = rest.partition("=")
            args[key] = default
        elif keyword == "FROM":
            words = rest.split()
            base = re.sub(r"\$\{(\w+)\}", lambda m: args[m.group(1)], words[0])
            name = words[2] if len(words) == 3 and words[1].upper() == "AS" else str(len(stages))
            stages.append(Stage(base, name))
        else:
            assert stages, f"{keyword} before FROM"
            stages[-1].instructions.append((keyword, rest))
    return stages


def resolve(stages: list[Stage], name: str) -> list[Stage]:
    """The chain of stages `name` is built from, base first."""
    by_name = {s.name: s for s in stages}
    chain = [by_name[name]]
    while chain[0].base in by_name:
        chain.insert(0, by_name[chain[0].base])
    return chain


def last(chain: list[Stage], keyword: str) -> str | None:
    values = [rest for stage in chain for kw, rest in stage.instructions if kw == keyword]
    return values[-1] if values else None


def test_dockerfile_runtime_image() -> None:
    stages = dockerfile_stages()
    runtime = resolve(stages, stages[-1].name)  # the default target
    assert runtime[0].base == "python:3.11-slim"
    user = last(runtime, "USER")
    assert user is not None and user.split(":")[0] not in ("root", "0")
    copies = [rest for stage in stages for kw, rest in stage.instructions if kw == "COPY"]
    for needed in ("pyproject.toml", "README.md", "pgwarden", "exporter", "responder"):
        assert any(needed in c.split()[:-1] for c in copies), f"the build never copies {needed}"
    runs = " ".join(rest for stage in stages for kw, rest in stage.instructions if kw == "RUN")
    assert "[dev]" not in runs and "pip install" in runs
    healthcheck = last(runtime, "HEALTHCHECK")
    assert healthcheck is not None and "PGWARDEN_HEALTHCHECK_URL" in healthcheck
    env = " ".join(rest for stage in runtime for kw, rest in stage.instructions if kw == "ENV")
    assert "http://127.0.0.1:9187/healthz" in env
    assert "pgwarden-exporter" in (last(runtime, "CMD") or "")


def test_compose_build_targets_exist_and_the_moto_image_extends_the_runtime(compose: dict[str, Any]) -> None:
    stages = dockerfile_stages()
    names = {s.name for s in stages}
    for name, svc in compose["services"].items():
        if isinstance(svc.get("build"), dict) and "target" in svc["build"]:
            assert svc["build"]["target"] in names, name
    moto = resolve(stages, "moto")
    assert [s.name for s in moto][-2:] == ["pgwarden", "moto"]
    assert any("moto[server]" in rest for kw, rest in moto[-1].instructions if kw == "RUN")
    user = last(moto, "USER")
    assert user is not None and user.split(":")[0] not in ("root", "0")


# Each image of the Dockerfile: the extra it installs, its program, the port its health check asks.
@dataclass
class Image:
    stage: str
    extra: str
    program: str
    port: int


IMAGES = [
    Image("exporter", "exporter", "pgwarden-exporter", 9187),
    Image("responder", "responder", "pgwarden-responder", 9096),
    Image("pgwarden", "all", "pgwarden-exporter", 9187),  # both programs; the default target builds on it
]


def env_of(chain: list[Stage]) -> dict[str, str]:
    """The environment the stages' ENV instructions leave (KEY=VALUE forms)."""
    env: dict[str, str] = {}
    for stage in chain:
        for keyword, rest in stage.instructions:
            if keyword == "ENV":
                env |= dict(word.partition("=")[::2] for word in shlex.split(rest))
    return env


def wheel_installs(chain: list[Stage]) -> list[str]:
    return [rest for s in chain for kw, rest in s.instructions if kw == "RUN" and "pip install" in rest]


@pytest.mark.parametrize("image", IMAGES, ids=lambda i: i.stage)
def test_each_image_installs_its_extra(image: Image) -> None:
    extras = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["optional-dependencies"]
    chain = resolve(dockerfile_stages(), image.stage)
    assert chain[0].base == "python:3.11-slim"
    (install,) = wheel_installs(chain)  # once per image, with its extra
    assert re.search(rf"/pgwarden-\*\.whl\)\[{image.extra}\]", install) and image.extra in extras, install
    assert "COPY" in {kw for kw, rest in chain[-1].instructions if "--from=build" in rest}
    user = last(chain, "USER")
    assert user is not None and user.split(":")[0] not in ("root", "0")
    assert json.loads(last(chain, "CMD") or "[]")[0] == image.program
    exposed = {int(port) for port in (last(chain, "EXPOSE") or "").split()}
    assert image.port in exposed
    assert env_of(chain)["PGWARDEN_HEALTHCHECK_URL"] == f"http://127.0.0.1:{image.port}/healthz"
    healthcheck = last(chain, "HEALTHCHECK")
    assert healthcheck is not None and "PGWARDEN_HEALTHCHECK_URL" in healthcheck


@pytest.mark.parametrize("name", ["exporter", "responder"])
def test_compose_runs_each_program_from_its_own_image(compose: dict[str, Any], name: str) -> None:
    svc = service(compose, name)
    (image,) = [i for i in IMAGES if i.stage == svc["build"]["target"]]
    assert image.stage == name and svc["image"] == f"pgwarden-{name}:local"
    assert svc["command"][0] == image.program
    chain = resolve(dockerfile_stages(), image.stage)
    assert environment(svc)["PGWARDEN_HEALTHCHECK_URL"] == env_of(chain)["PGWARDEN_HEALTHCHECK_URL"]


@pytest.mark.slow
def test_the_exporter_images_pip_commands_install_the_exporter_alone(tmp_path: Path) -> None:
    """No Docker engine here: the build stage's and the exporter stage's pip commands run as written, in a fresh
    venv, with the image's paths (/wheels, /tmp/wheels) under tmp_path."""
    stages = {s.name: s for s in dockerfile_stages()}
    root = tmp_path / "root"

    def here(command: str) -> str:
        return re.sub(r"(?<![\w.])/(tmp/wheels|wheels)\b", lambda m: f"{root}/{m.group(1)}", command)

    (build,) = [rest for kw, rest in stages["build"].instructions if kw == "RUN"]
    (copy,) = [rest.split() for kw, rest in stages["exporter"].instructions if kw == "COPY"]
    assert copy[0] == "--from=build" and len(copy) == 3
    (install,) = wheel_installs([stages["exporter"]])
    source = copy_source(tmp_path / "src")
    bin_dir = fresh_venv(tmp_path / "venv")
    pip(here(build), source, path=bin_dir)
    shutil.copytree(here(copy[1]), here(copy[2]))
    pip(here(install), root, path=bin_dir)
    assert not Path(here("/tmp/wheels")).exists()  # the image keeps no wheel
    check_exporter_only(bin_dir, tmp_path)


def test_dockerignore_keeps_what_the_build_copies() -> None:
    rules = [
        line.strip()
        for line in (REPO / ".dockerignore").read_text().splitlines()
        if line.strip() and not line.startswith("#")
    ]

    def included(path: str) -> bool:
        keep = True
        for rule in rules:
            negate = rule.startswith("!")
            pattern = rule.lstrip("!").rstrip("/")
            regex = re.escape(pattern).replace(r"\*\*/", "(.*/)?").replace(r"\*", "[^/]*")
            if re.fullmatch(rf"{regex}(/.*)?", path):
                keep = negate
        return keep

    for path in (
        "pyproject.toml",
        "README.md",
        "pgwarden/__init__.py",
        "exporter/cli.py",
        "responder/cli.py",
    ):
        assert included(path), path
    for path in (
        ".venv/bin/python",
        "tests/conftest.py",
        "exporter/__pycache__/cli.cpython-311.pyc",
        ".git/HEAD",
    ):
        assert not included(path), path


def test_grafana_provisioning_matches_the_stack(compose: dict[str, Any]) -> None:
    provisioning = REPO / "grafana/provisioning"
    assert provisioning.is_dir()
    mounts = bind_mounts(service(compose, "grafana"))
    prometheus = yaml.safe_load((REPO / "deploy/prometheus.yml").read_text())
    for path in sorted(provisioning.glob("datasources/*.y*ml")):
        for source in yaml.safe_load(path.read_text()).get("datasources") or []:
            if source.get("type") == "prometheus":
                assert source["url"] == "http://prometheus:9090", path.name
                interval = (source.get("jsonData") or {}).get("timeInterval")
                assert interval in (None, prometheus["global"]["scrape_interval"]), path.name
    for path in sorted(provisioning.glob("dashboards/*.y*ml")):
        for provider in yaml.safe_load(path.read_text()).get("providers") or []:
            if provider.get("type", "file") == "file":
                assert provider["options"]["path"] in mounts, f"{path.name}: dashboards path is not mounted"

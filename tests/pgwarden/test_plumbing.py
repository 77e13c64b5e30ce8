"""The plumbing both programs share: secrets, DSNs, the common flags and the two-stage config errors."""

from __future__ import annotations

import argparse
from pathlib import Path

import pytest
from pydantic import Field

from pgwarden.cli import add_common_flags, log_level, parse_listen_address, print_config_errors
from pgwarden.config import ConfigError, Errors, StrictModel, validate_document
from pgwarden.dsn import DsnError, check_dsn, describe_dsn
from pgwarden.secrets import SecretError, SecretRef

SECRET = "s3cr3t-pa55"


class _Target(StrictModel):
    name: str = Field(min_length=1)
    dsn: str | None = None
    dsn_env: str | None = None
    dsn_file: Path | None = None


def test_listen_address() -> None:
    assert parse_listen_address(":9096") == (None, 9096)
    assert parse_listen_address("127.0.0.1:1234") == ("127.0.0.1", 1234)
    assert parse_listen_address("[::1]:9187") == ("::1", 9187)
    for bad in ("nonsense", "127.0.0.1:http", "127.0.0.1:0", "127.0.0.1:65536"):
        with pytest.raises(argparse.ArgumentTypeError, match="listen address"):
            parse_listen_address(bad)


@pytest.mark.parametrize(
    ("given", "level"), [("warn", "warning"), ("warning", "warning"), ("DEBUG", "debug")]
)
def test_both_spellings_of_warn_are_accepted(given: str, level: str) -> None:
    assert log_level(given) == level


def test_common_flags_are_the_same_in_both_programs() -> None:
    parser = argparse.ArgumentParser()
    add_common_flags(parser, program="p", version="1", listen=":9187")
    args = parser.parse_args(["--log.level", "warn", "--web.listen-address", "127.0.0.1:1"])
    assert (args.log_level, args.listen, args.log_format, args.check_config) == (
        "warning",
        ("127.0.0.1", 1),
        "logfmt",
        False,
    )
    assert parser.parse_args([]).listen == (None, 9187)
    with pytest.raises(SystemExit):
        parser.parse_args(["--log.level", "loud"])


def test_secret_from_each_source(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    file = tmp_path / "dsn"
    file.write_text(f"  postgresql://u:{SECRET}@h/db\n")
    assert SecretRef("dsn", file=file).resolve() == f"postgresql://u:{SECRET}@h/db"
    assert SecretRef("dsn", env="PGW_DSN").resolve({"PGW_DSN": " x "}) == "x"
    assert SecretRef("dsn", value="v").resolve() == "v"
    assert SecretRef.of(_Target(name="a", dsn_file=file), "dsn").file == file


@pytest.mark.parametrize(
    ("ref", "key"),
    [
        (SecretRef("token", value="  "), "token"),
        (SecretRef("token", env="PGW_TOKEN"), "token_env"),
        (SecretRef("token", file=Path("/nonexistent/token")), "token_file"),
    ],
)
def test_blank_or_missing_secret_is_an_error_naming_the_key(ref: SecretRef, key: str) -> None:
    with pytest.raises(SecretError) as caught:
        ref.resolve({"PGW_TOKEN": "   "})
    assert caught.value.key == key


def test_exactly_one_source() -> None:
    SecretRef("dsn", value="x").check_one()
    SecretRef("dsn").check_one(required=False)
    for ref in (SecretRef("dsn"), SecretRef("dsn", value="x", env="Y")):
        with pytest.raises(ValueError, match="exactly one of dsn, dsn_env or dsn_file"):
            ref.check_one()


@pytest.mark.parametrize(
    ("dsn", "display"),
    [
        (f"postgresql://monitor:{SECRET}@db.example:6432/shop", "db.example:6432/shop"),
        (f"host=db user=monitor password={SECRET}", "db:5432/monitor"),
        ("postgresql://", "localhost:5432/postgres"),
    ],
)
def test_describe_dsn_never_shows_user_or_password(dsn: str, display: str) -> None:
    assert describe_dsn(dsn) == display


def test_check_dsn_never_quotes_the_dsn() -> None:
    with pytest.raises(DsnError) as caught:
        check_dsn(f"host=db password={SECRET} = nonsense")
    assert SECRET not in str(caught.value)


def test_two_stages_collect_every_error_with_its_key_path(monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(ConfigError) as caught:
        validate_document(_Target, {"name": "", "typo": 1})
    assert caught.value.errors == ["name: String should have at least 1 character", "typo: unknown key"]
    with pytest.raises(ConfigError, match="must be a mapping"):
        validate_document(_Target, [1])

    errors = Errors()
    target = validate_document(_Target, {"name": "a", "dsn_env": "PGW_UNSET"})
    assert errors.dsn(SecretRef.of(target, "dsn"), "targets.0", {}) is None
    assert errors.dsn(SecretRef("dsn", value=f"password={SECRET} = x"), "targets.1") is None
    with pytest.raises(ConfigError) as caught:
        errors.raise_if_any()
    assert caught.value.errors[0].startswith("targets.0.dsn_env: environment variable PGW_UNSET")
    assert caught.value.errors[1].startswith("targets.1.dsn: the DSN does not parse")
    assert SECRET not in str(caught.value)


def test_config_errors_are_printed_under_their_source(capsys: pytest.CaptureFixture[str]) -> None:
    assert print_config_errors("responder.yml", ["a.b: bad", "c: worse"]) == 2
    assert (
        capsys.readouterr().err
        == "responder.yml: configuration invalid, 2 error(s):\n  a.b: bad\n  c: worse\n"
    )

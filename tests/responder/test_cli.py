"""`pgwarden-responder`'s subcommands: each listed by `--help` with a line of its own, each with its own
`--help` and its own usage errors; `recover` reads the configuration named before it too."""

from __future__ import annotations

from pathlib import Path

import pytest

from responder.cli import main

SUBCOMMANDS = ("recover", "report")


def _exit(argv: list[str]) -> int:
    with pytest.raises(SystemExit) as stopped:
        main(argv)
    return int(stopped.value.code or 0)


def test_help_lists_every_subcommand_with_a_description(capsys: pytest.CaptureFixture[str]) -> None:
    assert _exit(["--help"]) == 0
    text = capsys.readouterr().out
    assert "subcommands:" in text
    assert "recover             guided point-in-time recovery" in text
    assert "report              build a maintenance report now" in text


@pytest.mark.parametrize("name", SUBCOMMANDS)
def test_each_subcommand_has_its_help(name: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert _exit([name, "--help"]) == 0
    text = capsys.readouterr().out
    assert text.startswith(f"usage: pgwarden-responder {name} [-h]")
    assert "--config" in text


@pytest.mark.parametrize("name", SUBCOMMANDS)
def test_an_unknown_flag_is_the_subcommands_usage_error(
    name: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert _exit([name, "--no-such-flag"]) == 2
    err = capsys.readouterr().err
    assert f"usage: pgwarden-responder {name}" in err
    assert f"pgwarden-responder {name}: error: " in err


def test_recover_reads_the_config_named_before_or_after_it(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    broken = tmp_path / "broken.yml"
    broken.write_text("mode: sometimes\n")
    for argv in (["--config", str(broken), "recover"], ["recover", "--config", str(broken)]):
        assert main(argv) == 2
        assert f"{broken}: configuration invalid" in capsys.readouterr().err

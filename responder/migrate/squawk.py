"""squawk, the static linter of PostgreSQL migrations, run as its `squawk-cli` package ships it: its own rules and
its `.squawk.toml` (found from the working directory), its JSON reporter mapped to our findings."""

from __future__ import annotations

import json
from collections.abc import Sequence
from importlib.metadata import PackageNotFoundError, distribution
from pathlib import Path, PurePath
from typing import Any

from responder.effects import run_reader
from responder.migrate.findings import Finding

DISTRIBUTION = "squawk-cli"
TIMEOUT = 300.0  # seconds for one run over every file


class SquawkError(Exception):
    """squawk is not installed, or did not produce a report."""


def squawk_binary() -> Path:
    """The `squawk` executable the installed squawk-cli package put in place."""
    try:
        dist = distribution(DISTRIBUTION)
    except PackageNotFoundError:
        raise SquawkError(f"{DISTRIBUTION} is not installed (pip install 'pgwarden[responder]')") from None
    for file in dist.files or ():
        if file.name in ("squawk", "squawk.exe") and file.parent.name in ("bin", "Scripts"):
            path = Path(str(dist.locate_file(file))).resolve()
            if path.is_file():
                return path
    raise SquawkError(f"{DISTRIBUTION} is installed but its squawk executable is missing")


def _argument(path: Path) -> str:
    """A path squawk cannot take for an option."""
    text = str(path)
    return f"./{text}" if text.startswith("-") else text


async def run_squawk(paths: Sequence[Path], pg_version: str | None = None) -> list[Finding]:
    """squawk's findings over `paths` (lines 1-based). Its syntax errors are left out: PostgreSQL's own parser
    (`statements.parse_file`) is the judge of what is unparseable."""
    arguments = [_argument(p) for p in paths]
    # squawk reports a file as its argument, normalised ("./-x.sql" as "-x.sql"): back to the path we were given
    given = {str(PurePath(a)): p for a, p in zip(arguments, paths, strict=True)}
    command = [str(squawk_binary()), "--reporter", "json"]
    if pg_version:
        command.append(f"--pg-version={pg_version}")
    command += ["--", *arguments]
    try:
        code, stdout, stderr = await run_reader(command, TIMEOUT)
    except (OSError, TimeoutError) as exc:
        raise SquawkError(f"squawk did not run: {exc!r}") from None
    try:
        report: Any = json.loads(stdout or b"[]")
        if not isinstance(report, list):
            raise ValueError("not a list")
        return [_finding(item, given) for item in report if item.get("rule_name") != "syntax-error"]
    except (ValueError, KeyError, TypeError, AttributeError) as exc:
        message = stderr.decode(errors="replace").strip()
        raise SquawkError(f"squawk exited {code} without a JSON report ({exc}): {message}") from None


def _finding(item: dict[str, Any], given: dict[str, Path]) -> Finding:
    file = str(item["file"])
    message = str(item["message"])
    if item.get("help"):
        message += f" {item['help']}"
    return Finding(
        file=str(given.get(str(PurePath(file)), file)),
        line=int(item["line"]) + 1,  # squawk counts lines from 0
        level="error" if str(item["level"]).lower() == "error" else "warning",
        rule=str(item["rule_name"]),
        message=message,
        source="squawk",
    )

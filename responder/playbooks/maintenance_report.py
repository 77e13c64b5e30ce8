"""maintenance_report: the runbook's weekly, monthly or quarterly checklist as a report (HTML and Markdown).

Read-only everywhere: Prometheus range queries, the journal's drills and VACUUM runs, and catalog queries on
the target in a `READ ONLY` session. Schedule it like any job; `GET /reports` lists what it made.
"""

from __future__ import annotations

import asyncio
import time
from pathlib import Path
from typing import Literal

import psycopg
from pydantic import Field

from responder.core import (
    ActionContext,
    ActionParams,
    ActionResult,
    ActionSpec,
    PostgresTarget,
    TargetKind,
)
from responder.report import build_report, catalog_at, to_html, to_markdown


class MaintenanceReportParams(ActionParams):
    period: Literal["weekly", "monthly", "quarterly"] = "weekly"
    prometheus: str = Field(pattern=r"^https?://")
    selector: str = ""  # extra PromQL label matchers, e.g. `target="production"`
    out_dir: Path = Path("/var/lib/pgwarden/reports")
    read_target: bool = True  # duplicate indexes, statistics age, server version from the target itself


def _write(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.write_text(text, encoding="utf-8")
    tmp.replace(path)


async def run(ctx: ActionContext[MaintenanceReportParams]) -> ActionResult:
    params = ctx.params
    target = ctx.target
    assert isinstance(target, PostgresTarget)
    plan = {"period": params.period, "prometheus": params.prometheus, "out_dir": str(params.out_dir)}
    await ctx.save_plan(plan)
    if ctx.dry_run:
        return {"would_build": plan}
    catalog, catalog_error = None, None
    if params.read_target:
        try:
            catalog = await catalog_at(target.conninfo, credentials=target.credentials)
        except psycopg.Error as exc:
            catalog_error = f"{type(exc).__name__}: {exc}"
            ctx.log.warning("target not readable for the report", extra={"error": catalog_error})
    report = await build_report(
        params.period,
        params.prometheus,
        selector=params.selector,
        journal=ctx.journal_rows,
        catalog=catalog,
        end=time.time(),
        source=f"{params.prometheus}, {target.describe()}",
    )
    html_path = params.out_dir / f"{report.id}-{ctx.action_id}.html"
    md_path = html_path.with_suffix(".md")
    markdown = to_markdown(report)
    await asyncio.to_thread(_write, html_path, to_html(report))
    await asyncio.to_thread(_write, md_path, markdown)
    return {
        "report_id": report.id,
        "period": params.period,
        "html": str(html_path),
        "markdown": str(md_path),
        "verdicts": report.verdicts(),
        "catalog_error": catalog_error,
    }


SPEC = ActionSpec(
    params_model=MaintenanceReportParams,
    target_kind=TargetKind.POSTGRES,
    run=run,
    description="the runbook's maintenance checklist as an HTML report",
)

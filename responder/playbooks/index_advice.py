"""index_advice: query plans and index advice for a target (docs/advice.md), as a journaled action.

Read-only: generic plans of the top statements of pg_stat_statements (never executed) and hypothetical indexes
(hypopg, in the action's own session). Nothing is created: the result holds the `CREATE INDEX CONCURRENTLY`
statements to review. Schedule it (weekly) like any job, or match it to an alert; the alert's `datname`, when
it has one, narrows it to that database.
"""

from __future__ import annotations

from typing import Any

from pydantic import Field

from responder.advice.advisor import Server, Settings, advise
from responder.advice.model import Advice
from responder.core import (
    ActionContext,
    ActionFailed,
    ActionParams,
    ActionResult,
    ActionSpec,
    PostgresTarget,
    TargetKind,
)


class IndexAdviceParams(ActionParams):
    databases: list[str] = Field(
        default_factory=list
    )  # none: every database with statements (or the alert's)
    top: int = Field(default=50, ge=1, le=1000)  # statements per database, by total time
    min_saving: float = Field(default=0.5, gt=0, lt=1)  # the weighted cost an index must save


def summary(advice: Advice) -> dict[str, Any]:
    """What the journal keeps of the advice: each recommendation with its evidence in brief, and the counts."""
    return {
        "server_version": advice.server_version,
        "seconds": round(advice.seconds, 3),
        "databases": [
            {
                "database": db.database,
                "hypopg": db.hypopg,
                "hypopg_hint": db.hypopg_hint,
                "error": db.error,
                "planned": len(db.plans),
                "with_findings": sum(bool(p.findings) for p in db.plans),
                "not_planned": len(db.not_planned),
                "recommendations": [
                    {
                        "create_statement": r.create_statement,
                        "saving": round(r.saving, 4),
                        "cost_before": round(r.weighted_before, 2),
                        "cost_after": round(r.weighted_after, 2),
                        "queryids": [s.statement.queryid for s in r.served],
                        "index_bytes": r.index_bytes,
                        "write_heavy": r.write_heavy,
                    }
                    for r in db.recommendations
                ],
            }
            for db in advice.databases
        ],
    }


async def run(ctx: ActionContext[IndexAdviceParams]) -> ActionResult:
    params = ctx.params
    target = ctx.target
    assert isinstance(target, PostgresTarget)
    databases = set(params.databases) or ({target.datname} if target.datname else None)
    plan = {
        "databases": sorted(databases) if databases else "all",
        "top": params.top,
        "min_saving": params.min_saving,
    }
    await ctx.save_plan(plan)
    if ctx.dry_run:
        return {"would_advise": plan}
    settings = Settings(top=params.top, min_saving=params.min_saving)
    advice = await advise(Server(target.name, target.conninfo, target.credentials), settings, databases)
    result = summary(advice)
    if advice.error:
        raise ActionFailed(advice.error, result)
    recommendations = sum(len(db["recommendations"]) for db in result["databases"])
    ctx.log.info("index advice", extra={"recommendations": recommendations, "seconds": result["seconds"]})
    return result


SPEC = ActionSpec(
    params_model=IndexAdviceParams,
    target_kind=TargetKind.POSTGRES,
    run=run,
    description="query plans and index advice (hypothetical indexes; nothing is created)",
)

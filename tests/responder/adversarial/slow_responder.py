"""`python -m tests.responder.adversarial.slow_responder ARGS`: the responder's own `main`, with one more action,
`nap`, which sleeps for its `seconds` (an action that runs long, to be stopped midway)."""

from __future__ import annotations

import asyncio
import sys
from typing import Any

from pgwarden.durations import Duration
from responder.cli import main
from responder.core import ActionContext, ActionParams, ActionSpec, TargetKind
from responder.playbooks import default_registry


class NapParams(ActionParams):
    seconds: Duration = 60.0


async def nap(ctx: ActionContext[NapParams]) -> dict[str, Any]:
    await ctx.save_plan({"seconds": ctx.params.seconds})
    if not ctx.dry_run:
        await asyncio.sleep(ctx.params.seconds)
    return {"slept": ctx.params.seconds}


def registry() -> Any:
    reg = default_registry()
    reg.register(ActionSpec(NapParams, TargetKind.POSTGRES, nap, name="nap"))
    return reg


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:], registry()))

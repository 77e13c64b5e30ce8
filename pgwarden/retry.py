"""What the programs' tenacity retry policies share."""

from __future__ import annotations

from tenacity import RetryCallState


def error_of(state: RetryCallState) -> BaseException | None:
    """The exception the attempt raised (None when it returned), for a policy's `after`/`before_sleep` hook."""
    return state.outcome.exception() if state.outcome is not None else None

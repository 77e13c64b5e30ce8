"""What `--check-config` warns about: a configuration that loads but cannot do what it says (exit 0)."""

from __future__ import annotations

from pgwarden.durations import format_duration
from responder.config.resolve import Config


def warnings(config: Config) -> list[str]:
    """What --check-config warns about (exit 0): a configuration that loads but cannot do what it says."""
    lines = []
    if not any(p.can_approve for p in config.principals):
        waiting = [f"playbooks.{i} ({p.name})" for i, p in enumerate(config.playbooks) if p.require_approval]
        waiting += [
            f"schedules.{i} ({s.name})" for i, s in enumerate(config.schedules) if s.playbook.require_approval
        ]
        expiry = format_duration(config.schema.approval_timeout)
        lines += [
            f"warning: {where} requires approval and nobody can approve (no approvers:): its actions wait"
            f" as pending and expire after approval_timeout ({expiry})"
            for where in waiting
        ]
    if not config.principals:
        lines.append("warning: no approvers: or viewers: nobody can sign in to the console (/ui)")
    return lines

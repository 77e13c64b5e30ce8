"""Jobs on a clock: `cron` (the arithmetic of a `schedules:` entry, whose shape is `responder.config.schema`'s)
and `scheduler` (ticks, catch-up, `/schedules`).

A tick is a decision on a `ScheduleTrigger`, keyed `schedule:<name>|<scheduled time>` under the journal's unique
constraint, so two replicas, or a restart during the tick, run it once; it then goes the same way as an alert's.
"""

"""Jobs on a clock: `config` (the `schedules:` section) and `scheduler` (ticks, catch-up, `/schedules`).

A tick is a decision keyed `schedule:<name>|<scheduled time>` under the journal's unique constraint, so two
replicas, or a restart during the tick, run it once; it then goes the same way as an alert's decision.
"""

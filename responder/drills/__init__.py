"""The restore engine `restore_drill` and `recover` share: choose a source, restore it to a new instance,
wait until it is available, run SQL checks against it, and (drills) delete it, never anything untagged.

`models` are the configuration shapes (checks, connection), `engine` the RDS and SQL steps, `sweeper` what
deletes what a drill left behind, `metrics` the `pgwarden_drill_*` gauges read from the journal, and
`housekeeping` runs those two beside the scheduler.
"""

"""Query plans and index advice (issue 25): the top statements of `pg_stat_statements`, their generic plans
(never executed), what the plans show (sequential scans of large tables, large nested loops, sorts and hashes),
and the B-tree indexes that would make them cheaper, weighed with hypothetical indexes (hypopg).

`advisor.advise` runs it for one configured target; `cli` is the `pgwarden-responder advise` subcommand.
"""

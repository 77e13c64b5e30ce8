"""Scrape benchmark: pgwarden-exporter against Debian's postgres_exporter 0.11, in the same run.

It starts a throwaway PostgreSQL 15 on 127.0.0.1 and grows one database in it through the sizes (100, 2,000
and 10,000 tables by default, 3 indexes each, all in that ONE database, plus ~5,000 pg_stat_statements
entries made afresh for each size); at each size it runs three exporters against it:

- postgres_exporter 0.11.1 with bench/postgres_exporter_queries.yaml (user tables with sizes, statio tables,
  user indexes with sizes and statements), so that both export comparable per-table, per-index and
  per-statement series;
- pgwarden with every collector refreshed on each scrape (TTL 0) and no cardinality caps;
- pgwarden with its default configuration (built-in TTL caches and caps), measured warm: after a first
  scrape has filled its caches.

It scrapes them alternately, scrape by scrape (each once the exporters are idle), over HTTP without
compression, and prints per exporter the median and min-max wall-clock scrape time, the series count, the
exposition size and the RSS (VmRSS, and the peak VmHWM) of its process; the series per family prefix; whether
every scrape was complete (pg_up, collector success, cache use) and the last exposition valid; the metric
names only one of them has; and the ratios against the targets: TTL-0 scrape median <= 0.5x, warm default
scrape median <= 0.1x and peak RSS <= 0.5x postgres_exporter's (for each pgwarden configuration). It also
measures how much CPU other processes used meanwhile, and warns when that disturbed the timings. Nothing
here asserts on time: it reports.

Run from the repository root (about 4 minutes for all three sizes on 2 cores):

    .venv/bin/python -m bench.scrape           # or: make bench
    .venv/bin/python -m bench.scrape --sizes 100,2000 --scrapes 3

Every process it starts (PostgreSQL and the exporters) is stopped on exit, Ctrl-C and errors included.
Logs, configurations and each exporter's last exposition go to .bench/scrape/<tables>/.

Modules: `database` builds the tables and statements, `exporters` starts and scrapes the three exporters,
`procstat` reads their CPU and memory from /proc, `exposition` checks what they answered, `measure` runs the
alternating scrapes, `report` prints, and `__main__` is the command line.
"""

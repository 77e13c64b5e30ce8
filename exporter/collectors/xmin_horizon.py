"""What holds back VACUUM: the age of the oldest xmin of each kind of holder, and which one holds it.

VACUUM removes no row version that a transaction might still see: the oldest xmin among the open transactions
and snapshots, the prepared transactions, the replication slots (`xmin`, and `catalog_xmin` for the system
catalogs) and the standbys' feedback. Each cause is one series (0 when nothing of that kind holds an xmin) and
its oldest holder one info series, so the cardinality stays at five of each whatever the server runs. A holder
is named from `holder_min_age_xids` on: below it, every short query of a busy server would be named in turn (a
new series each scrape) though none holds anything back.

A transaction or a prepared transaction holds back its own database (and the shared catalogs); a slot and a
standby's feedback hold back every database. Autovacuum workers and walsenders are not counted as
transactions: VACUUM ignores the former, and the latter's xmin is the standby's feedback (`standby_feedback`).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import NamedTuple

from pydantic import Field

from exporter.collectors.base import RowsCollector, gauge
from exporter.collectors.options import CollectorOptions
from exporter.exposition import Exposition

CAUSES = (
    "transaction",
    "prepared_transaction",
    "replication_slot_xmin",
    "replication_slot_catalog_xmin",
    "standby_feedback",
)
HOLDER_LABELS = ("cause", "datname", "pid", "usename", "application_name", "state", "slot_name", "gid")

AGE = gauge(
    "pg_xmin_horizon_age_xids",
    "Age in transactions of the oldest xmin held by this cause (" + ", ".join(CAUSES) + "); 0 when none: "
    "VACUUM keeps every row version newer than the oldest of them.",
    ("cause",),
)
SECONDS = gauge(
    "pg_xmin_horizon_age_seconds",
    "How long the oldest holder of this cause has been open, in seconds (transaction: since its start; "
    "prepared_transaction: since PREPARE TRANSACTION).",
    ("cause",),
    "no transaction or prepared transaction holds an xmin (slots and standbys have no start time)",
)
HOLDER = gauge(
    "pg_xmin_horizon_holder_info",
    "1, naming the oldest holder of each cause: its backend (pid, usename, application_name, state, "
    "datname), slot (slot_name, datname) or prepared transaction (gid, usename as its owner, datname); from "
    "collectors.xmin_horizon.holder_min_age_xids on.",
    HOLDER_LABELS,
    "nothing holds an xmin older than collectors.xmin_horizon.holder_min_age_xids",
)


class XminHorizonOptions(CollectorOptions):
    # 100,000 transaction IDs: a minute and more of a busy server's writes, hours of a quiet one's
    holder_min_age_xids: int = Field(default=100_000, ge=0)


class Holder(NamedTuple):
    cause: str
    datname: str
    pid: str
    usename: str
    application_name: str
    state: str
    slot_name: str
    gid: str
    age_xids: int
    age_seconds: float | None


# age() of an xid: transactions assigned since (greatest() skips a NULL). One row per cause: its oldest holder.
_SQL = """
SELECT DISTINCT ON (cause) cause, datname, pid, usename, application_name, state, slot_name, gid,
       age_xids, age_seconds
FROM (
    SELECT 'transaction' AS cause, coalesce(datname, '') AS datname, pid::text AS pid,
           coalesce(usename, '') AS usename, coalesce(application_name, '') AS application_name,
           coalesce(state, '') AS state, '' AS slot_name, '' AS gid,
           greatest(age(backend_xid), age(backend_xmin))::int8 AS age_xids,
           extract(epoch FROM clock_timestamp() - xact_start)::float8 AS age_seconds
    FROM pg_stat_activity
    WHERE (backend_xid IS NOT NULL OR backend_xmin IS NOT NULL) AND pid <> pg_backend_pid()
      AND backend_type NOT IN ('walsender', 'autovacuum worker')
    UNION ALL
    SELECT 'prepared_transaction', database, '', owner, '', '', '', gid, age(transaction)::int8,
           extract(epoch FROM clock_timestamp() - prepared)::float8
    FROM pg_prepared_xacts
    UNION ALL
    SELECT 'replication_slot_xmin', coalesce(database, ''), coalesce(active_pid::text, ''), '', '',
           CASE WHEN active THEN 'active' ELSE 'inactive' END, slot_name, '', age(xmin)::int8, NULL
    FROM pg_replication_slots WHERE xmin IS NOT NULL
    UNION ALL
    SELECT 'replication_slot_catalog_xmin', coalesce(database, ''), coalesce(active_pid::text, ''), '', '',
           CASE WHEN active THEN 'active' ELSE 'inactive' END, slot_name, '', age(catalog_xmin)::int8, NULL
    FROM pg_replication_slots WHERE catalog_xmin IS NOT NULL
    UNION ALL
    SELECT 'standby_feedback', '', r.pid::text, coalesce(r.usename, ''), coalesce(r.application_name, ''),
           coalesce(r.state, ''), coalesce(s.slot_name, ''), '', age(r.backend_xmin)::int8, NULL
    FROM pg_stat_replication r LEFT JOIN pg_replication_slots s ON s.active_pid = r.pid
    WHERE r.backend_xmin IS NOT NULL
) holders
ORDER BY cause, age_xids DESC, age_seconds DESC NULLS LAST, pid
"""


class XminHorizonCollector(RowsCollector[Holder, XminHorizonOptions]):
    name = "xmin_horizon"
    order = 110  # beside wraparound, which it explains
    source = "pg_stat_activity, pg_prepared_xacts, pg_replication_slots, pg_stat_replication"
    options_model = XminHorizonOptions
    families = (AGE, SECONDS, HOLDER)
    row = Holder
    sql = _SQL

    def render(self, out: Exposition, results: Sequence[tuple[str, list[Holder]]]) -> None:
        for _, holders in results:
            by_cause = {h.cause: h for h in holders}
            for cause in CAUSES:
                held = by_cause.get(cause)
                out.add(AGE, out.labels(AGE.labels, (cause,)), held.age_xids if held else 0)
            for cause in CAUSES:
                held = by_cause.get(cause)
                if held is not None and held.age_seconds is not None:
                    out.add(SECONDS, out.labels(SECONDS.labels, (cause,)), held.age_seconds)
            for cause in CAUSES:
                held = by_cause.get(cause)
                if held is not None and held.age_xids >= self.options.holder_min_age_xids:
                    out.add(HOLDER, out.labels(HOLDER_LABELS, held[: len(HOLDER_LABELS)]), 1)

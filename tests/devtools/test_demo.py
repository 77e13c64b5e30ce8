"""`make demo` as a user runs it: DEMO_ONCE=1 plays the runbook through the whole loop once and exits 0 only if
every step happened (query cancelled, storage grown 100 → 125 GiB, the scale-up approved in the console and
the instance scaled one class up, the drill, a statistics refresh left waiting for an approval, the index
advice), printing the steps in the order they happened."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from devtools.demo import SETTLE, Timeline
from devtools.demo_shop import ADVISED
from devtools.pgserver import PostgresUnavailable, find_bindir
from tests.support.services import missing_service

pytestmark = pytest.mark.slow  # the whole demo, once for the module

ROOT = Path(__file__).resolve().parents[2]
TIMELINE_LINE = re.compile(r"^\[\s*(-?\d+\.\d+)s\] (.+)$")
MIGRATION_STARTED = re.compile(
    r"^migration (\d+) started: `ALTER TABLE orders ADD COLUMN note text` through pgwarden-responder migrate run$"
)
MIGRATION_APPLIED = re.compile(
    r"^migration (\d+) applied: ALTER TABLE waited behind the report's (\d+) s transaction; cancelled (\d+) times"
    r" to let (\d+) writes through; applied at (\d+\.\d) s; longest write stall (\d+\.\d) s$"
)
# The guarded migration's lines carry its journal id and its figures, the index advice's headline its counts and
# seconds: the README shows them with other numbers.
MEASURED = re.compile(r"^(migration \d+ |the report commits after |index advice for shop in )")
# Each cause before its effect, as PostgreSQL, Prometheus, the responder's journal and the demo dated them.
CHAINS = (
    (
        "query started: SELECT pg_sleep(600)",
        "alert PostgresLongRunningQuery firing",
        "webhook received: kill-long-queries",
        "kill-long-queries started",
        "backend cancelled by the responder",
        "kill-long-queries: succeeded",
    ),
    (
        "free storage drops to 5 GiB",
        "alert RDSFreeStorageLow firing",
        "webhook received: grow-storage",
        "storage grown 100 → 125 GiB",
        "CPU climbs to 95%",
        "alert RDSCPUHigh firing",
        "webhook received: scale-up-on-cpu",
        "scale-up-on-cpu: waiting for an approval",
        "scale-up-on-cpu: approved in the console by demo",
        "scale-up-on-cpu started",
        "instance scaled db.t3.medium → db.r6g.large",
        "restore drill requested: POST /schedules/weekly-restore-test/run",
        "job journaled: weekly-restore-test",
        "weekly-restore-test: succeeded",
        # moto makes a restored instance available at once: 0 s
        "drill restored in 0 s, 2/2 checks passed, instance deleted",
        "statistics refresh requested: POST /schedules/refresh-shop-statistics/run",
        "job journaled: refresh-shop-statistics",
        "refresh-shop-statistics: waiting for an approval",
    ),
    (  # beside them, once the migration no longer locks shop.orders
        "the report commits after ",
        "index advice requested: POST /schedules/index-advice/run",
        "job journaled: index-advice",
        "index-advice started",
        "index-advice: succeeded",
        "index advice for shop in ",
    ),
)


@pytest.fixture(scope="module")
def demo() -> subprocess.CompletedProcess[str]:
    try:
        find_bindir()
    except PostgresUnavailable as exc:
        missing_service(f"PostgreSQL ({exc})")
    return subprocess.run(
        [sys.executable, "-m", "devtools.demo"],
        cwd=ROOT,
        env=dict(os.environ, DEMO_ONCE="1"),
        capture_output=True,
        text=True,
        timeout=240,
    )


def test_demo_once_shows_live_metrics(demo: subprocess.CompletedProcess[str]) -> None:
    assert demo.returncode == 0, demo.stdout + demo.stderr
    out = demo.stdout
    assert "demo: every step happened" in out and "stopped" in out
    for step in ("query started", "alert PostgresLongRunningQuery firing", "backend cancelled by the responder",
                 "storage grown 100 → 125 GiB", "instance scaled db.t3.medium → db.r6g.large"):  # fmt: skip
        assert step in out, step
    assert "/ui (sign in with demo-approver-token-change-me)" in out  # the console and an approver's token
    assert re.search(
        r"^demo: refresh-shop-statistics waits for your approval: http://\S+/ui/approvals$", out, re.M
    )
    # it stays waiting: nothing after it says it started or ended
    assert "refresh-shop-statistics started" not in out and "refresh-shop-statistics: " not in out.replace(
        "refresh-shop-statistics: waiting for an approval", ""
    )
    assert "demo-monitor-pw" not in out + demo.stderr  # the DSNs' passwords never show


def test_the_timeline_is_in_the_order_things_happened(demo: subprocess.CompletedProcess[str]) -> None:
    assert demo.returncode == 0, demo.stdout + demo.stderr
    timeline = [(float(m[1]), m[2]) for line in demo.stdout.splitlines() if (m := TIMELINE_LINE.match(line))]
    times = [at for at, _ in timeline]
    assert times == sorted(times), demo.stdout
    texts = [text for _, text in timeline]
    for chain in CHAINS:
        positions = [_position(texts, step) for step in chain]
        assert positions == sorted(positions), (chain, texts)


def test_the_guarded_migration_waits_for_the_report_and_lets_the_writes_through(
    demo: subprocess.CompletedProcess[str],
) -> None:
    """`migrate run` of an ALTER TABLE behind the report's open transaction: journaled in the responder's journal
    (the timeline reads it from GET /actions), cancelled by the watchdog while writes queued behind it, applied
    once the report committed; the writes never waited for the whole transaction."""
    assert demo.returncode == 0, demo.stdout + demo.stderr
    timeline = [(float(m[1]), m[2]) for line in demo.stdout.splitlines() if (m := TIMELINE_LINE.match(line))]
    texts = [text for _, text in timeline]
    opened = _position(texts, "a report opens a transaction on shop.orders for 8 s")
    committed = _position(texts, "the report commits after ")
    (started,) = [i for i, text in enumerate(texts) if MIGRATION_STARTED.match(text)]
    (applied,) = [i for i, text in enumerate(texts) if MIGRATION_APPLIED.match(text)]
    assert opened < started < committed < applied, texts
    begun, figures = MIGRATION_STARTED.match(texts[started]), MIGRATION_APPLIED.match(texts[applied])
    assert begun is not None and figures is not None and figures[1] == begun[1]  # the same journal row
    held, cancels, writes, at, stall = (
        int(figures[2]),
        int(figures[3]),
        int(figures[4]),
        figures[5],
        figures[6],
    )
    assert held >= 8 and cancels >= 1 and writes > 0
    assert float(stall) < held - 2, texts[applied]  # naked, the writes would wait out the transaction
    assert float(at) == pytest.approx(timeline[applied][0], abs=0.06)


def test_the_index_advice_of_the_shop_is_printed_with_its_indexes(
    demo: subprocess.CompletedProcess[str],
) -> None:
    """The weekly `index_advice` schedule, run now: its headline on the timeline, then each index it recommends
    for the shop's reads (`devtools.demo_shop`), in the advisor's order."""
    assert demo.returncode == 0, demo.stdout + demo.stderr
    lines = demo.stdout.splitlines()
    (headline,) = [i for i, line in enumerate(lines) if "] index advice for shop in " in line]
    assert re.search(r"\d+ statements planned, 4 with findings, 3 indexes recommended$", lines[headline])
    indexes = lines[headline + 1 : headline + 1 + len(ADVISED)]
    for line, (table, columns) in zip(indexes, ADVISED, strict=True):
        quoted = ", ".join(f'"{c}"' for c in columns)
        assert line.startswith(
            f'    CREATE INDEX CONCURRENTLY ON "public"."{table}" ({quoted});  -- cost '
        ), line


def _position(texts: list[str], step: str) -> int:
    (index,) = [i for i, text in enumerate(texts) if text.startswith(step)]
    return index


def test_an_effect_noticed_first_is_held_back_and_printed_after_its_cause(
    capsys: pytest.CaptureFixture[str],
) -> None:
    timeline = Timeline()
    t0 = timeline.start
    timeline.event(
        "backend stopped", t0 + 7.30, "backend cancelled by the responder"
    )  # read from the log first
    timeline.release(read_from=t0 + 7.30 + SETTLE / 2)
    assert capsys.readouterr().out == ""  # too recent: a source read since may still show something earlier
    timeline.event("webhook received: kill-long-queries", t0 + 7.26)  # the journal, read afterwards
    timeline.event("backend stopped", t0 + 9.0, "noticed again: ignored")
    timeline.release(read_from=t0 + 7.30 + SETTLE)
    assert capsys.readouterr().out.splitlines() == [
        "[   7.26s] webhook received: kill-long-queries",
        "[   7.30s] backend cancelled by the responder",
    ]
    timeline.event("kill-long-queries succeeded", t0 + 8.31, "kill-long-queries: succeeded")
    timeline.release(read_from=t0 + 8.31)
    assert capsys.readouterr().out == ""
    timeline.flush()
    assert capsys.readouterr().out.splitlines() == ["[   8.31s] kill-long-queries: succeeded"]


def test_the_readme_shows_what_the_demo_prints(demo: subprocess.CompletedProcess[str]) -> None:
    """The README's sample is this demo's output: the same steps (an alert's `pending` line may be missed when
    a rule evaluation goes straight to firing), its closing lines, and the five URLs it says are printed."""
    assert demo.returncode == 0, demo.stdout + demo.stderr
    readme = (ROOT / "README.md").read_text()
    sample = re.search(r"```\n(\[\s*\d+\.\d+s\] query started.*?)```", readme, re.S)
    assert sample, "the README's demo sample is gone"
    shown_lines = sample.group(1).splitlines()
    shown = {_shape(m[2]) for line in shown_lines if (m := TIMELINE_LINE.match(line))}
    printed = {_shape(m[2]) for line in demo.stdout.splitlines() if (m := TIMELINE_LINE.match(line))}
    assert printed <= shown, printed - shown
    assert all(re.fullmatch(r"alert \w+ pending", text) for text in shown - printed), shown - printed
    for line in (line for line in shown_lines if line.startswith("demo:")):
        assert re.sub(r"http://\S+", "", line) in re.sub(r"http://\S+", "", demo.stdout), line
    urls = [line for line in demo.stdout.splitlines() if re.match(r"^  \w+\s+http://127\.0\.0\.1:\d+", line)]
    assert len(urls) == 5 and "prints five URLs" in readme, urls


def _shape(text: str) -> str:
    """A timeline line as the README can show it: the guarded migration's id and figures as `N`."""
    return re.sub(r"\d+(\.\d+)?", "N", text) if MEASURED.match(text) else text

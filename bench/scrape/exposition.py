"""What an exposition holds and whether it is valid, read with prometheus_client's text parser; and the few
samples each measured scrape is checked for, found by substring search (fast on 50 MB)."""

from __future__ import annotations

import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field

from prometheus_client.metrics_core import Metric
from prometheus_client.parser import text_string_to_metric_families

MAX_EXAMPLES = 4
RUNTIME_PREFIXES = ("go_", "process_", "promhttp_", "python_")
SUFFIXES = ("_bucket", "_sum", "_count", "_created")
TYPE_LINE = re.compile(r"^# TYPE (\S+)(?: (\S*))?", re.M)


@dataclass
class ExpositionReport:
    """What one exposition holds, and what is wrong with it."""

    series: int = 0
    size: int = 0
    names: dict[str, int] = field(default_factory=dict)  # series per metric name
    problems: int = 0
    examples: list[str] = field(default_factory=list)

    def problem(self, what: str, where: str) -> None:
        self.problems += 1
        if len(self.examples) < MAX_EXAMPLES:
            self.examples.append(f"{what}: {where[:150]}")

    def by_prefix(self, prefixes: Sequence[str]) -> int:
        return sum(n for name, n in self.names.items() if name.startswith(tuple(prefixes)))


class _Families:
    """The family rules prometheus_client's (lax) parser does not check: one TYPE line per family, and each
    family's lines contiguous. The parser yields a family again, or a stray sample as a family of its own,
    when a block is interrupted; a family seen again after another one began is split."""

    def __init__(self, text: str, report: ExpositionReport) -> None:
        self.report = report
        self.types: dict[str, str] = {}
        for match in TYPE_LINE.finditer(text):
            if match.group(1) in self.types:
                report.problem("second TYPE line", match.group(0))
            self.types[match.group(1)] = match.group(2) or ""
        self.closed: set[str] = set()
        self.current = ""

    def declared_name(self, family: Metric) -> str:
        """The name a TYPE line gave the family: the parser drops a counter's `_total`."""
        if family.type == "counter" and self.types.get(family.name) != "counter":
            return f"{family.name}_total"
        return str(family.name)

    def sample_names(self, family: Metric) -> Iterator[str]:
        """Each sample's name as written: the parser adds `_total` to a counter declared without it."""
        renamed = family.type == "counter" and self.types.get(family.name) == "counter"
        for sample in family.samples:
            yield str(family.name) if renamed else str(sample.name)

    def family_of(self, name: str) -> str:
        for suffix in SUFFIXES:
            base = name.removesuffix(suffix)
            if base != name and self.types.get(base) in ("histogram", "summary"):
                return base
        return name

    def enter(self, family: Metric) -> None:
        key = self.family_of(self.declared_name(family))
        if key == self.current:
            return
        if key in self.closed:
            self.report.problem(f"{key} is split in two blocks", key)
        if self.current:
            self.closed.add(self.current)
        self.current = key


def analyse(body: bytes) -> ExpositionReport:
    """Series count, bytes, series per name; a parse error, duplicate series and family-rule breaches."""
    report = ExpositionReport(size=len(body))
    try:
        text = body.decode()
    except UnicodeDecodeError as exc:
        report.problem("not UTF-8", str(exc))
        text = body.decode(errors="replace")
    families = _Families(text, report)
    seen: set[tuple[str, tuple[tuple[str, str], ...]]] = set()
    names = report.names
    try:
        for family in text_string_to_metric_families(text):
            families.enter(family)
            for name, sample in zip(families.sample_names(family), family.samples, strict=True):
                report.series += 1
                names[name] = names.get(name, 0) + 1
                key = (name, tuple(sorted(sample.labels.items())))
                if key in seen:
                    report.problem("duplicate series", f"{name}{sample.labels}")
                seen.add(key)
    except ValueError as exc:  # the parser stops at the first line it cannot read
        report.problem("invalid exposition", f"{exc!r} after {report.series:,} series")
    if body and not body.endswith(b"\n"):
        report.problem("no final line feed", text[-80:])
    return report


AGE_METRIC = "pg_exporter_collector_data_age_seconds"


def samples_of(body: bytes, name: str) -> list[tuple[str, str]]:
    """(labels, value) of every sample of metric `name`, found by substring search (fast on 50 MB)."""
    found = []
    needle = b"\n" + name.encode()
    pos = body.find(needle)
    while pos != -1:
        end = body.find(b"\n", pos + 1)
        rest = body[pos + len(needle) : end if end != -1 else len(body)].decode(errors="replace")
        if rest[:1] in ("{", " "):
            labels, _, value = rest.rpartition(" ")
            found.append((labels, value))
        pos = body.find(needle, pos + 1)
    return found


def collector_name(labels: str) -> str:
    match = re.search(r'collector="([^"]*)"', labels)
    return match.group(1) if match else labels


def scrape_errors(body: bytes, pgwarden: bool) -> str:
    """Why a scrape was incomplete (pg_up not 1, a failed collector or query), or "" when it was complete."""
    errors = [f"pg_up {value}" for _, value in samples_of(body, "pg_up") if value != "1"]
    if not samples_of(body, "pg_up"):
        errors.append("no pg_up")
    if pgwarden:
        failed = samples_of(body, "pg_scrape_collector_success")
        errors += [f"collector {collector_name(lbl)} failed" for lbl, value in failed if value != "1"]
    else:
        failed = samples_of(body, "pg_exporter_last_scrape_error")
        errors += [f"pg_exporter_last_scrape_error {value}" for _, value in failed if value != "0"]
        loads = samples_of(body, "pg_exporter_user_queries_load_error")
        errors += [f"queries file not loaded {lbl}" for lbl, value in loads if value != "0"]
    return ", ".join(errors)

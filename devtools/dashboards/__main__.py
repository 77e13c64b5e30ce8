"""`python -m devtools.dashboards [--check]`: write grafana/dashboards/*.json, or check they are current."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from devtools.dashboards import OUTPUT_DIR, outputs


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Write grafana/dashboards/*.json from devtools/dashboards/.")
    parser.add_argument("--check", action="store_true", help="exit 1 when a committed file is out of date")
    parser.add_argument("--output", type=Path, default=OUTPUT_DIR)
    args = parser.parse_args(argv)
    stale = []
    for name, content in outputs().items():
        path = args.output / name
        current = path.read_text() if path.exists() else None
        if current == content:
            continue
        if args.check:
            stale.append(name)
        else:
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(content)
            print(f"wrote {path}")
    if stale:
        print(f"out of date (run python -m devtools.dashboards): {', '.join(stale)}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

"""Time the one-command report on the bundled data, phase by phase (best of --repeat runs).

Run: ``.venv/bin/python benchmarks/bench_report.py`` (or ``make bench``).
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

import sys

import mt_evidence as me
from mt_evidence.synthesis import analysis as A
from mt_evidence.reporting import report as R

sys.path.insert(0, str(Path(__file__).parent))
from bench_pool_many import best_of  # noqa: E402  (one timing helper for both benchmarks)


def timed(fn, repeat: int):
    """Best time and last result of ``fn`` over ``repeat`` runs."""
    return best_of({"fn": fn}, repeat)["fn"]


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--repeat", type=int, default=3)
    args = ap.parse_args(argv)
    rows = []
    t, ev = timed(lambda: me.load_evidence(), args.repeat)
    rows.append(("load + validate evidence", t))
    cfg = A.load_config()
    t, frame = timed(lambda: A.comparison_frame(ev, cfg), args.repeat)
    rows.append(("assemble comparisons", t))
    t, _ = timed(lambda: A.pool_windows(frame, cfg), args.repeat)
    rows.append(("pool every window", t))
    settings = R.load_settings()
    t, _ = timed(lambda: R.summary_of_findings(ev, settings), args.repeat)
    rows.append(("summary of findings + certainty", t))
    t, _ = timed(lambda: R.embedded_figures(ev, cfg), args.repeat)
    rows.append(("draw embedded figures", t))
    with tempfile.TemporaryDirectory() as tmp:
        t, _ = timed(lambda: R.build_report(None, Path(tmp), pdf=False), args.repeat)
        rows.append(("whole report, HTML only", t))
        t, _ = timed(lambda: R.build_report(None, Path(tmp), pdf=True), args.repeat)
        rows.append(("whole report, HTML + PDF", t))
    print(f"report benchmark ({len(ev.studies)} trials), best of {args.repeat}:")
    for name, secs in rows:
        print(f"  {name:<34}{secs:8.2f} s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

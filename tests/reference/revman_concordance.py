"""Re-run every pooled analysis of real RevMan 5 files and compare with the results RevMan stored in them.

    PYTHONPATH=src python tests/reference/revman_concordance.py FILE.rm5 [FILE.rm5 ...] [--out concordance.csv]

Not part of the test suite (real Cochrane files are not committed; tests/reference/README.md lists the files
checked and the results). For each file: its SHA-256, the analyses compared and within the tolerance, and the
largest absolute difference of each quantity; then a breakdown by data type, method and model over all files.
``--out`` writes every concordance row of every file to one CSV (a ``file`` column added).
"""

from __future__ import annotations

import argparse
import hashlib
import sys
from pathlib import Path

import numpy as np
import pandas as pd

from mt_evidence.evidence.revman_review import TOLERANCE, read_revman_review

QUANTITIES = ("estimate", "ci_low", "ci_high", "z", "tau2", "i2", "q")


def _max(series: pd.Series) -> str:
    s = series.dropna()
    return f"{s.max():.1e}" if len(s) else "-"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("files", nargs="+", type=Path)
    ap.add_argument("--out", type=Path, help="write every concordance row to this CSV")
    ap.add_argument("--tolerance", type=float, default=TOLERANCE)
    args = ap.parse_args(argv)
    frames = []
    print("| file | sha256 (first 12) | analyses | compared | within | not estimable (both) | no total in RevMan | "
          "max difference |")
    print("|---|---|---|---|---|---|---|---|")
    for path in args.files:
        digest = hashlib.sha256(path.read_bytes()).hexdigest()[:12]
        review = read_revman_review(path)
        conc = review.concordance(args.tolerance)
        conc.insert(0, "file", path.name)
        frames.append(conc)
        compared = conc["status"].isin(["compared", "differs_in_estimability"])
        within = int((conc["within_tolerance"] == True).sum())  # noqa: E712 - object column
        print(f"| {path.name} | {digest} | {len(conc)} | {int(compared.sum())} | {within} | "
              f"{int((conc['status'] == 'not_estimable').sum())} | "
              f"{int(conc['status'].isin(['not_pooled', 'not_stored']).sum())} | {_max(conc['max_abs_diff'])} |")
    allc = pd.concat(frames, ignore_index=True)
    comp = allc[allc["status"] == "compared"]
    print()
    print("| data type | method | model | analyses compared | within | " + " | ".join(QUANTITIES) + " |")
    print("|---" * (5 + len(QUANTITIES)) + "|")
    for (dt, meth, model), g in comp.groupby(["data_type", "method", "model"]):
        cells = " | ".join(_max(g[f"diff_{q}"]) for q in QUANTITIES)
        print(f"| {dt} | {meth} | {model} | {len(g)} | {int(g['within_tolerance'].astype(bool).sum())} | {cells} |")
    differ = allc[(allc["within_tolerance"] == False)]  # noqa: E712 - object column
    total = int(allc["status"].isin(["compared", "differs_in_estimability"]).sum())
    print(f"\n{total - len(differ)} of {total} analyses within {args.tolerance:g} of RevMan; {len(differ)} differ; "
          f"largest difference {np.nanmax(comp['max_abs_diff']):.2e}")
    if len(differ):
        print(differ[["file", "analysis", "data_type", "measure", "method", "model", "status", "max_abs_diff",
                      "note"]].to_string(index=False))
    if args.out:
        allc.to_csv(args.out, index=False)
    return 0 if differ.empty else 1


if __name__ == "__main__":
    sys.exit(main())

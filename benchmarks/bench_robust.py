"""Time the long robustness computations: GOSH over every subset and permutation tests (best of --repeat runs).

Goal: GOSH with k = 20 studies, all 1,048,575 subsets, DerSimonian-Laird, in under 2 s.
Run: ``.venv/bin/python benchmarks/bench_robust.py`` (SYNTHETIC data: random draws, not trials).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

import mt_evidence as me

sys.path.insert(0, str(Path(__file__).parent))
from bench_pool_many import best_of as _best_of  # noqa: E402  (one timing helper for every benchmark)


def best_of(fn, repeat: int):
    """Best time and last result of one function."""
    return _best_of({"fn": fn}, repeat)["fn"]


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--k", type=int, default=20)
    args = ap.parse_args(argv)
    rng = np.random.default_rng(2026)
    k = args.k
    y, v = rng.normal(0.3, 0.25, k), rng.uniform(0.01, 0.2, k)
    rows = []
    for method in ("DL", "FE"):
        t, r = best_of(lambda m=method: me.gosh(y, v, method=m, subsets=2**k), args.repeat)
        rows.append((f"GOSH {method}, k = {k}, all {r.n_subsets:,} subsets", t))
    t, r = best_of(lambda: me.gosh(y, v, method="DL", subsets=10**6, seed=1), args.repeat)
    rows.append((f"GOSH DL, k = {k}, {r.n_subsets:,} random subsets", t))
    t, r = best_of(lambda: me.gosh(y[:12], v[:12], method="REML"), 1)
    rows.append((f"GOSH REML, k = 12, all {r.n_subsets:,} subsets", t))
    t, r = best_of(lambda: me.permutation_test(y, v, iter=1000, seed=1), args.repeat)
    rows.append((f"permutation test, pooled effect, REML, k = {k}, {r.n_perm} sign flips", t))
    x = rng.normal(size=k)
    t, r = best_of(lambda: me.permutation_test(y, v, {"x": x}, iter=1000, seed=1), args.repeat)
    rows.append((f"permutation test, one moderator, REML, k = {k}, {r.n_perm} permutations", t))
    t, r = best_of(lambda: me.permutation_test(y[:16], v[:16], exact=True, method="DL"), 1)
    rows.append((f"permutation test, exact, DL, k = 16, {r.n_perm:,} sign flips", t))
    print(f"robustness benchmark, best of {args.repeat}:")
    for name, secs in rows:
        print(f"  {name:<66}{secs:8.2f} s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

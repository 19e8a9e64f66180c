"""Time the long robustness computations: GOSH over every subset and permutation tests (best of --repeat runs).

Goal: GOSH with k = 20 studies, all 1,048,575 subsets, DerSimonian-Laird, in under 2 s.
Run: ``.venv/bin/python benchmarks/bench_robust.py`` (SYNTHETIC data: random draws, not trials).
``--dask K`` times GOSH (DL, or ``--method``) on every subset of K studies in memory, and with ``chunk_rows``
on dask's local scheduler and on a local dask.distributed cluster of 2 worker processes (one thread each),
checking that the numbers are the same to the bit.
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
    ap.add_argument("--dask", type=int, metavar="K", help="only GOSH on dask, every subset of K studies")
    ap.add_argument("--chunk-rows", type=int, default=2**19)
    ap.add_argument("--method", default="DL", help="the estimator of --dask")
    args = ap.parse_args(argv)
    if args.dask:
        return bench_dask(args.dask, args.chunk_rows, args.repeat, args.method)
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


def bench_dask(k: int, chunk_rows: int, repeat: int, method: str = "DL") -> int:
    import distributed as dd

    rng = np.random.default_rng(2026)
    y, v = rng.normal(0.3, 0.25, k), rng.uniform(0.01, 0.2, k)
    rows = []
    t, here = best_of(lambda: me.gosh(y, v, method=method, subsets=2**k), repeat)
    rows.append(("in memory", t))
    t, local = best_of(lambda: me.gosh(y, v, method=method, subsets=2**k, chunk_rows=chunk_rows), repeat)
    rows.append((f"dask local scheduler (threads), chunk_rows={chunk_rows:,}", t))
    with dd.LocalCluster(n_workers=2, threads_per_worker=1, dashboard_address=None) as cluster, dd.Client(cluster):
        t, there = best_of(lambda: me.gosh(y, v, method=method, subsets=2**k, chunk_rows=chunk_rows), repeat)
    rows.append((f"dask.distributed, 2 worker processes, chunk_rows={chunk_rows:,}", t))
    for other in (local, there):
        assert all(np.array_equal(here.table[c], other.table[c]) for c in here.table), "numbers differ"
        assert np.array_equal(here.incl, other.incl), "membership differs"
    print(f"GOSH {method}, k = {k}, all {here.n_subsets:,} subsets, best of {repeat} (the same numbers to the bit):")
    for name, secs in rows:
        print(f"  {name:<66}{secs:8.2f} s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

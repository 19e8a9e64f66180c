"""A simulation study on dask: a million SYNTHETIC meta-analyses (random draws, not trials) pooled in memory and in
chunks, with the time and peak memory of each way.

Every way runs in a process of its own (its peak resident memory read by ``wait4``) and computes what a
simulation study keeps (``fields=("estimate", "se", "tau2")``, REML, the compiled solvers on):

- ``imports``: the imports alone (the floor of every other row);
- ``in memory``: the whole batch as NumPy arrays, pooled at once;
- ``dask array``: the same draws made chunk by chunk on the workers (``dask.array.random``, --chunk rows a
  chunk), one task per chunk, on dask's threaded scheduler (``--cluster``: a local dask.distributed cluster of
  two single-threaded workers in this process);
- ``dask bag``: --bag-m analyses of 2 to k studies, each drawn from its own seed on the workers
  (``db.range(m).map(draw)``), one task per partition.

The two array ways pool the same draws, so their checksums (the sum of the estimates) must agree to the bit.
Run: ``.venv/bin/python benchmarks/bench_simulation.py`` (default: 1,000,000 analyses of k = 20, chunks of
50,000; ``make bench`` runs it so).
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
FIELDS = ("estimate", "se", "tau2")


def draws(m: int, k: int, chunk: int):
    """(Y, V) as dask arrays of m rows, drawn chunk by chunk: variances uniform on [0.01, 0.5], effects around
    0.2 with tau^2 = 0.1 (seed 2026)."""
    import dask.array as da

    rng = da.random.default_rng(2026)
    V = rng.uniform(0.01, 0.5, size=(m, k), chunks=(chunk, k))
    Y = 0.2 + da.sqrt(V + 0.1) * rng.standard_normal(size=(m, k), chunks=(chunk, k))
    return Y, V


def draw_one(seed: int) -> dict:
    """One analysis of 2 to 20 studies from its own seed (the bag's generator)."""
    import numpy as np

    rng = np.random.default_rng(seed)
    k = int(rng.integers(2, 21))
    v = rng.uniform(0.01, 0.5, size=k)
    return {"yi": rng.normal(0.2, np.sqrt(v + 0.1)), "vi": v}


def child(way: str, m: int, k: int, chunk: int, bag_m: int, cluster: bool) -> None:
    """Run one way and print 'seconds checksum'."""
    import numpy as np

    import mt_evidence as me
    from mt_evidence.stats import compiled

    if compiled.available():
        compiled.use(True)
        me.pool_many(np.ones((64, 3)), np.ones((64, 3)), fields=FIELDS)  # load the solvers before the clock
    if way == "imports":
        import dask.array  # noqa: F401

        print("0 0")
        return
    client = None
    if cluster and way != "in memory":
        import distributed

        client = distributed.Client(distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=False,
                                                             dashboard_address=None))
    t0 = time.perf_counter()
    if way == "in memory":
        Y, V = (a.compute() for a in draws(m, k, chunk))
        res = me.pool_many(Y, V, method="REML", fields=FIELDS)
    elif way == "dask array":
        res = me.pool_many(*draws(m, k, chunk), method="REML", fields=FIELDS)
    else:
        import dask.bag as db

        res = me.pool_many(db.range(bag_m, npartitions=max(1, bag_m // chunk)).map(draw_one), method="REML",
                           fields=FIELDS)
    seconds = time.perf_counter() - t0
    if client is not None:
        client.close()
    print(f"{seconds} {float(np.sum(res.estimate))!r}")


def run(way: str, args) -> tuple[float, float, str]:
    """(seconds, peak resident memory in MB, checksum) of one way in a process of its own."""
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(filter(None, [str(ROOT / "src"), os.environ.get("PYTHONPATH")])))
    cmd = [sys.executable, __file__, "--child", way, "--m", str(args.m), "--k", str(args.k), "--chunk",
           str(args.chunk), "--bag-m", str(args.bag_m)] + (["--cluster"] if args.cluster else [])
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    _, status, usage = os.wait4(proc.pid, 0)
    out, err = proc.stdout.read(), proc.stderr.read()
    if os.waitstatus_to_exitcode(status) != 0:
        raise SystemExit(f"{way} failed:\n{err[-3000:]}")
    seconds, checksum = out.split()[-2:]
    return float(seconds), usage.ru_maxrss / 1024, checksum


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--m", type=int, default=1_000_000, help="analyses (the array ways)")
    ap.add_argument("--k", type=int, default=20, help="studies per analysis (the array ways)")
    ap.add_argument("--chunk", type=int, default=50_000, help="analyses per chunk or partition")
    ap.add_argument("--bag-m", type=int, default=100_000, help="analyses in the bag")
    ap.add_argument("--cluster", action="store_true", help="a local dask.distributed cluster, not threads")
    ap.add_argument("--child", help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.child:
        child(args.child, args.m, args.k, args.chunk, args.bag_m, args.cluster)
        return 0
    print(f"simulation benchmark: {args.m:,} meta-analyses of k = {args.k} (chunks of {args.chunk:,}), "
          f"a bag of {args.bag_m:,} of k = 2 to 20; REML, fields {', '.join(FIELDS)}; "
          f"{'local dask.distributed cluster' if args.cluster else 'dask threaded scheduler'}; "
          f"load average before {os.getloadavg()[0]:.2f}")
    rows = [(way, *run(way, args)) for way in ("imports", "in memory", "dask array", "dask bag")]
    print(f"  {'way':12s} {'seconds':>8s} {'peak MB':>8s}  checksum (sum of estimates)")
    for way, seconds, mb, checksum in rows:
        print(f"  {way:12s} {seconds:8.2f} {mb:8.0f}  {checksum if way != 'imports' else ''}")
    same = rows[1][3] == rows[2][3]
    print(f"  in memory and dask array give the same estimates: {'yes' if same else 'NO'}; "
          f"load average after {os.getloadavg()[0]:.2f}")
    return 0 if same else 1


if __name__ == "__main__":
    sys.exit(main())

"""Time a change to the batch engine against a commit, by turns in one process.

On this shared 2-core host the speed of the machine moves by 30% or more from one minute to the next, so two
timings taken one after the other cannot tell a change of 3% (or even 10%). Here both engines run in the same
process, one call each in turn, on the same SYNTHETIC data (random draws, not trials; bench_pool_many's), and the
median of the per-turn ratios is reported: a change of the host's speed touches both alike. Each run also checks
that the two give the same numbers to the bit.

Run: ``.venv/bin/python benchmarks/ab_engine.py [--base HEAD] [--k 20] [--method REML DL] [--turns 40]``
(the working tree's ``src/mt_evidence/stats/intercept.py`` against the one of ``--base``).
"""

from __future__ import annotations

import argparse
import importlib.util
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

import mt_evidence.stats.intercept as new
from mt_evidence.stats import compiled
from mt_evidence.stats.conventions import resolve

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_pool_many import make_data  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
ENGINE = "src/mt_evidence/stats/intercept.py"


def load_base(rev: str):
    """The engine of commit ``rev`` as the module ``mt_evidence.stats.intercept_base`` (its relative imports
    resolve in the installed package)."""
    text = subprocess.run(["git", "-C", str(ROOT), "show", f"{rev}:{ENGINE}"], capture_output=True, text=True,
                          check=True).stdout
    path = Path(tempfile.mkdtemp()) / "intercept_base.py"
    path.write_text(text)
    spec = importlib.util.spec_from_file_location("mt_evidence.stats.intercept_base", path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


def run(engine, Y, V, conv) -> dict:
    with engine.scratch() if hasattr(engine, "scratch") else _nothing():
        return engine.pool_columns(engine.Studies.from_rows(Y, V), conv)


class _nothing:
    def __enter__(self):
        return None

    def __exit__(self, *exc):
        return False


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--base", default="HEAD", help="the commit to compare with (default HEAD)")
    ap.add_argument("--k", type=int, nargs="+", default=[20])
    ap.add_argument("--m", type=int, default=2000)
    ap.add_argument("--method", nargs="+", default=["REML", "DL"])
    ap.add_argument("--turns", type=int, default=40)
    ap.add_argument("--compiled", action="store_true",
                    help="both engines with the compiled solvers on (default: the NumPy engine alone, as intercept.py "
                         "is what is compared)")
    args = ap.parse_args(argv)
    compiled.use(args.compiled)
    base = load_base(args.base)
    print(f"working tree against {args.base}: median of per-turn time ratios (below 1: the working tree is faster)")
    for k in args.k:
        Y, V = make_data(args.m, k)
        for method in args.method:
            conv = resolve(method=method, test="hksj", preset=None, adhoc=None, level=None, pi_type=None,
                           i2_type=None)
            a, b = run(base, Y, V, conv), run(new, Y, V, conv)
            same = a.keys() == b.keys() and all(
                np.array_equal(a[f], b[f], equal_nan=np.asarray(a[f]).dtype != object) for f in a)
            ta, tb = [], []
            for _ in range(args.turns):
                t0 = time.perf_counter()
                run(base, Y, V, conv)
                ta.append(time.perf_counter() - t0)
                t0 = time.perf_counter()
                run(new, Y, V, conv)
                tb.append(time.perf_counter() - t0)
            ta, tb = np.array(ta) * 1e3, np.array(tb) * 1e3
            print(f"  k = {k:3d} {method:5s} same numbers: {same!s:5s}  base {np.median(ta):7.2f} ms, working tree "
                  f"{np.median(tb):7.2f} ms (medians); ratio {np.median(tb / ta):.3f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""Time ``pool_many`` against metafor (through Rscript, when installed) and PyMARE on the same data.

Run: ``make bench`` (or ``python benchmarks/bench_pool_many.py [--m 2000] [--k 10 20]``).
The data are synthetic random meta-analyses (not trials). For every k, each tool fits the same m
meta-analyses with REML and with DerSimonian-Laird:

- mt_evidence with the Hartung-Knapp-Sidik-Jonkman test (``test="hksj"``) and every field computed (estimate,
  SE, test, CI, prediction interval, tau^2 with its SE and Q-profile CI, I^2 and H^2 with CIs, Q with its
  p-value, weights, log-likelihood); "mt_ev_noQPci" is the same without the Q-profile CI (``tau2_ci=False``);
  "mt_ev_estSE" computes only what PyMARE computes (``fields=("estimate", "se", "tau2")``); "mt_ev_numpy" is the
  first with the compiled solvers off (stats/compiled.py: what runs without numba, the same numbers);
- PyMARE's vectorised estimators (``VarianceBasedLikelihoodEstimator(method="REML")``,
  ``DerSimonianLaird``), estimates only;
- a loop of metafor's ``rma(yi, vi, method=, test="knha")`` (default control), which prints estimates, CI, test,
  tau^2, I^2, H^2 and Q but no Q-profile CI; timed inside R, so R's start-up is excluded.

Python tools: best of ``--repeat`` runs, the tools taking turns in every round (the minimum is the least disturbed
by other processes, and turns spread a change of load over every tool); R: one run.
The ratios are the tool's time over ours ("ours is x times faster"). Agreement of the estimates is printed
too, so a fast wrong answer cannot look good, and so are metafor's failed or stuck fits. The machine's load
(``uptime``) is printed before and after: timings on a loaded machine are slower and noisier.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

import mt_evidence as me
from mt_evidence.stats import compiled

R_SCRIPT = r"""
suppressPackageStartupMessages(library(metafor))
args <- commandArgs(TRUE)
Y <- as.matrix(read.csv(args[1], header = FALSE)); V <- as.matrix(read.csv(args[2], header = FALSE))
out <- list()
for (m in c("REML", "DL")) {
  est <- numeric(nrow(Y)); tau2 <- numeric(nrow(Y)); fails <- 0; stuck <- 0
  t0 <- proc.time()[["elapsed"]]
  for (i in seq_len(nrow(Y))) {
    r <- withCallingHandlers(
      tryCatch(rma(Y[i, ], V[i, ], method = m, test = "knha"), error = function(e) NULL),
      warning = function(w) {
        if (grepl("stuck", conditionMessage(w))) stuck <<- stuck + 1
        invokeRestart("muffleWarning")
      })
    if (is.null(r)) { fails <- fails + 1; est[i] <- NA; tau2[i] <- NA } else { est[i] <- r$b[1]; tau2[i] <- r$tau2 }
  }
  out[[m]] <- list(seconds = proc.time()[["elapsed"]] - t0, estimate = est, tau2 = tau2, failures = fails,
                   stuck = stuck)
}
out$version <- as.character(packageVersion("metafor"))
out$R <- R.version.string
cat(jsonlite::toJSON(out, auto_unbox = TRUE, digits = NA, na = "null"))
"""

TARGETS = {"metafor REML": 1000.0, "PyMARE REML": 4.0, "PyMARE DL": 1.0}
#: what PyMARE's estimators compute (the estimate, its covariance and tau^2): ``pool_many(fields=)`` of the same
SAME_AS_PYMARE = ("estimate", "se", "tau2")


def make_data(m: int, k: int, seed: int = 2026) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    V = rng.uniform(0.01, 0.5, size=(m, k))
    tau2 = rng.choice([0.0, 0.05, 0.2], size=(m, 1))
    Y = rng.normal(0.3, np.sqrt(V + tau2))
    return Y, V


def best_of(fns: dict, repeat: int) -> dict:
    """Best time and last result of each function, the functions taking turns in every round (so that a
    change of the machine's load during the run touches every tool alike)."""
    best = {name: float("inf") for name in fns}
    out = {}
    for _ in range(repeat):
        for name, fn in fns.items():
            t0 = time.perf_counter()
            out[name] = fn()
            best[name] = min(best[name], time.perf_counter() - t0)
    return {name: (best[name], out[name]) for name in fns}


def numpy_engine(fn, *args, **kwargs):
    """``fn`` with the compiled solvers off (the NumPy engine alone: what runs without numba)."""
    compiled.use(False)
    try:
        return fn(*args, **kwargs)
    finally:
        compiled.use(compiled.available())


def engine_line() -> str:
    if not compiled.available():
        return "engine: NumPy only (numba not installed: pip install -e '.[fast]')"
    import numba

    return f"engine: compiled solvers, numba {numba.__version__} (one thread)"


def load() -> str:
    try:
        return ", ".join(f"{x:.2f}" for x in os.getloadavg())
    except OSError:  # pragma: no cover - not on every platform
        return "unknown"


def run(m: int, k: int, repeat: int, r_loop: bool = True) -> dict:
    Y, V = make_data(m, k)
    results: dict = {"m": m, "k": k, "tools": {}, "load_before": load()}
    for method in ("REML", "DL"):  # warm-up: first-call costs (numba's compilation or cache) are not measured
        me.pool_many(Y, V, method=method)
    fns = {}
    for method in ("REML", "DL"):
        fns[("mt_evidence", method)] = lambda method=method: me.pool_many(Y, V, method=method, test="hksj")
        fns[("mt_ev_noQPci", method)] = lambda method=method: me.pool_many(Y, V, method=method, test="hksj",
                                                                           tau2_ci=False)
        fns[("mt_ev_estSE", method)] = lambda method=method: me.pool_many(Y, V, method=method, test="hksj",
                                                                          fields=SAME_AS_PYMARE)
        fns[("mt_ev_numpy", method)] = lambda method=method: numpy_engine(me.pool_many, Y, V, method=method,
                                                                          test="hksj")
    try:
        from pymare.estimators import DerSimonianLaird, VarianceBasedLikelihoodEstimator

        X = np.ones((k, 1))
        estimators = (("REML", lambda: VarianceBasedLikelihoodEstimator(method="REML")), ("DL", DerSimonianLaird))
        for method, est in estimators:
            fns[("PyMARE", method)] = lambda est=est: est().fit(y=Y.T, v=V.T, X=X).params_
    except ImportError:
        results["tools"]["PyMARE"] = "not installed (pip install -e '.[bench]')"
    for (tool, method), (secs, res) in best_of(fns, repeat).items():
        if tool == "PyMARE":
            entry = {"seconds": secs, "estimate": np.asarray(res["fe_params"]).ravel(),
                     "tau2": np.asarray(res["tau2"]).ravel()}
        else:
            entry = {"seconds": secs, "estimate": res.estimate, "tau2": res.tau2}
            if tool == "mt_evidence":
                entry["failures"] = int((~np.isfinite(res.estimate) | ~np.isfinite(res.tau2)).sum())
        results["tools"].setdefault(tool, {})[method] = entry

    if not r_loop:
        results["tools"]["metafor"] = "not run (--no-r)"
    elif shutil.which("Rscript"):
        with tempfile.TemporaryDirectory() as tmp:
            yp, vp, rp = (os.path.join(tmp, n) for n in ("y.csv", "v.csv", "bench.R"))
            np.savetxt(yp, Y, delimiter=",", fmt="%.17g")
            np.savetxt(vp, V, delimiter=",", fmt="%.17g")
            Path(rp).write_text(R_SCRIPT)
            proc = subprocess.run(["Rscript", rp, yp, vp], capture_output=True, text=True, check=False)
            if proc.returncode == 0:
                data = json.loads(proc.stdout)
                results["metafor_version"] = f"metafor {data.pop('version')} on {data.pop('R')}"
                results["tools"]["metafor"] = {
                    meth: {
                        "seconds": d["seconds"],
                        "estimate": np.array([np.nan if x is None else x for x in d["estimate"]], float),
                        "tau2": np.array([np.nan if x is None else x for x in d["tau2"]], float),
                        "failures": d["failures"],
                        "stuck": d["stuck"],
                    }
                    for meth, d in data.items()
                }
            else:
                results["tools"]["metafor"] = f"Rscript failed: {proc.stderr.strip()[:200]}"
    else:
        results["tools"]["metafor"] = "Rscript not installed"
    results["load_after"] = load()
    return results


def report(results: dict) -> str:
    ours = results["tools"]["mt_evidence"]
    lines = [
        f"pool_many benchmark: {results['m']} synthetic meta-analyses of k = {results['k']} studies "
        f"(load average {results['load_before']} before, {results['load_after']} after)",
        "",
        f"{'tool':<14}{'method':<8}{'seconds':>10}{'ours x faster':>15}{'max |diff| est':>16}{'max |diff| tau2':>17}",
    ]
    for tool, by_method in results["tools"].items():
        if isinstance(by_method, str):
            lines.append(f"{tool:<14}{by_method}")
            continue
        for method, d in by_method.items():
            ratio = d["seconds"] / ours[method]["seconds"]
            de = np.nanmax(np.abs(d["estimate"] - ours[method]["estimate"]))
            dt = np.nanmax(np.abs(d["tau2"] - ours[method]["tau2"]))
            extra = []
            if d.get("failures"):
                extra.append(f"{d['failures']} failed fits")
            if d.get("stuck"):
                extra.append(f"{d['stuck']} stuck at tau^2 = 0")
            note = f"  ({', '.join(extra)})" if extra else ""
            lines.append(f"{tool:<14}{method:<8}{d['seconds']:>10.4f}{ratio:>15.1f}{de:>16.2e}{dt:>17.2e}{note}")
    lines.append("")
    for name, target in TARGETS.items():
        tool, method = name.split()
        d = results["tools"].get(tool)
        if isinstance(d, dict):
            ratio = d[method]["seconds"] / ours[method]["seconds"]
            verdict = "met" if ratio >= target else "NOT met"
            lines.append(f"  {method} (every field, HKSJ) vs {tool}: ours is {ratio:.1f}x faster "
                         f"(target {target:g}x: {verdict})")
    pm = results["tools"].get("PyMARE")
    if isinstance(pm, dict) and "mt_ev_estSE" in results["tools"]:
        for method in ("REML", "DL"):
            ratio = pm[method]["seconds"] / results["tools"]["mt_ev_estSE"][method]["seconds"]
            target = TARGETS[f"PyMARE {method}"] if method == "DL" else None
            verdict = "" if target is None else f" (target {target:g}x: {'met' if ratio >= target else 'NOT met'})"
            lines.append(f"  {method} computing what PyMARE computes (pool_many(fields={SAME_AS_PYMARE})) vs PyMARE: "
                         f"ours is {ratio:.1f}x faster{verdict}")
    lines.append(f"  our failed fits (non-finite estimate or tau^2): REML {ours['REML']['failures']}, "
                 f"DL {ours['DL']['failures']}")
    return "\n".join(lines)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--m", type=int, default=2000, help="number of meta-analyses")
    ap.add_argument("--k", type=int, nargs="+", default=[10, 20], help="studies per meta-analysis")
    ap.add_argument("--repeat", type=int, default=7, help="runs per Python tool (the best is kept)")
    ap.add_argument("--no-r", action="store_true", help="skip the metafor loop")
    args = ap.parse_args(argv)
    print(f"{datetime.datetime.now():%Y-%m-%d %H:%M}, mt_evidence {me.__version__}, NumPy {np.__version__}")
    compiled.use(compiled.available())  # on from the start (automatic mode would switch after 500,000 analyses)
    print(engine_line())
    for k in args.k:
        res = run(args.m, k, args.repeat, r_loop=not args.no_r)
        if "metafor_version" in res:
            print(res["metafor_version"])
        print(report(res))
        print()
    return 0


if __name__ == "__main__":
    sys.exit(main())

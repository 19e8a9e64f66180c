"""Time ``pool_many`` against metafor (through Rscript, when installed) and PyMARE on the same data.

Run: ``make bench`` (or ``python benchmarks/bench_pool_many.py [--m 2000] [--k 10]``).
The data are synthetic random meta-analyses (not trials). Each tool fits the same m meta-analyses with
REML and with DL (mt_evidence computes every field, including the Q-profile CI for tau^2;
"mt_ev_noQPci" is the same without that CI; PyMARE and the metafor loop compute estimates only); we report wall time (best of ``--repeat`` runs for the Python tools, one run for R, whose
start-up time is excluded by timing inside R) and the ratio to mt_evidence. Agreement of the estimates is
checked too, so a fast wrong answer cannot look good.
"""

from __future__ import annotations

import argparse
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

R_SCRIPT = r"""
suppressPackageStartupMessages(library(metafor))
args <- commandArgs(TRUE)
Y <- as.matrix(read.csv(args[1], header = FALSE)); V <- as.matrix(read.csv(args[2], header = FALSE))
out <- list()
for (m in c("REML", "DL")) {
  est <- numeric(nrow(Y)); tau2 <- numeric(nrow(Y)); fails <- 0
  t0 <- proc.time()[["elapsed"]]
  for (i in seq_len(nrow(Y))) {
    r <- tryCatch(rma(Y[i, ], V[i, ], method = m), error = function(e) NULL)
    if (is.null(r)) { fails <- fails + 1; est[i] <- NA; tau2[i] <- NA } else { est[i] <- r$b[1]; tau2[i] <- r$tau2 }
  }
  out[[m]] <- list(seconds = proc.time()[["elapsed"]] - t0, estimate = est, tau2 = tau2, failures = fails)
}
cat(jsonlite::toJSON(out, auto_unbox = TRUE, digits = NA, na = "null"))
"""


def make_data(m: int, k: int, seed: int = 2026) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    V = rng.uniform(0.01, 0.5, size=(m, k))
    tau2 = rng.choice([0.0, 0.05, 0.2], size=(m, 1))
    Y = rng.normal(0.3, np.sqrt(V + tau2))
    return Y, V


def best_of(fn, repeat: int) -> tuple[float, object]:
    best, out = float("inf"), None
    for _ in range(repeat):
        t0 = time.perf_counter()
        out = fn()
        best = min(best, time.perf_counter() - t0)
    return best, out


def run(m: int, k: int, repeat: int) -> dict:
    Y, V = make_data(m, k)
    results: dict = {"m": m, "k": k, "tools": {}}
    for method in ("REML", "DL"):
        secs, res = best_of(lambda: me.pool_many(Y, V, method=method), repeat)
        results["tools"].setdefault("mt_evidence", {})[method] = {"seconds": secs, "estimate": res.estimate, "tau2": res.tau2}
        secs, res = best_of(lambda: me.pool_many(Y, V, method=method, tau2_ci=False), repeat)
        results["tools"].setdefault("mt_ev_noQPci", {})[method] = {"seconds": secs, "estimate": res.estimate, "tau2": res.tau2}

    try:
        from pymare.estimators import DerSimonianLaird, VarianceBasedLikelihoodEstimator

        X = np.ones((k, 1))
        for method, est in (("REML", lambda: VarianceBasedLikelihoodEstimator(method="REML")), ("DL", DerSimonianLaird)):
            def fit(est=est):
                e = est().fit(y=Y.T, v=V.T, X=X)
                return e.params_
            secs, params = best_of(fit, repeat)
            results["tools"].setdefault("PyMARE", {})[method] = {
                "seconds": secs,
                "estimate": np.asarray(params["fe_params"]).ravel(),
                "tau2": np.asarray(params["tau2"]).ravel(),
            }
    except ImportError:
        results["tools"]["PyMARE"] = "not installed (pip install -e '.[bench]')"

    if shutil.which("Rscript"):
        with tempfile.TemporaryDirectory() as tmp:
            yp, vp, rp = (os.path.join(tmp, n) for n in ("y.csv", "v.csv", "bench.R"))
            np.savetxt(yp, Y, delimiter=",", fmt="%.17g")
            np.savetxt(vp, V, delimiter=",", fmt="%.17g")
            Path(rp).write_text(R_SCRIPT)
            proc = subprocess.run(["Rscript", rp, yp, vp], capture_output=True, text=True, check=False)
            if proc.returncode == 0:
                data = json.loads(proc.stdout)
                results["tools"]["metafor"] = {
                    meth: {
                        "seconds": d["seconds"],
                        "estimate": np.array([np.nan if x is None else x for x in d["estimate"]], float),
                        "tau2": np.array([np.nan if x is None else x for x in d["tau2"]], float),
                        "failures": d["failures"],
                    }
                    for meth, d in data.items()
                }
            else:
                results["tools"]["metafor"] = f"Rscript failed: {proc.stderr.strip()[:200]}"
    else:
        results["tools"]["metafor"] = "Rscript not installed"
    return results


def report(results: dict) -> str:
    ours = results["tools"]["mt_evidence"]
    lines = [f"pool_many benchmark: {results['m']} synthetic meta-analyses of k = {results['k']} studies", ""]
    lines.append(f"{'tool':<14}{'method':<8}{'seconds':>10}{'x slower than ours':>20}{'max |diff| est':>16}{'max |diff| tau2':>17}")
    for tool, by_method in results["tools"].items():
        if isinstance(by_method, str):
            lines.append(f"{tool:<14}{by_method}")
            continue
        for method, d in by_method.items():
            ratio = d["seconds"] / ours[method]["seconds"]
            de = np.nanmax(np.abs(d["estimate"] - ours[method]["estimate"]))
            dt = np.nanmax(np.abs(d["tau2"] - ours[method]["tau2"]))
            extra = f"  ({d['failures']} failed fits)" if d.get("failures") else ""
            lines.append(f"{tool:<14}{method:<8}{d['seconds']:>10.3f}{ratio:>20.1f}{de:>16.2e}{dt:>17.2e}{extra}")
    return "\n".join(lines)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--m", type=int, default=2000, help="number of meta-analyses")
    ap.add_argument("--k", type=int, default=10, help="studies per meta-analysis")
    ap.add_argument("--repeat", type=int, default=3)
    args = ap.parse_args(argv)
    print(report(run(args.m, args.k, args.repeat)))
    return 0


if __name__ == "__main__":
    sys.exit(main())

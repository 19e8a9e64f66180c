"""Snapshot of every ``pool_many`` field, written by the engine as it was before the speed work (issue 15).

Run from the repository root:   PYTHONPATH=src python tests/reference/make_engine_snapshot.py
Writes tests/reference/engine_snapshot.json. ``tests/test_engine_snapshot.py`` checks that a faster engine
returns the same numbers (rtol 1e-12) on

- every data set of the metafor reference grid (metafor_reference.json) x 9 estimators x 4 tests x 4
  prediction-interval types, in one padded batch per setting;
- 80 SYNTHETIC random meta-analyses (random draws, not trials; k from 2 to 20, NaN-padded) with variances
  spread over two orders of magnitude, where REML/ML likelihoods are sometimes bimodal: 9 estimators x the
  z and knha tests.

The prediction-interval types change only ``pi_low``/``pi_high``, and the tests do not change the weights, so
only those fields are stored where they vary.

The snapshot was made at commit e9e9139 (the engine with the 25-point score grid for ML/REML and bracketed
regula falsi for the Q-profile). It is a record of that engine, not of metafor: metafor agreement is tested
against metafor_reference.json.
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import numpy as np

import mt_evidence as me

HERE = Path(__file__).parent
METHODS = ("FE", "DL", "HE", "HS", "SJ", "PM", "EB", "ML", "REML")
TESTS = {"z": ("z", None), "knha": ("hksj", False), "adhoc": ("hksj", True), "t": ("t", None)}
PI_TYPES = ("default", "riley", "t", "simple")
FIELDS = ("estimate", "se", "stat", "p", "ci_low", "ci_high", "pi_low", "pi_high", "tau2", "tau2_se",
          "tau2_ci_low", "tau2_ci_high", "i2", "i2_ci_low", "i2_ci_high", "h2", "h2_ci_low", "h2_ci_high",
          "q", "q_p", "s2w", "loglik", "weights")


def reference_batch() -> tuple[list[str], np.ndarray, np.ndarray]:
    ref = json.loads((HERE / "metafor_reference.json").read_text())
    ids, ys, vs = [], [], []
    for d in ref["datasets"]:
        ids.append(d["id"])
        ys.append(np.atleast_1d(d["yi"]).astype(float))
        vs.append(np.atleast_1d(d["vi"]).astype(float))
    return ids, *_pad(ys, vs)


def synthetic_batch(m: int = 80, seed: int = 15) -> tuple[np.ndarray, np.ndarray]:
    """SYNTHETIC: random draws, not trials."""
    rng = np.random.default_rng(seed)
    ys, vs = [], []
    for _ in range(m):
        k = int(rng.integers(2, 21))
        v = rng.uniform(0.005, 0.5, k) * rng.choice([1.0, 1.0, 10.0], k)
        tau2 = rng.choice([0.0, 0.02, 0.1, 0.5])
        ys.append(rng.normal(0.2, np.sqrt(v + tau2)))
        vs.append(v)
    return _pad(ys, vs)


def _pad(ys, vs) -> tuple[np.ndarray, np.ndarray]:
    kmax = max(len(y) for y in ys)
    Y = np.full((len(ys), kmax), np.nan)
    V = np.full((len(ys), kmax), np.nan)
    for i, (y, v) in enumerate(zip(ys, vs)):
        Y[i, : len(y)] = y
        V[i, : len(v)] = v
    return Y, V


def fields_of(res, names=FIELDS) -> dict:
    out = {}
    for f in names:
        a = np.asarray(getattr(res, f), dtype=float)
        if f == "weights":  # per row, without the padding
            out[f] = [[float(x) for x in row[np.isfinite(row)]] for row in a]
        else:
            out[f] = [None if not np.isfinite(x) else float(x) for x in a]
    return out


def snapshot() -> dict:
    ids, Y, V = reference_batch()
    Ys, Vs = synthetic_batch()
    cases = []
    for method in METHODS:
        for tname, (test, adhoc) in TESTS.items():
            for pt in PI_TYPES:
                res = me.pool_many(Y, V, method=method, test=test, adhoc=adhoc, pi_type=pt)
                if pt == "default":
                    names = [f for f in FIELDS if f != "weights" or tname == "z"]
                else:
                    names = ["pi_low", "pi_high"]
                cases.append({"batch": "reference", "method": method, "test": tname, "pi_type": pt,
                              "fields": fields_of(res, names)})
            if tname in ("z", "knha"):
                res = me.pool_many(Ys, Vs, method=method, test=test, adhoc=adhoc)
                names = [f for f in FIELDS if f != "weights" or tname == "z"]
                cases.append({"batch": "synthetic", "method": method, "test": tname, "pi_type": "default",
                              "fields": fields_of(res, names)})
    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True,
                            cwd=HERE).stdout.strip()
    return {"meta": {"commit": commit, "reference_ids": ids, "fields": list(FIELDS), "synthetic_seed": 15,
                     "synthetic_m": len(Ys),
                     "note": "pool_many output of the engine before the speed work; see make_engine_snapshot.py"},
            "cases": cases}


if __name__ == "__main__":
    (HERE / "engine_snapshot.json").write_text(json.dumps(snapshot(), separators=(",", ":")) + "\n")

"""The window-specific heterogeneity model against metafor 3.8 (tests/reference/window_model_reference.json, made
by tests/reference/make_window_reference.R): rma.mv(yi, V, mods = ~ long, random = ~ factor(long) | trial,
struct = "DIAG", method = "REML", test = "t")."""

import json
from pathlib import Path

import numpy as np
import pytest

from mt_evidence.stats.multilevel import fit_window_heterogeneity

REF = json.loads((Path(__file__).parent / "reference" / "window_model_reference.json").read_text())
CASES = [(d, c) for d in REF["datasets"] for c in d["cases"]]


def V_of(vi, trial, r):
    vi, trial = np.asarray(vi, float), np.asarray(trial)
    V = np.diag(vi)
    for t in np.unique(trial):
        idx = np.flatnonzero(trial == t)
        if len(idx) == 2:
            V[idx[0], idx[1]] = V[idx[1], idx[0]] = r * np.sqrt(vi[idx[0]] * vi[idx[1]])
    return V


@pytest.mark.parametrize("data,case", CASES, ids=[f"{d['name'][:24]}-r{c['correlation']}" for d, c in CASES])
def test_window_model_matches_metafor(data, case):
    long = np.asarray(data["long"], float)
    X = np.column_stack([np.ones_like(long), long])
    res = fit_window_heterogeneity(data["yi"], V_of(data["vi"], data["trial"], case["correlation"]), X,
                                   np.where(long == 1, "long", "short"), data["trial"], names=["intrcpt", "long"])
    tau2 = dict(zip(res.window_names, res.tau2))
    # metafor orders the variances by factor level: long = 0 (short) first
    ref_tau2 = {"short": case["tau2"][0], "long": case["tau2"][1]}
    for w in ("short", "long"):
        # metafor's optimiser stops a variance on the boundary at about 1e-6, where ours returns 0 exactly
        assert tau2[w] == pytest.approx(ref_tau2[w], rel=1e-5, abs=2e-5)
    c = res.coefficients
    np.testing.assert_allclose(c["estimate"], case["b"], rtol=1e-6, atol=1e-8)
    np.testing.assert_allclose(c["se"], case["se"], rtol=1e-6)
    np.testing.assert_allclose(c["ci_low"], case["ci_low"], rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(c["ci_high"], case["ci_high"], rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(c["p"], case["pval"], rtol=1e-4, atol=1e-9)
    assert res.df == case["dfs"][0]
    assert res.loglik == pytest.approx(case["loglik"], abs=1e-6)


def test_window_model_needs_three_trials():
    X = np.column_stack([np.ones(4), [0, 1, 0, 1]])
    with pytest.raises(ValueError, match="3 or more"):
        fit_window_heterogeneity([1, 2, 1, 3], np.eye(4), X, ["s", "l", "s", "l"], ["a", "a", "b", "b"])

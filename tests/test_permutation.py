"""Permutation tests against metafor's permutest (tests/reference/make_robust_reference.R)."""

import numpy as np
import pytest

import mt_evidence as me
from mt_evidence.stats import permutation as PT
from conftest import as_array as arr
from conftest import load_robust_reference

REF = load_robust_reference()
CASES = {c["id"]: c for c in REF["cases"]}
RTOL = 1e-6
TESTS = {"z": "z", "knha": "hksj"}

PERM = {p["label"]: p for p in REF["permutest"]}


def _perm_args(p):
    c = CASES[p["id"][:3] if p["id"].startswith("bcg") else p["id"]]
    y, v = np.asarray(c["yi"]), np.asarray(c["vi"])
    mods = None
    if p["id"] == "bcg7":
        y, v, mods = y[:7], v[:7], {"ablat": np.asarray(c["ablat"])[:7]}
    elif p["id"] == "bcg8":
        y, v, mods = y[:8], v[:8], {"ablat": np.asarray(c["ablat"])[:8]}
    elif "alloc" in p["label"]:
        mods = {"alloc": np.asarray(c["alloc"], dtype=object)}
    elif "ablat" in p["label"]:
        mods = {"ablat": np.asarray(c["ablat"])}
    return y, v, mods


@pytest.mark.parametrize("label", [lab for lab, p in PERM.items() if p["exact"]])
def test_exact_permutation_test_matches_permutest(label):
    p = PERM[label]
    y, v, mods = _perm_args(p)
    r = me.permutation_test(y, v, mods, method=p["method"], test=TESTS[p["test"]], exact=True)
    assert r.exact and r.n_perm == p["n_perm"] == p["exact_iter"] == r.n_exact
    np.testing.assert_allclose(r.coefficients["estimate"], arr(p["beta"]), rtol=RTOL)
    np.testing.assert_allclose(r.coefficients["stat"], arr(p["zval"]), rtol=RTOL)
    np.testing.assert_allclose(r.coefficients["p_perm"], arr(p["pval"]), rtol=0, atol=1e-10)
    assert r.qm_p_perm == pytest.approx(p["qm_p"], abs=1e-10)
    assert r.qm == pytest.approx(p["qm"], rel=RTOL)
    assert r.qm_p == pytest.approx(p["qm_p_asymptotic"], rel=RTOL)
    np.testing.assert_allclose(r.coefficients["p"], arr(p["pval_asymptotic"]), rtol=RTOL)


@pytest.mark.parametrize("label", [lab for lab, p in PERM.items() if not p["exact"]])
def test_random_permutation_test_agrees_within_monte_carlo_error(label):
    """R's random numbers differ from numpy's: the observed statistics agree exactly, the permutation p-values
    within Monte Carlo error (4 standard errors of the difference of two estimates), and the permutation
    distributions' quantiles closely."""
    p = PERM[label]
    y, v, mods = _perm_args(p)
    r = me.permutation_test(y, v, mods, method=p["method"], test=TESTS[p["test"]], iter=p["iter"], seed=2026)
    assert not r.exact and r.n_perm == p["n_perm"] == p["iter"]
    np.testing.assert_allclose(r.coefficients["stat"], arr(p["zval"]), rtol=RTOL)
    ours = r.coefficients["p_perm"].to_numpy()
    theirs = arr(p["pval"])
    pbar = np.clip((ours + theirs) / 2, 1 / p["iter"], 1)
    assert np.all(np.abs(ours - theirs) <= 4 * np.sqrt(2 * pbar * (1 - pbar) / p["iter"]) + 1e-12)
    qs = np.quantile(r.stat_perm, [0.05, 0.25, 0.5, 0.75, 0.95], axis=0)
    np.testing.assert_allclose(qs, np.asarray(p["zval_perm_quantiles"], dtype=float).reshape(5, -1), atol=0.15)
    assert r.stat_perm[0] == pytest.approx(r.coefficients["stat"].to_numpy())  # the first is the observed data


def test_permutation_test_exactness_rule_seed_and_errors():
    c = CASES["normand1999"]  # 2^9 = 512 sign vectors
    auto = me.permutation_test(c["yi"], c["vi"], iter=512)
    assert auto.exact and auto.seed is None and "exact: all 512" in repr(auto)
    rnd = me.permutation_test(c["yi"], c["vi"], iter=511)
    assert not rnd.exact and rnd.seed is not None and "random" in repr(rnd)
    a = me.permutation_test(c["yi"], c["vi"], exact=False, iter=300, seed=3)
    b = me.permutation_test(c["yi"], c["vi"], exact=False, iter=300, seed=3)
    np.testing.assert_array_equal(a.stat_perm, b.stat_perm)
    fr = a.to_frame()
    assert fr["term"].tolist() == ["intrcpt", "QM"]
    seen = []
    me.permutation_test(c["yi"], c["vi"], exact=True, chunk=100, progress=lambda d, t: seen.append((d, t)))
    assert seen[-1] == (512, 512) and len(seen) == 6
    me.permutation_test(c["yi"], c["vi"], exact=True, progress=True)
    h = CASES["hackshaw1998"]
    with pytest.raises(ValueError, match="exact test needs"):
        me.permutation_test(h["yi"], h["vi"], exact=True)
    with pytest.raises(ValueError, match="iter must be"):
        me.permutation_test(c["yi"], c["vi"], iter=1)
    with pytest.raises(ValueError, match="btt must name"):
        me.permutation_test(c["yi"], c["vi"], btt=[3])
    with pytest.raises(ValueError, match="alternative"):
        me.permutation_test(c["yi"], c["vi"], alternative="up")


def test_permutation_one_sided_and_multiset_enumeration():
    groups = np.array([0, 0, 1, 1, 1, 2])
    perms = PT._multiset_permutations(groups)
    assert len(perms) == PT._n_distinct(groups) == 60 and len({tuple(r) for r in perms}) == 60
    assert (np.sort(perms, axis=1) == np.sort(groups)).all()
    c = CASES["normand1999"]
    two = me.permutation_test(c["yi"], c["vi"], exact=True)
    lo = me.permutation_test(c["yi"], c["vi"], exact=True, alternative="less")
    hi = me.permutation_test(c["yi"], c["vi"], exact=True, alternative="greater")
    z = two.stat_perm[:, 0]
    z0 = two.coefficients["stat"].iloc[0]
    assert lo.coefficients["p_perm"].iloc[0] == pytest.approx(np.mean(z <= z0 + two.tol))
    assert hi.coefficients["p_perm"].iloc[0] == pytest.approx(np.mean(z >= z0 - two.tol))

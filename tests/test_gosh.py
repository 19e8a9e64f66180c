"""GOSH against metafor's gosh, every subset (tests/reference/make_robust_reference.R)."""

import numpy as np
import pytest

import mt_evidence as me
from conftest import as_array as arr
from conftest import load_robust_reference

REF = load_robust_reference()
CASES = {c["id"]: c for c in REF["cases"]}
RTOL = 1e-6


@pytest.mark.parametrize("j", range(len(REF["gosh"])))
def test_gosh_matches_metafor_every_subset(j):
    ref = REF["gosh"][j]
    c = CASES[ref["id"]]
    r = me.gosh(c["yi"], c["vi"], method=ref["method"])
    k = len(c["yi"])
    assert r.exact and r.n_subsets == 2**k - 1 == len(ref["k"])
    mask = (r.incl * (2 ** np.arange(k))).sum(axis=1)
    np.testing.assert_array_equal(mask, np.asarray(ref["mask"], dtype=np.int64))  # same rows, same order
    np.testing.assert_array_equal(r.table["k"], ref["k"])
    for ours, theirs in (("estimate", "estimate"), ("q", "q"), ("i2", "i2"), ("h2", "h2"), ("tau2", "tau2")):
        np.testing.assert_allclose(r.table[ours], arr(ref[theirs]), rtol=1e-9 if ref["method"] != "REML" else RTOL,
                                   atol=1e-9, err_msg=ours)
    fr = r.to_frame()
    assert fr.shape == (2**k - 1, 6 + k) and fr.iloc[:, 6:].dtypes.eq(bool).all()


def test_gosh_fast_path_equals_the_engine():
    """FE and DL by closed form (every subset, and random subsets) agree with pool_many on the same subsets."""
    c = CASES["molloy2014"]
    y, v = np.asarray(c["yi"])[:12], np.asarray(c["vi"])[:12]
    for method in ("FE", "DL"):
        fast = me.gosh(y, v, method=method)
        rnd = me.gosh(y, v, method=method, subsets=3000, seed=5)
        for res in (fast, rnd):
            sub = me.pool_many(np.where(res.incl, y, np.nan), np.where(res.incl, v, np.nan), method=method,
                               tau2_ci=False)
            np.testing.assert_allclose(res.table["estimate"], sub.estimate, rtol=1e-10, atol=1e-12)
            np.testing.assert_allclose(res.table["q"], sub.q, rtol=1e-9, atol=1e-10)
            np.testing.assert_allclose(res.table["tau2"], sub.tau2, rtol=1e-9, atol=1e-12)


def test_gosh_random_subsets():
    c = CASES["hackshaw1998"]
    r = me.gosh(c["yi"], c["vi"], method="DL", subsets=5000, seed=11)
    assert not r.exact and r.seed == 11 and r.n_subsets == 5000
    assert r.incl.any(axis=1).all() and (r.table["k"] == r.incl.sum(axis=1)).all()
    assert r.table["k"].is_monotonic_increasing
    frac = r.incl.mean()  # each study in with probability 1/2
    assert abs(frac - 0.5) < 0.01
    again = me.gosh(c["yi"], c["vi"], method="DL", subsets=5000, seed=11)
    np.testing.assert_array_equal(again.incl, r.incl)
    assert "random subsets (seed 11)" in repr(r)
    big = me.gosh(np.r_[c["yi"], c["yi"]][:70], np.r_[c["vi"], c["vi"]][:70], subsets=200, seed=1)
    assert big.incl.shape == (200, 70) and big.incl.any(axis=1).all()


def test_gosh_progress_and_errors():
    c = CASES["normand1999"]
    seen = []
    me.gosh(c["yi"], c["vi"], method="DL", chunk=64, progress=lambda done, total: seen.append((done, total)))
    assert seen[-1] == (511, 511) and len(seen) == 8
    seen.clear()
    me.gosh(c["yi"], c["vi"], method="REML", chunk=100, progress=lambda done, total: seen.append(done))
    assert seen == [100, 200, 300, 400, 500, 511]
    me.gosh(c["yi"], c["vi"], progress=True)  # draws a rich bar (to the captured terminal)
    with pytest.raises(ValueError, match="subsets must be an integer"):
        me.gosh(c["yi"], c["vi"], subsets=1)
    with pytest.raises(ValueError, match="unknown method"):
        me.gosh(c["yi"], c["vi"], method="XX")
    with pytest.raises(ValueError, match="progress must be"):
        me.gosh(c["yi"], c["vi"], progress="yes")


@pytest.mark.parametrize("method,subsets", [("FE", None), ("DL", None), ("DL", 300), ("REML", None), ("REML", 300)])
def test_gosh_reduced_result_keeps_the_same_numbers(method, subsets):
    c = CASES["normand1999"]
    kw = dict(method=method, chunk=100) if subsets is None else dict(method=method, subsets=subsets, seed=2)
    full = me.gosh(c["yi"], c["vi"], **kw)
    small = me.gosh(c["yi"], c["vi"], columns=("i2", "estimate"), membership=False, **kw)
    assert list(small.table.columns) == ["i2", "estimate"] and small.incl is None  # kept in the table's order
    assert small.n_subsets == full.n_subsets and small.table.index.equals(full.table.index)
    for col in ("i2", "estimate"):
        assert np.array_equal(small.table[col].to_numpy(), full.table[col].to_numpy()), col
    assert list(small.to_frame().columns) == ["i2", "estimate"]
    with pytest.raises(ValueError, match="kept no membership"):
        small.to_frame(membership=True)
    assert "estimate" in repr(small) and "tau2" not in repr(small)
    only_k = me.gosh(c["yi"], c["vi"], columns="k", **kw)
    assert list(only_k.table.columns) == ["k"] and only_k.table["k"].dtype == full.table["k"].dtype
    assert np.array_equal(only_k.table["k"], full.table["k"]) and np.array_equal(only_k.incl, full.incl)
    assert "models fitted" in repr(only_k) and only_k.to_frame().shape == (full.n_subsets, 1 + 9)


def test_gosh_reduced_result_errors_and_many_studies():
    c = CASES["normand1999"]
    for bad in ((), ("estimate", "I2"), "se"):
        with pytest.raises(ValueError, match="columns must name at least one of k, q, i2, h2, tau2, estimate"):
            me.gosh(c["yi"], c["vi"], columns=bad)
    with pytest.raises(ValueError, match="membership must be True or False"):
        me.gosh(c["yi"], c["vi"], membership="no")
    y, v = np.r_[c["yi"], c["yi"]][:70], np.r_[c["vi"], c["vi"]][:70]  # random memberships, not masks
    full = me.gosh(y, v, method="DL", subsets=200, seed=1)
    small = me.gosh(y, v, method="DL", subsets=200, seed=1, columns=["estimate"], membership=False)
    assert small.incl is None and np.array_equal(small.table["estimate"], full.table["estimate"])
    from mt_evidence.stats.gosh import _fast_part, _general_part  # what a dask task returns: only what is kept

    y9, v9 = np.asarray(c["yi"], float), np.asarray(c["vi"], float)
    assert set(_fast_part(y9, v9, True, 4, 0, 32, columns=("i2",), membership=False)) == {"i2"}
    assert set(_general_part(y9, v9, "REML", 100, 0, 511, columns=("i2",), membership=False)) == {"i2"}
    assert set(_general_part(y9, v9, "FE", 100, 0, 511)) == {"k", "q", "i2", "h2", "tau2", "estimate", "incl"}

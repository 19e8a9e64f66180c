"""PET-PEESE, cumulative meta-analysis and Baujat against metafor / R, the reference grid's completeness and
the public API of the robustness methods (tests/reference/make_robust_reference.R -> robust_reference.json).

The selection model, GOSH and the permutation tests have their own files (test_selection.py, test_gosh.py,
test_permutation.py)."""

import numpy as np
import pytest

import mt_evidence as me
from mt_evidence.stats import gosh as G
from mt_evidence.stats import permutation as PT
from mt_evidence.stats import robust as R
from mt_evidence.stats import selection as S
from mt_evidence.stats.bias import TooFewTrials
from conftest import as_array as arr
from conftest import load_robust_reference

REF = load_robust_reference()
CASES = {c["id"]: c for c in REF["cases"]}
RTOL = 1e-6
TESTS = {"z": "z", "knha": "hksj"}


def test_reference_versions_and_grid_complete():
    assert REF["metafor_version"].startswith("3.8")
    assert sorted(CASES) == ["baskerville2012", "bcg", "hackshaw1998", "mcdaniel1994", "molloy2014", "normand1999"]
    assert len(REF["gosh"]) == 5 and len(REF["permutest"]) == 8
    sels = [s for c in CASES.values() for s in c["selmodel"]]
    assert len(sels) == 12 and sum("error" in s for s in sels) == 1  # baskerville2012, 3 intervals
    for c in CASES.values():
        assert len([key for key in c if key.startswith("baujat_")]) == 6
        assert len([key for key in c if key.startswith("cumul_")]) == (6 if c.get("year") else 0)


def test_public_api():
    for name in ("pet_peese", "selection_model", "permutation_test", "cumulative", "baujat", "gosh"):
        assert callable(getattr(me, name)) and name in me.__all__


# ------------------------------------------------------------------------------------------------ PET-PEESE


@pytest.mark.parametrize("case", sorted(CASES))
def test_pet_and_peese_match_lm(case):
    c = CASES[case]
    r = me.pet_peese(c["yi"], c["vi"], min_k=None)
    for tab, ref in ((r.pet, c["pet"]), (r.peese, c["peese"])):
        for ours, theirs in (("estimate", "estimate"), ("se", "se"), ("stat", "tval"), ("p", "pval"),
                             ("ci_low", "ci_low"), ("ci_high", "ci_high")):
            np.testing.assert_allclose(tab[ours], ref[theirs], rtol=1e-9, err_msg=f"{case} {ours}")
        assert (tab["df"] == ref["df"]).all()


@pytest.mark.parametrize("case", sorted(CASES))
@pytest.mark.parametrize("rule", ["two-sided", "greater", "less"])
def test_pet_peese_rule(case, rule):
    c = CASES[case]
    pet = c["pet"]
    t, df, p2 = pet["tval"][0], pet["df"], pet["pval"][0]
    from scipy import stats

    p = {"two-sided": p2, "greater": stats.t.sf(t, df), "less": stats.t.cdf(t, df)}[rule]
    r = me.pet_peese(c["yi"], c["vi"], rule=rule, alpha=0.05, min_k=None)
    assert r.rule_p == pytest.approx(p, rel=1e-9)
    want = "PEESE" if p < 0.05 else "PET"
    assert r.chosen == want
    ref = c["peese"] if want == "PEESE" else c["pet"]
    assert r.estimate == pytest.approx(ref["estimate"][0], rel=1e-9)
    assert (r.ci_low, r.ci_high) == pytest.approx((ref["ci_low"][0], ref["ci_high"][0]), rel=1e-9)
    assert f"Chosen: {want}" in repr(r) and f"alpha = {0.05:g}" in repr(r)
    fr = r.to_frame()
    assert set(fr.loc[fr["chosen"], "model"]) == {want} and len(fr) == 4


def test_pet_peese_both_branches_occur_and_bad_input():
    chosen = {me.pet_peese(c["yi"], c["vi"], min_k=None).chosen for c in CASES.values()}
    assert chosen == {"PET", "PEESE"}  # the grid exercises both branches of the rule
    c = CASES["normand1999"]
    with pytest.raises(TooFewTrials):
        me.pet_peese(c["yi"], c["vi"])
    with pytest.raises(ValueError, match="rule must be one of"):
        me.pet_peese(c["yi"], c["vi"], rule="one-sided", min_k=None)
    with pytest.raises(ValueError, match="alpha"):
        me.pet_peese(c["yi"], c["vi"], alpha=5, min_k=None)
    with pytest.raises(ValueError, match="different precision"):
        me.pet_peese([0.1, 0.2, 0.3, 0.5], [0.1] * 4, min_k=None)
    with pytest.raises(ValueError, match="yi must be finite"):
        me.pet_peese([0.1, np.nan, 0.3, 0.5], [0.1, 0.2, 0.3, 0.4], min_k=None)


# ------------------------------------------------------------------------------------------------ cumulative


CUMUL = [(c, m, t) for c in sorted(CASES) if CASES[c].get("year") for m in ("REML", "DL", "FE")
         for t in ("z", "knha")]


@pytest.mark.parametrize("case,method,test", CUMUL)
def test_cumulative_matches_cumul(case, method, test):
    c = CASES[case]
    ref = c[f"cumul_{method}_{test}"]
    r = me.cumulative(c["yi"], c["vi"], order=c["year"], method=method, test=TESTS[test])
    t = r.table
    assert t["study"].tolist() == [str(i) for i in ref["ids"]]
    for ours, theirs in (("estimate", "estimate"), ("se", "se"), ("stat", "stat"), ("p", "pval"),
                         ("ci_low", "ci_low"), ("ci_high", "ci_high"), ("q", "q"), ("q_p", "q_p"), ("i2", "i2"),
                         ("h2", "h2")):
        np.testing.assert_allclose(t[ours], arr(ref[theirs]), rtol=RTOL, atol=1e-10, err_msg=ours)
    if method != "FE":
        np.testing.assert_allclose(t["tau2"], arr(ref["tau2"]), rtol=RTOL, atol=1e-10)
    assert (t["k"] == np.arange(1, len(t) + 1)).all()
    assert np.all(np.diff(np.asarray(c["year"])[t["study"].astype(int) - 1]) >= 0)


def test_cumulative_order_options_and_errors():
    c = CASES["bcg"]
    up = me.cumulative(c["yi"], c["vi"], order=c["year"], labels=[f"s{i}" for i in range(13)])
    down = me.cumulative(c["yi"], c["vi"], order=c["year"], decreasing=True)
    assert up.table["order"].is_monotonic_increasing and down.table["order"].is_monotonic_decreasing
    assert up.table["estimate"].iloc[-1] == pytest.approx(down.table["estimate"].iloc[-1], rel=1e-9)
    assert up.table["study"].iloc[0] == "s0"  # 1948, the earliest
    ties = np.flatnonzero(np.asarray(c["year"]) == 1973)  # two trials of 1973 keep their given order
    for res in (up, down):
        pos = [res.table["study"].tolist().index(name) for name in
               ([f"s{i}" for i in ties] if res is up else [str(i + 1) for i in ties])]
        assert pos[0] + 1 == pos[1]
    text = me.cumulative(c["yi"], c["vi"], order=[f"{y}" for y in c["year"]], decreasing=True)
    np.testing.assert_allclose(text.table["estimate"], down.table["estimate"], rtol=1e-12)
    plain = me.cumulative(c["yi"], c["vi"])
    assert plain.table["study"].tolist() == [str(i + 1) for i in range(13)]
    assert "Cumulative meta-analysis" in repr(up) and "tau^2 estimator: REML" in repr(up)
    with pytest.raises(ValueError, match="one sorting key per study"):
        me.cumulative(c["yi"], c["vi"], order=[1, 2])
    with pytest.raises(ValueError, match="labels has 2 entries"):
        me.cumulative(c["yi"], c["vi"], labels=["a", "b"])


# ----------------------------------------------------------------------------------------------------- Baujat


@pytest.mark.parametrize("case,method,test", [(c, m, t) for c in sorted(CASES) for m in ("REML", "DL", "FE")
                                              for t in ("z", "knha")])
def test_baujat_matches_metafor(case, method, test):
    c = CASES[case]
    ref = c[f"baujat_{method}_{test}"]
    r = me.baujat(c["yi"], c["vi"], method=method, test=TESTS[test])
    np.testing.assert_allclose(r.table["x"], ref["x"], rtol=RTOL, atol=1e-12)
    np.testing.assert_allclose(r.table["y"], ref["y"], rtol=RTOL, atol=1e-12)
    if method == "FE":  # the contributions add up to Q
        assert r.table["x"].sum() == pytest.approx(r.q, rel=1e-10)


def test_robust_module_layout():
    """Each method lives in its module and is re-exported unchanged."""
    assert me.pet_peese is R.pet_peese and me.cumulative is R.cumulative and me.baujat is R.baujat
    assert me.selection_model is S.selection_model and me.permutation_test is PT.permutation_test
    assert me.gosh is G.gosh

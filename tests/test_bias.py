"""Small-study tests, leave-one-out and influence diagnostics against metafor (tests/reference/make_bias_reference.R)."""

import json
from pathlib import Path

import numpy as np
import pytest

from mt_evidence.stats import bias as B

REF = json.loads((Path(__file__).parent / "reference" / "bias_reference.json").read_text())
CASES = {c["id"]: c for c in REF["cases"]}
RTOL = 1e-6


def test_reference_versions_recorded():
    assert REF["metafor_version"].startswith("3.8") and len(CASES) == 4


@pytest.mark.parametrize("case", sorted(CASES))
def test_egger_matches_regtest(case):
    c = CASES[case]
    lm = B.egger_test(c["yi"], c["vi"], model="lm", min_k=None)
    for k in ("zval", "pval", "est", "ci_low", "ci_high"):
        assert lm[k] == pytest.approx(c["egger_lm"][k], rel=RTOL), k
    assert lm["dfs"] == c["egger_lm"]["dfs"]
    rma = B.egger_test(c["yi"], c["vi"], model="rma", min_k=None)
    for k in ("zval", "pval", "est", "ci_low", "ci_high"):
        assert rma[k] == pytest.approx(c["egger_rma"][k], rel=RTOL), k


@pytest.mark.parametrize("case", sorted(CASES))
def test_rank_test_matches_ranktest(case):
    c = CASES[case]
    r = B.rank_test(c["yi"], c["vi"], min_k=None)
    assert B.begg_test(c["yi"], c["vi"], min_k=None) == r  # the same test by its authors' name
    assert r["tau"] == pytest.approx(c["rank"]["tau"], rel=RTOL, abs=1e-12)
    assert r["pval"] == pytest.approx(c["rank"]["pval"], rel=RTOL)


@pytest.mark.parametrize("case,method", [(c, m) for c in sorted(CASES) for m in ("REML", "DL", "FE")])
def test_leave_one_out_matches_leave1out(case, method):
    c = CASES[case]
    ref = c[f"leave1out_{method}"]
    got = B.leave_one_out(c["yi"], c["vi"], method=method)
    for k in ("estimate", "se", "ci_low", "ci_high", "q") + (("tau2",) if method != "FE" else ()):
        np.testing.assert_allclose(got[k], ref[k], rtol=RTOL, atol=1e-10, err_msg=k)
    if method == "FE":  # metafor leaves tau^2 empty for the common-effect model
        assert (got["tau2"] == 0).all() and ref["tau2"] is None
    np.testing.assert_allclose(got["i2"], ref["i2"], rtol=RTOL, atol=1e-8)


@pytest.mark.parametrize("case,method", [(c, m) for c in sorted(CASES) for m in ("REML", "DL", "FE")])
def test_influence_matches_metafor(case, method):
    c = CASES[case]
    ref = c[f"influence_{method}"]
    got = B.influence(c["yi"], c["vi"], method=method)
    for k in ("rstudent", "dffits", "cook_d", "cov_r", "tau2_del", "qe_del", "hat", "weight", "dfbetas"):
        np.testing.assert_allclose(got[k], ref[k], rtol=RTOL, atol=1e-10, err_msg=k)


def test_bias_tests_refuse_too_few_trials():
    c = CASES["normand1999"]  # 9 trials
    with pytest.raises(B.TooFewTrials, match="at least 10 trials"):
        B.egger_test(c["yi"], c["vi"])
    with pytest.raises(B.TooFewTrials, match="at least 10 trials"):
        B.rank_test(c["yi"], c["vi"])
    assert np.isfinite(B.egger_test(c["yi"], c["vi"], min_k=5)["pval"])


@pytest.mark.parametrize("case,method,est", [(c, m, e) for c in sorted(CASES) for m in ("REML", "FE")
                                             for e in ("L0", "R0")])
def test_trim_and_fill_matches_trimfill(case, method, est):
    c = CASES[case]
    ref = c[f"trimfill_{method}_{est}"]
    got = B.trim_and_fill(c["yi"], c["vi"], method=method, estimator=est, min_k=None)
    assert got["k0"] == ref["k0"] and got["side"] == ref["side"]
    assert got["se_k0"] == pytest.approx(ref["se_k0"], rel=RTOL)
    r = got["result"]
    for k, v in (("estimate", r.estimate), ("se", r.se), ("ci_low", r.ci_low), ("ci_high", r.ci_high)):
        assert v == pytest.approx(ref[k], rel=RTOL), k
    if method == "REML":
        assert r.tau2 == pytest.approx(ref["tau2"], rel=RTOL, abs=1e-10)
    np.testing.assert_allclose(got["filled"]["yi"], ref["yi"], rtol=1e-9, atol=1e-12)
    np.testing.assert_allclose(got["filled"]["vi"], ref["vi"], rtol=1e-12)
    assert int(got["filled"]["filled"].sum()) == ref["k0"]
    if est == "R0":
        assert got["p_k0"] == pytest.approx(ref["p_k0"], rel=1e-12)


def test_trim_and_fill_refuses_few_trials_and_bad_options():
    c = CASES["normand1999"]
    with pytest.raises(B.TooFewTrials):
        B.trim_and_fill(c["yi"], c["vi"])
    with pytest.raises(ValueError, match="estimator"):
        B.trim_and_fill(c["yi"], c["vi"], estimator="L1", min_k=None)

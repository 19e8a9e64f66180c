"""Binary pooling (adverse events) against metafor 3.8: rma.mh, rma.peto, rma on escalc, and proportions.

Reference values: tests/reference/binary_reference.json, made by tests/reference/make_binary_reference.R.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from mt_evidence import effect_size
from mt_evidence.stats.binary import ipft_hm, pool_binary, pool_proportions

REF = json.loads((Path(__file__).parent / "reference" / "binary_reference.json").read_text())
TABLES = {t["id"]: t for t in REF["tables"]}
RTOL = 1e-6


def _close(ours, theirs, what):
    theirs = np.nan if theirs is None else theirs
    ours, theirs = np.asarray(ours, float), np.asarray(
        [np.nan if v is None else v for v in np.atleast_1d(theirs)], float)
    np.testing.assert_allclose(np.atleast_1d(ours), theirs, rtol=RTOL, atol=1e-10, equal_nan=True, err_msg=what)


POOLED = [c for c in REF["cases"] if "escalc" not in c]
ESCALC = [c for c in REF["cases"] if "escalc" in c]


def test_grid_is_whole():
    assert len(POOLED) >= 100 and len(ESCALC) == 20 and len(REF["proportion_cases"]) == 24
    assert REF["versions"]["metafor"].startswith("3.8")


@pytest.mark.parametrize("case", POOLED, ids=lambda c: "-".join(
    str(c.get(k, "")) for k in ("table", "measure", "method", "tau2_method", "test")))
def test_pool_binary_matches_metafor(case):
    t = TABLES[case["table"]]
    random = bool(case.get("random"))
    res = pool_binary(case["measure"], t["ai"], t["n1i"], t["ci"], t["n2i"], method=case["method"],
                      random=random, tau2_method=case.get("tau2_method", "REML"),
                      test="hksj" if case.get("test") == "knha" else "z")
    if random:
        r = res.random
        for f in ("estimate", "se", "ci_low", "ci_high", "tau2"):
            _close(getattr(r, f), case[f], f)
        assert r.k == case["k_yi"]
        return
    for f in ("estimate", "se", "z", "p", "ci_low", "ci_high", "q", "q_p", "i2"):
        _close(getattr(res, f), case[f], f)
    assert res.k == case["k"] and res.k_yi == case["k_yi"]
    if case["method"] == "MH" and case["measure"] == "OR":
        for f in ("cmh", "cmh_p", "tarone", "tarone_p", "breslow_day", "breslow_day_p"):
            _close(getattr(res, f), case[f], f)


@pytest.mark.parametrize("case", ESCALC, ids=lambda c: f"{c['table']}-{c['escalc']}")
def test_escalc_binary_matches(case):
    t = TABLES[case["table"]]
    a, n1, c, n2 = (np.asarray(t[k], float) for k in ("ai", "n1i", "ci", "n2i"))
    es = effect_size(case["escalc"], a=a, b=n1 - a, c=c, d=n2 - c)
    _close(es["yi"], case["yi"], "yi")
    _close(es["vi"], case["vi"], "vi")


@pytest.mark.parametrize("case", REF["proportion_cases"], ids=lambda c: "-".join(
    (c["data"], c["measure"], c["method"], c["test"])))
def test_pool_proportions_matches_metafor(case):
    p = next(d for d in REF["proportions"] if d["id"] == case["data"])
    res = pool_proportions(p["xi"], p["ni"], measure=case["measure"], method=case["method"],
                           test="hksj" if case["test"] == "knha" else "z")
    _close(res.studies["yi"], case["yi"], "yi")
    _close(res.studies["vi"], case["vi"], "vi")
    for f in ("estimate", "se", "ci_low", "ci_high", "tau2"):
        _close(getattr(res.fit, f), case[f], f)
    _close(res.proportion, case["proportion"], "proportion")
    _close(res.ci_low, case["prop_ci_low"], "prop ci_low")
    _close(res.ci_high, case["prop_ci_high"], "prop ci_high")
    if case["method"] == "FE":  # metafor gives no prediction interval for a common-effect model; ours is the CI
        assert case["pi_low"] == [] and res.pi_low == pytest.approx(res.ci_low)
        return
    for f in ("pi_low", "pi_high"):
        _close(getattr(res.fit, f), case[f], f)
    _close(res.pi_low, case["prop_pi_low"], "prop pi_low")
    _close(res.pi_high, case["prop_pi_high"], "prop pi_high")


def test_mh_ignores_double_zero_tables_for_ratios_but_counts_them():
    base = pool_binary("OR", [3, 5], [40, 50], [6, 9], [41, 52])
    with_zero = pool_binary("OR", [3, 5, 0], [40, 50, 30], [6, 9, 0], [41, 52, 30])
    assert with_zero.estimate == pytest.approx(base.estimate, rel=1e-12)
    assert with_zero.k == 3 and with_zero.k_yi == 2 and with_zero.k_events == 2
    assert any("both groups" in n for n in with_zero.notes)


def test_no_events_anywhere_is_not_an_estimate():
    r = pool_binary("RR", [0, 0], [20, 30], [0, 0], [22, 31])
    assert np.isnan(r.estimate) and any("not defined" in n for n in r.notes)
    with pytest.raises(ValueError, match="Peto's method cannot be used"):
        pool_binary("OR", [0, 0], [20, 30], [0, 0], [22, 31], method="PETO")


@pytest.mark.parametrize("kwargs, message", [
    ({"events1": [5], "n1": [4], "events2": [1], "n2": [10]}, "between 0 and n"),
    ({"events1": [1.5], "n1": [10], "events2": [1], "n2": [10]}, "whole numbers"),
    ({"events1": [1, 2], "n1": [10], "events2": [1], "n2": [10]}, "one value per study"),
    ({"events1": [-1], "n1": [10], "events2": [1], "n2": [10]}, "whole numbers >= 0"),
])
def test_bad_counts_are_refused(kwargs, message):
    with pytest.raises(ValueError, match=message):
        pool_binary("RR", **kwargs)


def test_peto_only_for_odds_ratios_and_method_names_checked():
    with pytest.raises(ValueError, match="odds ratio only"):
        pool_binary("RR", [1], [10], [2], [10], method="PETO")
    with pytest.raises(ValueError, match="accepted are MH, PETO, IV"):
        pool_binary("RR", [1], [10], [2], [10], method="bayes")


def test_ipft_bounds():
    assert ipft_hm(0.0, 20) == 0.0
    assert ipft_hm(np.pi / 2, 20) == 1.0


def test_printed_result_names_its_conventions():
    r = pool_binary("RR", [3, 5], [40, 50], [6, 9], [41, 52], random=True)
    text = repr(r)
    assert "Mantel-Haenszel" in text and "risk ratio" in text and "random effects (REML" in text

"""RevMan in one command: RevMan 5's statistics, the whole-review reader, the evidence folder and the CLI.

Every .rm5 file here is SYNTHETIC: invented comparisons, outcomes, study names and numbers, written to tmp_path in
the shape of a RevMan 5 file. None of it is data from real trials. Real Cochrane files are checked by
tests/reference/revman_concordance.py, outside the test suite (tests/reference/README.md).

Reference values for RevMan 5's 2x2 conventions and a given tau^2: tests/reference/revman5_reference.json, made by
tests/reference/make_revman5_reference.R (metafor 3.8).
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from mt_evidence import pool, pool_binary

REF = json.loads((Path(__file__).parent / "reference" / "revman5_reference.json").read_text())
TABLES = {t["id"]: t for t in REF["tables"]}
RTOL = 1e-9


def _close(ours, theirs, what, rtol=RTOL):
    theirs = np.nan if theirs is None else theirs
    np.testing.assert_allclose(float(ours), float(theirs), rtol=rtol, atol=1e-12, equal_nan=True, err_msg=what)


# ---------------------------------------------------------------------------------------------------------
# RevMan 5's statistics against metafor and by formula
# ---------------------------------------------------------------------------------------------------------


def test_reference_grid_is_whole():
    assert len(REF["cases"]) == 12 and len(REF["given"]) == 24
    assert REF["versions"]["metafor"].startswith("3.8")


@pytest.mark.parametrize("case", REF["cases"], ids=lambda c: f"{c['table']}-{c['measure']}-{c['method']}")
def test_revman5_binary_matches_metafor_with_revman_corrections(case):
    t = TABLES[case["table"]]
    res = pool_binary(case["measure"], t["ai"], t["n1i"], t["ci"], t["n2i"], method=case["method"],
                      preset="revman5", random=True)
    for f in ("estimate", "se", "ci_low", "ci_high", "q", "i2"):
        _close(getattr(res, f), case[f], f)
    assert res.k_yi == case["k_yi"]
    r = res.random
    _close(r.tau2, case["tau2"], "tau2")
    for f in ("estimate", "se", "ci_low", "ci_high"):
        _close(getattr(r, f), case[f"random_{f}"], f"random {f}")
    assert r.method == "DL" and r.test == "z"
    assert "revman5" in res.describe() and "Mantel-Haenszel sums on the corrected tables" in res.describe()


def test_revman5_differs_from_metafor_only_where_a_table_has_a_zero():
    t = TABLES["bcg"]  # no zero cells: the MH estimate is the same under both conventions
    a = pool_binary("OR", t["ai"], t["n1i"], t["ci"], t["n2i"])
    b = pool_binary("OR", t["ai"], t["n1i"], t["ci"], t["n2i"], preset="revman5")
    assert a.estimate == pytest.approx(b.estimate, rel=1e-13) and a.q == pytest.approx(b.q, rel=1e-12)
    z = TABLES["zero_cells"]
    a = pool_binary("OR", z["ai"], z["n1i"], z["ci"], z["n2i"])
    b = pool_binary("OR", z["ai"], z["n1i"], z["ci"], z["n2i"], preset="revman5")
    assert abs(a.estimate - b.estimate) > 1e-3


@pytest.mark.parametrize("case", REF["given"], ids=lambda c: f"{c['data']}-{c['tau2']}-{c['method']}-{c['test']}")
def test_given_tau2_matches_metafor(case):
    r = pool(case["yi"], case["vi"], tau2=case["tau2"], method=case["method"],
             test="hksj" if case["test"] == "knha" else "z")
    for f in ("estimate", "se", "ci_low", "ci_high", "pi_low", "pi_high", "i2", "h2", "q", "tau2_se"):
        _close(getattr(r, f), case[f], f)
    assert r.tau2 == case["tau2"] and np.isnan(r.tau2_ci_low) and any("given" in n for n in r.notes)


def test_given_tau2_is_checked():
    with pytest.raises(ValueError, match="random-effects method"):
        pool([0.1, 0.2], [0.01, 0.02], method="FE", tau2=0.1)
    with pytest.raises(ValueError, match=">= 0"):
        pool([0.1, 0.2], [0.01, 0.02], method="DL", tau2=-1)
    with pytest.raises(TypeError, match="number"):
        pool([0.1, 0.2], [0.01, 0.02], method="DL", tau2="a lot")


def test_revman5_risk_difference_by_formula():
    """RevMan 5's MH risk difference: estimate and weights from the counts as they are; Greenland-Robins variance
    with 1/2 added to the cells of tables with a zero in its numerator; double-zero tables kept (RD = 0)."""
    e1, n1, e2, n2 = np.array([0, 3, 0.0]), np.array([17, 18, 15.0]), np.array([0, 3, 2.0]), np.array([18, 15, 16.0])
    res = pool_binary("RD", e1, n1, e2, n2, preset="revman5", random=True)
    a, b, c, d = e1, n1 - e1, e2, n2 - e2
    w = n1 * n2 / (n1 + n2)
    est = np.sum((a * n2 - c * n1) / (n1 + n2)) / w.sum()
    zero = (a == 0) | (b == 0) | (c == 0) | (d == 0)
    A, B, C, D = (np.where(zero, x + 0.5, x) for x in (a, b, c, d))
    N1, N2 = A + B, C + D
    var = np.sum((A * B * N2**3 + C * D * N1**3) / (N1 * N2 * (N1 + N2) ** 2)) / w.sum() ** 2
    assert res.estimate == pytest.approx(est, rel=1e-14) and res.se == pytest.approx(np.sqrt(var), rel=1e-14)
    assert res.k_yi == 3  # the double-zero table counts for a risk difference
    yi = a / n1 - c / n2  # per study: the counts as they are; the correction enters the variance only
    vi = A * B / N1**3 + C * D / N2**3
    np.testing.assert_allclose(res.studies["yi"], yi, rtol=1e-14)
    np.testing.assert_allclose(res.studies["vi"], vi, rtol=1e-14)
    q = np.sum((yi - est) ** 2 / vi)
    assert res.q == pytest.approx(q, rel=1e-12)
    wi = 1 / vi
    tau2 = max(0.0, (q - 2) / (wi.sum() - (wi**2).sum() / wi.sum()))
    assert res.random.tau2 == pytest.approx(tau2, rel=1e-12, abs=1e-15)
    metafor_way = pool_binary("RD", e1, n1, e2, n2)
    assert metafor_way.k_yi == 2 and abs(metafor_way.se - res.se) > 1e-4


def test_binary_convention_options_are_checked():
    with pytest.raises(ValueError, match="unknown preset"):
        pool_binary("OR", [1], [10], [2], [10], preset="revman6")
    with pytest.raises(ValueError, match="rd_variance"):
        pool_binary("RD", [1], [10], [2], [10], method="MH", mh_add=True, rd_variance="sato")
    with pytest.raises(ValueError, match="tau2_method='DL'"):
        pool_binary("OR", [1, 2], [10, 12], [2, 3], [10, 12], preset="revman5", random=True, tau2_method="REML")
    with pytest.raises(ValueError, match="unknown drop00"):
        pool_binary("OR", [1], [10], [2], [10], drop00="sometimes")


# ---------------------------------------------------------------------------------------------------------
# The data contract: what a RevMan import needs (Unicode study ids, events per arm, .rm5 sources)
# ---------------------------------------------------------------------------------------------------------


def _validate(studies, arms, contrasts=None):
    import pandas as pd

    from mt_evidence.evidence import schema
    from mt_evidence.evidence.io import validate_tables

    raw = {"studies": pd.DataFrame(studies), "arms": pd.DataFrame(arms),
           "contrasts": pd.DataFrame(contrasts or [], columns=list(schema.CONTRAST_COLUMNS)),
           "rob": pd.DataFrame(columns=list(schema.ROB_COLUMNS))}
    return validate_tables(raw, {"studies": "studies.csv", "arms": "arms.csv", "contrasts": "contrasts.csv",
                                 "rob": "rob.csv"})


def _study_row(sid, sources="https://example.org/synthetic", year="2001"):
    return {"study_id": sid, "citation": "SYNTHETIC", "year": year, "population": "mixed", "sources": sources}


def _event_arm(sid, arm, events, n, **extra):
    row = {"study_id": sid, "arm": arm, "intervention": "other", "outcome": "adverse_events",
           "instrument": "participants with an event", "higher_is_worse": "true", "value_type": "final",
           "n": n, "events": events, "source_url": "file:/synthetic/review.rm5", "source_location": "synthetic"}
    row.update(extra)
    return row


def test_contract_accepts_letters_of_any_alphabet_in_study_ids():
    from mt_evidence.evidence.schema import is_study_id

    for good in ("Møller_2010", "Martínez_de_Cuellar_2015", "Sønju-Clasen1995", "Ødegård2001", "Frost2004"):
        assert is_study_id(good), good
    for bad in ("2004Smith", "_Smith", "Smith 2004", "Smith.2004", "Smith\u00a02004", "", "Mu\u0308ller"):
        assert not is_study_id(bad), bad  # the last: a decomposed u + combining diaeresis (the reader composes it)
    typed, problems = _validate([_study_row("Møller_2010")], [_event_arm("Møller_2010", "a", "3", "20")])
    assert problems == []
    _, problems = _validate([_study_row("2010Møller")], [_event_arm("2010Møller", "a", "3", "20")])
    assert [p.column for p in problems] == ["study_id"] and "any alphabet" in problems[0].expected


def test_contract_counts_events_per_arm():
    _, problems = _validate([_study_row("Alpha2001", year="1948")],
                            [_event_arm("Alpha2001", "a", "3", "20"), _event_arm("Alpha2001", "b", "0", "21")])
    assert problems == []  # a count of events is an arm-level summary; a 1948 trial is a valid year
    _, problems = _validate([_study_row("Alpha2001")],
                            [_event_arm("Alpha2001", "a", "21", "20"), _event_arm("Alpha2001", "b", "2.5", "21"),
                             _event_arm("Alpha2001", "c", "2", None), _event_arm("Alpha2001", "d", None, "20")])
    found = {(p.row, p.column) for p in problems}
    assert (2, "events") in found and (3, "events") in found and (4, "n") in found and (5, "mean") in found
    assert any("no more participants with the event" in p.expected for p in problems)


def test_contract_accepts_the_revman_file_as_a_study_source_and_nothing_else_local():
    arms = [_event_arm("Alpha2001", "a", "3", "20")]
    _, problems = _validate([_study_row("Alpha2001", sources="file:/home/reviewer/My review.rm5")], arms)
    assert problems == []
    for bad in ("file:///etc/passwd", "file:/home/reviewer/notes.txt", "data/../secret.rm5"):
        _, problems = _validate([_study_row("Alpha2001", sources=bad)], arms)
        assert [p.column for p in problems] == ["sources"], bad
        assert ".rm5" in problems[0].expected

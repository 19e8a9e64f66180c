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
import pandas as pd
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


# ---------------------------------------------------------------------------------------------------------
# SYNTHETIC RevMan files (invented studies and numbers) and independent known answers
# ---------------------------------------------------------------------------------------------------------

SYNTHETIC_COMMENT = "<!-- SYNTHETIC TEST FIXTURE for mt_evidence: invented studies and numbers, not real trials -->"
Z975 = 1.959963984540054


def _esc(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;").replace('"', "&quot;")


def _attrs(d: dict) -> str:
    return " ".join(f'{k}="{_esc(str(v))}"' for k, v in d.items() if v is not None)


def _study(sid: str, name: str, year: str | None = "2004") -> str:
    a = {"ID": sid, "NAME": name, "YEAR": year, "DATA_SOURCE": "PUB"}
    return f"<STUDY {_attrs(a)}/>"


def _cont(sid, m1, sd1, n1, m2, sd2, n2) -> str:
    a = {"STUDY_ID": sid, "MEAN_1": m1, "SD_1": sd1, "TOTAL_1": n1, "MEAN_2": m2, "SD_2": sd2, "TOTAL_2": n2}
    return f"<CONT_DATA {_attrs(a)}/>"


def _dich(sid, e1, n1, e2, n2) -> str:
    a = {"STUDY_ID": sid, "EVENTS_1": e1, "TOTAL_1": n1, "EVENTS_2": e2, "TOTAL_2": n2}
    return f"<DICH_DATA {_attrs(a)}/>"


def _iv(sid, est, se, n1="0", n2="0") -> str:
    a = {"STUDY_ID": sid, "ESTIMATE": est, "SE": se, "TOTAL_1": n1, "TOTAL_2": n2}
    return f"<IV_DATA {_attrs(a)}/>"


def _stored(est=None, lo=None, hi=None, tau2=None, i2=None, q=None, df=None, z=None, ratio=False, k=None,
            estimable=True) -> dict:
    """Results as RevMan stores them on an outcome or subgroup (ratios back-transformed, |Z|)."""
    f = (lambda x: repr(float(np.exp(x)))) if ratio else (lambda x: repr(float(x)))
    out = {"ESTIMABLE": "YES" if estimable else "NO", "STUDIES": k}
    if est is not None:
        out.update(EFFECT_SIZE=f(est), CI_START=f(lo), CI_END=f(hi), Z=repr(abs(float(z))))
    for key, v in (("TAU2", tau2), ("I2", i2), ("CHI2", q), ("DF", df)):
        if v is not None:
            out[key] = repr(float(v))
    return out


def _outcome(kind: str, no: int, name: str, label1: str, label2: str, body: str, *, measure: str | None = None,
             method: str | None = None, random: bool = False, totals: str = "YES", log_data: bool | None = None,
             stored: dict | None = None, graph1: str = "Favours experimental", graph2: str = "Favours control",
             comp: int = 1) -> str:
    a = {"ID": f"CMP-{comp:03d}.{no:02d}", "NO": no, "RANDOM": "YES" if random else "NO", "TOTALS": totals,
         "CI_STUDY": "95", "CI_TOTAL": "95"}
    if kind != "IV":
        a["EFFECT_MEASURE"] = measure
    if kind == "DICH":
        a.update(METHOD=method or "MH", SWAP_EVENTS="NO")
    if kind == "IV":
        a["LOG_DATA"] = "YES" if log_data else "NO"
    a.update(stored or {})
    em = f"<EFFECT_MEASURE>{_esc(measure)}</EFFECT_MEASURE>" if kind == "IV" else ""
    return (f"<{kind}_OUTCOME {_attrs(a)}><NAME>{_esc(name)}</NAME><GROUP_LABEL_1>{_esc(label1)}</GROUP_LABEL_1>"
            f"<GROUP_LABEL_2>{_esc(label2)}</GROUP_LABEL_2><GRAPH_LABEL_1>{_esc(graph1)}</GRAPH_LABEL_1>"
            f"<GRAPH_LABEL_2>{_esc(graph2)}</GRAPH_LABEL_2>{em}{body}</{kind}_OUTCOME>")


def _subgroup(kind: str, no: int, name: str, body: str, stored: dict | None = None) -> str:
    a = {"NO": no, **(stored or {})}
    return f"<{kind}_SUBGROUP {_attrs(a)}><NAME>{_esc(name)}</NAME>{body}</{kind}_SUBGROUP>"


def _comparison(no: int, name: str, body: str) -> str:
    return f'<COMPARISON ID="CMP-{no:03d}" NO="{no}"><NAME>{_esc(name)}</NAME>{body}</COMPARISON>'


def _rm5(tmp_path: Path, studies: str, comparisons: str, name: str = "synthetic_review.rm5") -> Path:
    text = ('<?xml version="1.0" encoding="UTF-8" standalone="no"?>\n' + SYNTHETIC_COMMENT + "\n"
            '<COCHRANE_REVIEW REVMAN_VERSION="5" TYPE="INTERVENTION"><COVER_SHEET><TITLE>SYNTHETIC review for '
            "tests</TITLE></COVER_SHEET><STUDIES_AND_REFERENCES><STUDIES><INCLUDED_STUDIES>" + studies +
            "</INCLUDED_STUDIES></STUDIES></STUDIES_AND_REFERENCES>"
            f'<ANALYSES_AND_DATA CALCULATED_DATA="YES">{comparisons}</ANALYSES_AND_DATA></COCHRANE_REVIEW>\n')
    path = tmp_path / name
    path.write_bytes(text.encode("utf-8"))
    return path


def _fixed(y, v):
    """Inverse-variance common effect: estimate, se, Q (independent of the package)."""
    y, v = np.asarray(y, float), np.asarray(v, float)
    w = 1 / v
    est = np.sum(w * y) / w.sum()
    return est, np.sqrt(1 / w.sum()), float(np.sum(w * (y - est) ** 2))


def _dl(y, v, q):
    """DerSimonian-Laird from a given Q (RevMan 5: the Q of the fixed-effect analysis): tau2, estimate, se."""
    y, v = np.asarray(y, float), np.asarray(v, float)
    w = 1 / v
    tau2 = max(0.0, (q - (len(y) - 1)) / (w.sum() - (w**2).sum() / w.sum())) if len(y) > 1 else 0.0
    ws = 1 / (v + tau2)
    return tau2, np.sum(ws * y) / ws.sum(), np.sqrt(1 / ws.sum())


def _i2(q, df):
    return max(0.0, 100 * (q - df) / q) if df > 0 and q > 0 else 0.0


def _result(est, se, tau2=None, q=0.0, k=1, ratio=False):
    return _stored(est, est - Z975 * se, est + Z975 * se, tau2=tau2 if tau2 is not None else 0.0,
                   i2=_i2(q, k - 1), q=q, df=k - 1, z=est / se, ratio=ratio, k=k)


S = {"A": ("STD-Alpha_x0020_2001", "Alpha 2001", "2001"), "B": ("STD-Beta_x0020_2002", "Beta 2002", "2002"),
     "C": ("STD-Gamma_x0020_2003", "Gamma 2003", "2003"), "D": ("STD-Delta_x0020_2004", "Delta 2004", "2004"),
     "E": ("STD-Epsilon_x0020_2005", "Epsilon 2005", "2005")}
STUDIES_XML = "".join(_study(*v) for v in S.values())


def _within(conc, analysis):
    row = conc[conc["analysis"] == analysis].iloc[0]
    assert row["status"] == "compared", row.to_dict()
    assert row["within_tolerance"], row.to_dict()
    assert row["max_abs_diff"] < 1e-12, row.to_dict()
    return row


def _mh_rr(e1, n1, e2, n2):
    e1, n1, e2, n2 = (np.asarray(x, float) for x in (e1, n1, e2, n2))
    N = n1 + n2
    R, Ssum = np.sum(e1 * n2 / N), np.sum(e2 * n1 / N)
    var = np.sum((n1 * n2 * (e1 + e2) - e1 * e2 * N) / N**2) / (R * Ssum)
    return np.log(R / Ssum), np.sqrt(var)


def _mh_or(a, b, c, d):
    a, b, c, d = (np.asarray(x, float) for x in (a, b, c, d))
    N = a + b + c + d
    R, Ssum = a * d / N, b * c / N
    P, Q = (a + d) / N, (b + c) / N
    var = 0.5 * (np.sum(P * R) / R.sum() ** 2 + np.sum(P * Ssum + Q * R) / (R.sum() * Ssum.sum())
                 + np.sum(Q * Ssum) / Ssum.sum() ** 2)
    return np.log(R.sum() / Ssum.sum()), np.sqrt(var)


def test_dichotomous_mh_fixed_risk_ratio_known_answer(tmp_path):
    from mt_evidence.evidence.revman_review import read_revman_review

    e1, n1, e2, n2 = [12, 8, 30], [100, 60, 150], [20, 15, 41], [98, 62, 149]
    est, se = _mh_rr(e1, n1, e2, n2)
    y = np.log(np.array(e1) / n1) - np.log(np.array(e2) / n2)
    v = 1 / np.array(e1) - 1 / np.array(n1) + 1 / np.array(e2) - 1 / np.array(n2)
    q = float(np.sum((y - est) ** 2 / v))
    body = "".join(_dich(S[k][0], str(a), str(b), str(c), str(d)) for k, a, b, c, d in zip("ABC", e1, n1, e2, n2))
    out = _outcome("DICH", 1, "Relapse", "Drug A", "Placebo", body, measure="RR",
                   stored=_result(est, se, q=q, k=3, ratio=True))
    review = read_revman_review(_rm5(tmp_path, STUDIES_XML, _comparison(1, "Drug A versus placebo", out)))
    row = _within(review.concordance(), "1.1")
    assert row["ours_estimate"] == pytest.approx(est, rel=1e-13) and row["scale"] == "log"
    assert row["measure"] == "RR" and row["method"] == "MH" and row["model"] == "fixed" and row["k"] == 3
    assert np.isnan(row["ours_tau2"])  # RevMan shows no tau^2 for a fixed effect
    arms = review.arms
    assert len(arms) == 6 and arms["events"].tolist() == [12, 20, 8, 15, 30, 41] and arms["mean"].isna().all()
    assert arms["arm"].tolist() == ["drug_a", "placebo"] * 3
    assert arms["outcome"].unique().tolist() == ["relapse"] and arms["instrument"].unique().tolist() == ["Relapse"]
    assert arms["higher_is_worse"].all()  # 'Favours experimental' left of no effect: fewer events are better


def test_dichotomous_mh_random_odds_ratio_uses_the_mh_q_and_corrected_tables(tmp_path):
    from mt_evidence.evidence.revman_review import read_revman_review

    e1, n1, e2, n2 = [0, 9, 14, 3, 0], [40, 55, 70, 35, 20], [5, 12, 30, 2, 0], [41, 50, 72, 30, 22]
    a, c = np.array(e1, float), np.array(e2, float)
    b, d = np.array(n1) - a, np.array(n2) - c
    keep = ~((a == 0) & (c == 0))  # the double-zero table gives no odds ratio
    zero = (a == 0) | (b == 0) | (c == 0) | (d == 0)
    A, B, C, D = (np.where(zero, x + 0.5, x)[keep] for x in (a, b, c, d))
    est_mh, se_mh = _mh_or(A, B, C, D)
    y, v = np.log(A * D / (B * C)), 1 / A + 1 / B + 1 / C + 1 / D
    q = float(np.sum((y - est_mh) ** 2 / v))
    tau2, est, se = _dl(y, v, q)
    assert tau2 > 0
    body = "".join(_dich(S[k][0], *map(str, t)) for k, *t in zip("ABCDE", e1, n1, e2, n2))
    out = _outcome("DICH", 1, "Relapse", "Drug A", "Placebo", body, measure="OR", random=True,
                   stored=_result(est, se, tau2=tau2, q=q, k=4, ratio=True))
    review = read_revman_review(_rm5(tmp_path, STUDIES_XML, _comparison(1, "Drug A versus placebo", out)))
    row = _within(review.concordance(), "1.1")
    assert row["ours_tau2"] == pytest.approx(tau2, rel=1e-12) and row["k"] == 4 and row["ours_df"] == 3
    assert row["ours_q"] == pytest.approx(q, rel=1e-12)


def test_peto_and_inverse_variance_dichotomous_known_answers(tmp_path):
    from mt_evidence.evidence.revman_review import read_revman_review

    e1, n1, e2, n2 = [2, 5, 1], [50, 80, 45], [6, 9, 4], [52, 78, 47]
    a, c = np.array(e1, float), np.array(e2, float)
    m1, m2 = np.array(n1, float), np.array(n2, float)
    N = m1 + m2
    E = (a + c) * m1 / N
    V = (a + c) * (N - a - c) * m1 * m2 / (N**2 * (N - 1))
    est_p, se_p = np.sum(a - E) / V.sum(), np.sqrt(1 / V.sum())
    q_p = float(np.sum((a - E) ** 2 / V) - np.sum(a - E) ** 2 / V.sum())
    b, d = m1 - a, m2 - c
    y, v = np.log(a * d / (b * c)), 1 / a + 1 / b + 1 / c + 1 / d
    est_iv, se_iv, q_iv = _fixed(y, v)
    body = "".join(_dich(S[k][0], *map(str, t)) for k, *t in zip("ABC", e1, n1, e2, n2))
    peto = _outcome("DICH", 1, "Serious adverse events", "Drug A", "Placebo", body, measure="PETO_OR",
                    method="PETO", stored=_result(est_p, se_p, q=q_p, k=3, ratio=True))
    iv = _outcome("DICH", 2, "Any adverse event", "Drug A", "Placebo", body, measure="OR", method="IV",
                  stored=_result(est_iv, se_iv, q=q_iv, k=3, ratio=True))
    review = read_revman_review(_rm5(tmp_path, STUDIES_XML, _comparison(1, "Drug A versus placebo", peto + iv)))
    conc = review.concordance()
    assert _within(conc, "1.1")["method"] == "PETO"
    assert _within(conc, "1.2")["ours_estimate"] == pytest.approx(est_iv, rel=1e-13)


def test_generic_inverse_variance_log_ratio_known_answer_and_contrasts(tmp_path):
    from mt_evidence.evidence.revman_review import read_revman_review

    est_in, se_in = [-0.22314355, 0.1, -0.4], [0.15, 0.2, 0.25]
    est, se, q = _fixed(est_in, np.square(se_in))
    body = "".join(_iv(S[k][0], repr(e), repr(s), "120", "118") for k, e, s in zip("ABC", est_in, se_in))
    out = _outcome("IV", 1, "Death", "Drug A", "Placebo", body, measure="Hazard Ratio", log_data=True,
                   stored=_result(est, se, q=q, k=3, ratio=True))
    review = read_revman_review(_rm5(tmp_path, STUDIES_XML, _comparison(1, "Drug A versus placebo", out)))
    row = _within(review.concordance(), "1.1")
    assert row["data_type"] == "IV" and row["scale"] == "log" and row["measure"] == "Hazard Ratio"
    con = review.contrasts
    assert len(con) == 3 and review.arms.empty
    first = con.iloc[0]
    assert first["estimate_type"] == "HR" and first["estimate"] == pytest.approx(np.exp(-0.22314355), rel=1e-15)
    assert first["ci_low"] == pytest.approx(np.exp(-0.22314355 - Z975 * 0.15), rel=1e-14)
    assert first["x_revman_estimate"] == -0.22314355 and first["x_revman_se"] == 0.15
    assert (first["arm1"], first["arm2"], first["intervention1"], first["intervention2"]) == (
        "drug_a", "placebo", "drug_a", "placebo")
    assert first["direction_stored"] == "arm1_minus_arm2" and first["n1"] == 120


def _smd_revman(m1, s1, n1, m2, s2, n2):
    N = n1 + n2
    sp = np.sqrt(((n1 - 1) * s1**2 + (n2 - 1) * s2**2) / (N - 2))
    g = (1 - 3 / (4 * N - 9)) * (m1 - m2) / sp
    return g, 1 / n1 + 1 / n2 + g**2 / (2 * (N - 3.94))


CONT = {"A": (3.1, 1.2, 30, 4.0, 1.4, 31), "B": (2.5, 1.0, 45, 3.9, 1.1, 44), "C": (5.0, 2.5, 20, 5.2, 2.0, 22)}


def test_continuous_md_random_and_smd_fixed_known_answers(tmp_path):
    from mt_evidence.evidence.revman_review import read_revman_review

    rows = np.array([CONT[k] for k in "ABC"], float)
    m1, s1, n1, m2, s2, n2 = rows.T
    y, v = m1 - m2, s1**2 / n1 + s2**2 / n2
    _, _, q = _fixed(y, v)
    tau2, est, se = _dl(y, v, q)
    g, gv = _smd_revman(m1, s1, n1, m2, s2, n2)
    est_s, se_s, q_s = _fixed(g, gv)
    body = "".join(_cont(S[k][0], *map(str, CONT[k])) for k in "ABC")
    md = _outcome("CONT", 1, "Pain (0-10)", "Exercise", "Usual care", body, measure="MD", random=True,
                  stored=_result(est, se, tau2=tau2, q=q, k=3))
    smd = _outcome("CONT", 2, "Function", "Exercise", "Usual care", body, measure="SMD",
                   stored=_result(est_s, se_s, q=q_s, k=3))
    review = read_revman_review(_rm5(tmp_path, STUDIES_XML, _comparison(1, "Exercise versus usual care", md + smd)))
    conc = review.concordance()
    assert _within(conc, "1.1")["ours_tau2"] == pytest.approx(tau2, rel=1e-12)
    assert _within(conc, "1.2")["ours_estimate"] == pytest.approx(est_s, rel=1e-13)
    t = review.treatments.set_index("group_label")
    assert t.loc["Exercise", "role"] == "active" and t.loc["Usual care", "role"] == "control"
    arms = review.arms
    assert arms["mean"].tolist()[:2] == [3.1, 4.0] and arms["events"].isna().all()


def test_subgroups_and_a_hidden_total_weighting_each_study_with_its_subgroups_tau2(tmp_path):
    from mt_evidence.evidence.revman_review import read_revman_review

    data = {"A": (3.1, 1.2, 30, 4.0, 1.4, 31), "B": (2.5, 1.0, 45, 3.9, 1.1, 44), "C": (5.0, 2.5, 20, 5.2, 2.0, 22),
            "D": (1.0, 0.9, 25, 2.4, 1.0, 26), "E": (4.4, 1.9, 33, 4.1, 2.2, 30)}
    groups = {"1": "AB", "2": "CDE"}
    subs_xml, ys, vs, taus = "", [], [], []
    for no, keys in groups.items():
        r = np.array([data[k] for k in keys], float)
        y, v = r[:, 0] - r[:, 3], r[:, 1] ** 2 / r[:, 2] + r[:, 4] ** 2 / r[:, 5]
        q = _fixed(y, v)[2]
        tau2, est, se = _dl(y, v, q)
        ys.append(y)
        vs.append(v)
        taus.append(np.full(len(y), tau2))
        body = "".join(_cont(S[k][0], *map(str, data[k])) for k in keys)
        subs_xml += _subgroup("CONT", int(no), f"Dose {no}", body, _result(est, se, tau2=tau2, q=q, k=len(keys)))
    y, v, t = np.concatenate(ys), np.concatenate(vs), np.concatenate(taus)
    q_all = _fixed(y, v)[2]
    tau_all, est_all, se_all = _dl(y, v, q_all)  # TOTALS = YES: one DerSimonian-Laird over every row
    w = 1 / (v + t)  # TOTALS = SUB: RevMan hides the total, and stores one weighting each study by its subgroup's tau^2
    est_hidden, se_hidden = np.sum(w * y) / w.sum(), np.sqrt(1 / w.sum())
    shown = _outcome("CONT", 1, "Pain", "Exercise", "Usual care", subs_xml, measure="MD", random=True,
                     stored=_result(est_all, se_all, tau2=tau_all, q=q_all, k=5))
    hidden = _outcome("CONT", 2, "Pain later", "Exercise", "Usual care", subs_xml, measure="MD", random=True,
                      totals="SUB", stored=_result(est_hidden, se_hidden, tau2=tau_all, q=q_all, k=5))
    review = read_revman_review(_rm5(tmp_path, STUDIES_XML, _comparison(1, "Exercise versus usual care",
                                                                        shown + hidden)))
    conc = review.concordance()
    assert set(conc["analysis"]) == {"1.1", "1.1.1", "1.1.2", "1.2", "1.2.1", "1.2.2"}
    for a in ("1.1", "1.1.1", "1.1.2", "1.2.1", "1.2.2"):
        assert _within(conc, a)["revman_shows"]
    row = _within(conc, "1.2")
    assert not row["revman_shows"] and "subtotals only" in row["note"]
    assert row["ours_estimate"] == pytest.approx(est_hidden, rel=1e-13)
    assert abs(est_hidden - est_all) > 1e-4  # the two totals differ: the test can tell them apart
    notes = review.arms.loc[review.arms["study_id"] == "Alpha_2001", "note"].tolist()
    assert notes == ["subgroup: Dose 1"] * 2 + ["subgroup: Dose 1"] * 2  # two outcomes, 'Pain' and 'Pain later'
    assert review.arms["outcome"].unique().tolist() == ["pain", "pain_later"]


# ---------------------------------------------------------------------------------------------------------
# Rows never entered, SD 0, multi-arm trials, names
# ---------------------------------------------------------------------------------------------------------


def test_a_row_never_entered_becomes_missing_values_with_a_warning_naming_the_place(tmp_path):
    from mt_evidence.evidence.revman_review import read_revman_review

    rows = np.array([CONT[k] for k in "AB"], float)
    y, v = rows[:, 0] - rows[:, 3], rows[:, 1] ** 2 / rows[:, 2] + rows[:, 4] ** 2 / rows[:, 5]
    est, se, q = _fixed(y, v)
    body = (_cont(S["A"][0], *map(str, CONT["A"])) + _cont(S["B"][0], *map(str, CONT["B"]))
            + _cont(S["C"][0], "0.0", "", "0", "0.0", "", "0"))  # RevMan's row for data never entered
    sub = _subgroup("CONT", 1, "Adults", body, _result(est, se, q=q, k=2))
    out = _outcome("CONT", 1, "Pain", "Exercise", "Usual care", sub, measure="MD", stored=_result(est, se, q=q, k=2))
    review = read_revman_review(_rm5(tmp_path, STUDIES_XML, _comparison(1, "Exercise versus usual care", out)))
    conc = review.concordance()
    assert _within(conc, "1.1")["k"] == 2 and _within(conc, "1.1.1")["k"] == 2
    gamma = review.rows[review.rows["study_name"] == "Gamma 2003"].iloc[0]
    assert not gamma["entered"] and not gamma["poolable"] and np.isnan(gamma["n1"]) and np.isnan(gamma["mean1"])
    assert "Gamma_2003" not in set(review.arms["study_id"])
    (w,) = [w for w in review.warnings if "Gamma 2003" in w]
    for part in ("comparison 1 'Exercise versus usual care'", "outcome 1 'Pain'", "subgroup 1 'Adults'",
                 "study 'Gamma 2003'", "never entered", "TOTAL_1='0'"):
        assert part in w, part


def test_sd_zero_in_both_groups_is_kept_but_not_pooled(tmp_path):
    from mt_evidence.evidence.revman_review import read_revman_review, write_revman_folder
    from mt_evidence.evidence.io import check_path

    rows = np.array([CONT[k] for k in "AB"], float)
    y, v = rows[:, 0] - rows[:, 3], rows[:, 1] ** 2 / rows[:, 2] + rows[:, 4] ** 2 / rows[:, 5]
    est, se, q = _fixed(y, v)
    body = (_cont(S["A"][0], *map(str, CONT["A"])) + _cont(S["B"][0], *map(str, CONT["B"]))
            + _cont(S["C"][0], "2.0", "0", "15", "2.5", "0.0", "16"))
    out = _outcome("CONT", 1, "Pain", "Exercise", "Usual care", body, measure="MD", stored=_result(est, se, q=q, k=2))
    path = _rm5(tmp_path, STUDIES_XML, _comparison(1, "Exercise versus usual care", out))
    review = read_revman_review(path)
    assert _within(review.concordance(), "1.1")["k"] == 2  # the whole analysis still pools
    gamma = review.arms[review.arms["study_id"] == "Gamma_2003"]
    assert gamma["role"].tolist() == ["excluded"] * 2 and gamma["sd"].isna().all()
    assert gamma["mean"].tolist() == [2.0, 2.5] and "SD 0 in both groups" in gamma["note"].iloc[0]
    assert any("Gamma 2003" in w and "SD_1 and SD_2 are 0" in w for w in review.warnings)
    write_revman_folder(review, tmp_path / "out")
    assert check_path(tmp_path / "out") == ([], [])


def _multi_arm_file(tmp_path, placebo_in_comparison_2):
    """Gamma 2003 has three arms: drug A and drug B each against one placebo group, in two comparisons."""
    comp1 = _outcome("CONT", 1, "Pain", "Drug A", "Placebo",
                     _cont(S["A"][0], "3", "1", "20", "4", "1", "20") + _cont(S["C"][0], "2.0", "1.5", "30", "3.0",
                                                                               "1.4", "28"), measure="MD")
    comp2 = _outcome("CONT", 1, "Pain", "Drug B", "Placebo",
                     _cont(S["B"][0], "3", "1", "25", "4.5", "1", "24") + _cont(S["C"][0], "2.4", "1.1", "31",
                                                                                 *placebo_in_comparison_2),
                     measure="MD", comp=2)
    return _rm5(tmp_path, STUDIES_XML, _comparison(1, "Drug A versus placebo", comp1)
                + _comparison(2, "Drug B versus placebo", comp2))


def test_a_multi_arm_trial_in_two_comparisons_keeps_one_row_per_arm(tmp_path):
    from mt_evidence.evidence.io import check_path
    from mt_evidence.evidence.revman_review import read_revman_review, write_revman_folder

    review = read_revman_review(_multi_arm_file(tmp_path, ("3.0", "1.4", "28")))
    gamma = review.arms[review.arms["study_id"] == "Gamma_2003"]
    assert gamma["arm"].tolist() == ["drug_a", "placebo", "drug_b"]
    assert gamma["intervention"].tolist() == ["drug_a", "placebo", "drug_b"]
    assert "also in analyses 2.1 group 2" in gamma["note"].iloc[1]
    assert not any("Gamma" in w for w in review.warnings)
    comps = {c["name"]: (c["first"], c["second"]) for c in review.vocabulary["comparisons"]}
    assert comps == {"comparison_1": ("drug_a", ["placebo"]), "comparison_2": ("drug_b", ["placebo"])}
    write_revman_folder(review, tmp_path / "out")
    assert check_path(tmp_path / "out") == ([], [])


def test_a_group_with_other_numbers_in_another_comparison_becomes_a_second_arm_with_a_warning(tmp_path):
    from mt_evidence.evidence.io import check_path
    from mt_evidence.evidence.revman_review import read_revman_review, write_revman_folder

    review = read_revman_review(_multi_arm_file(tmp_path, ("3.0", "1.4", "14")))  # the placebo group split in two
    gamma = review.arms[review.arms["study_id"] == "Gamma_2003"]
    assert gamma["arm"].tolist() == ["drug_a", "placebo", "drug_b", "placebo_2_1"]
    assert gamma["n"].tolist() == [30, 28, 31, 14] and gamma["intervention"].tolist()[-1] == "placebo"
    (w,) = [w for w in review.warnings if "Gamma 2003" in w]
    assert "comparison 2 'Drug B versus placebo'" in w and "'placebo_2_1'" in w and "analysis 1.1" in w
    write_revman_folder(review, tmp_path / "out")
    assert check_path(tmp_path / "out") == ([], [])


def test_study_names_in_any_alphabet(tmp_path):
    from mt_evidence.evidence.revman_review import read_revman_review

    studies = (_study("STD-M_x00f8_ller_x0020_2010", "Møller 2010", "2010")
               + _study("STD-Mart_x00ed_nez", "Martínez de Cuellar 2015", "")  # the year from the name
               + _study("STD-Muller", "Mu\u0308ller 2011", "2011")  # a decomposed u + combining diaeresis
               + _study("STD-1999", "1999 trial", "1999")
               + _study("STD-Hidden", "Hid\u200bden 2012", "2012"))  # a zero-width space, as pasted text can hold
    body = "".join(_dich(sid, "3", "30", "5", "31") for sid in ("STD-M_x00f8_ller_x0020_2010", "STD-Mart_x00ed_nez",
                                                                "STD-Muller", "STD-1999", "STD-Hidden"))
    out = _outcome("DICH", 1, "Relapse", "Drug A", "Plac\u202eebo", body, measure="RR")
    path = _rm5(tmp_path, studies, _comparison(1, "Drug A versus placebo", out))
    review = read_revman_review(path)
    st = review.studies
    assert st["study_id"].tolist() == ["Møller_2010", "Martínez_de_Cuellar_2015", "M\u00fcller_2011", "study_1999_trial",
                                       "Hidden_2012"]
    assert st["year"].tolist() == [2010, 2015, 2011, 1999, 2012] and st["citation"].iloc[0] == "Møller 2010"
    assert set(review.arms["x_revman_group_label"]) == {"Drug A", "Placebo"}
    from mt_evidence.evidence.io import check_path
    from mt_evidence.evidence.revman_review import write_revman_folder

    write_revman_folder(review, tmp_path / "out")
    assert check_path(tmp_path / "out") == ([], [])


def test_the_folder_validates_loads_and_declares_the_vocabulary(tmp_path):
    import mt_evidence as me
    from mt_evidence.evidence.io import check_path

    body = "".join(_cont(S[k][0], *map(str, CONT[k])) for k in "ABC")
    dbody = "".join(_dich(S[k][0], "3", "30", "6", "31") for k in "AB")
    ibody = _iv(S["C"][0], "-0.3", "0.2")
    out = (_outcome("CONT", 1, "Pain", "Spinal manipulation", "Sham manipulation", body, measure="MD")
           + _outcome("DICH", 2, "Pain", "Spinal manipulation", "Sham manipulation", dbody, measure="RR")
           + _outcome("IV", 3, "Return to work", "Spinal manipulation", "Sham manipulation", ibody,
                      measure="Rate ratio", log_data=True))
    path = _rm5(tmp_path, STUDIES_XML, _comparison(1, "Manipulation versus sham", out))
    review = me.read_revman_review(path)
    res = me.write_revman_folder(review, tmp_path / "out")
    folder = tmp_path / "out"
    assert {p.name for p in folder.iterdir()} == {"studies.csv", "arms.csv", "contrasts.csv", "review.toml",
                                                  "revman_concordance.csv", ".mt-evidence-owner"}
    assert check_path(folder) == ([], [])
    ev = me.load_evidence(folder)
    voc = ev.vocabulary
    assert voc.treatment_names == ("spinal_manipulation", "sham_manipulation")
    assert voc.treatment("sham_manipulation").role == "control"
    assert voc.outcomes == {"pain_continuous": "Pain (continuous)", "pain_dichotomous": "Pain (dichotomous)",
                            "return_to_work": "Return to work"}
    assert voc.primary_outcomes == tuple(voc.outcomes)
    assert [(c.name, c.first, c.second) for c in voc.comparisons] == [
        ("comparison_1", "spinal_manipulation", ("sham_manipulation",))]
    assert set(ev.studies["population"]) == {"mixed"} and ev.studies["sources"].iloc[0] == f"file:{path.resolve()}"
    assert ev.contrasts["estimate_type"].tolist() == ["GEN"] and "Rate ratio" in ev.contrasts["note"].iloc[0]
    assert ev.arms["events"].notna().sum() == 4 and ev.arms["mean"].notna().sum() == 6
    assert res.compared == 0 and res.not_stored == 3  # this file stores no results
    conc = pd.read_csv(folder / "revman_concordance.csv")
    from mt_evidence.evidence.revman_review import CONCORDANCE_COLUMNS

    assert list(conc.columns) == CONCORDANCE_COLUMNS and set(conc["status"]) == {"not_stored"}


def test_treatment_map_sets_names_and_roles(tmp_path):
    from mt_evidence.evidence.revman_review import parse_treatment_map, read_revman_review, read_treatment_map_file

    body = "".join(_cont(S[k][0], *map(str, CONT[k])) for k in "AB")
    out = _outcome("CONT", 1, "Pain", "Experimental", "Control", body, measure="MD")
    path = _rm5(tmp_path, STUDIES_XML, _comparison(1, "Manipulation versus advice", out))
    guessed = read_revman_review(path).treatments.set_index("group_label")
    assert guessed.loc["Experimental", "role"] == "active" and guessed.loc["Control", "role"] == "control"
    mapfile = tmp_path / "map.txt"
    mapfile.write_text("# SYNTHETIC mapping\nexperimental=smt:active\n\nCONTROL = advice:control\n", encoding="utf-8")
    review = read_revman_review(path, treatment_map=read_treatment_map_file(mapfile))
    assert review.arms["intervention"].tolist()[:2] == ["smt", "advice"]
    assert review.arms["arm"].tolist()[:2] == ["experimental", "control"]  # arms keep their group label
    assert review.vocabulary["treatments"] == {"smt": {"label": "Experimental", "role": "active"},
                                               "advice": {"label": "Control", "role": "control"}}
    for bad, message in ((["Control=2advice"], "ASCII letters"), (["Control=advice:placebo"], "role"),
                         (["Control"], "LABEL=name"), (["Control=a", "control=b"], "mapped twice")):
        with pytest.raises(ValueError, match=message):
            parse_treatment_map(bad)
    with pytest.raises(ValueError, match="does not have: nonexistent"):
        read_revman_review(path, treatment_map={"Nonexistent": "x"})


# ---------------------------------------------------------------------------------------------------------
# The concordance can fail; errors name file and place
# ---------------------------------------------------------------------------------------------------------


def _md_file(tmp_path, *, shift=0.0, totals="YES", estimable=True, name="synthetic_review.rm5"):
    rows = np.array([CONT[k] for k in "ABC"], float)
    y, v = rows[:, 0] - rows[:, 3], rows[:, 1] ** 2 / rows[:, 2] + rows[:, 4] ** 2 / rows[:, 5]
    est, se, q = _fixed(y, v)
    stored = _result(est + shift, se, q=q, k=3)
    stored["ESTIMABLE"] = "YES" if estimable else "NO"
    body = "".join(_cont(S[k][0], *map(str, CONT[k])) for k in "ABC")
    out = _outcome("CONT", 1, "Pain", "Exercise", "Usual care", body, measure="MD", totals=totals, stored=stored)
    return _rm5(tmp_path, STUDIES_XML, _comparison(1, "Exercise versus usual care", out), name=name)


def test_a_stored_result_that_differs_is_reported_as_differing(tmp_path):
    from mt_evidence.evidence.revman_review import read_revman_review

    conc = read_revman_review(_md_file(tmp_path, shift=1e-4)).concordance()
    row = conc.iloc[0]
    assert row["status"] == "compared" and not row["within_tolerance"]
    assert row["diff_estimate"] == pytest.approx(1e-4, rel=1e-6) and row["diff_q"] < 1e-12
    assert read_revman_review(_md_file(tmp_path, shift=1e-4)).concordance(tolerance=1e-3).iloc[0]["within_tolerance"]
    off = read_revman_review(_md_file(tmp_path, estimable=False)).concordance().iloc[0]
    assert off["status"] == "differs_in_estimability" and not off["within_tolerance"]
    none = read_revman_review(_md_file(tmp_path, totals="NO")).concordance().iloc[0]
    assert none["status"] == "not_pooled" and not none["revman_shows"]


def test_malformed_values_are_all_reported_with_their_place(tmp_path):
    from mt_evidence.evidence.revman import RevManError
    from mt_evidence.evidence.revman_review import read_revman_review

    body = (_cont(S["A"][0], "3", "-1", "20", "4", "1", "20.5") + _dich(S["B"][0], "12", "10", "3", "20")
            + _iv(S["C"][0], "abc", "0.1"))
    out = (_outcome("CONT", 1, "Pain", "A", "B", body.split("<DICH")[0], measure="MD")
           + _outcome("DICH", 2, "Relapse", "A", "B", "<DICH" + body.split("<DICH")[1].split("<IV")[0], measure="RR")
           + _outcome("IV", 3, "Death", "A", "B", "<IV" + body.split("<IV")[1], measure="Hazard Ratio"))
    path = _rm5(tmp_path, STUDIES_XML, _comparison(1, "Synthetic", out), name="broken.rm5")
    with pytest.raises(RevManError) as info:
        read_revman_review(path)
    problems = info.value.problems
    assert len(problems) == 4 and "broken.rm5" in str(info.value)
    expected = [("outcome 1 'Pain'", "study 'Alpha 2001'", "SD_1='-1' is negative"),
                ("outcome 1 'Pain'", "study 'Alpha 2001'", "TOTAL_2='20.5' is not a whole number"),
                ("outcome 2 'Relapse'", "study 'Beta 2002'", "EVENTS_1='12' is above TOTAL_1='10'"),
                ("outcome 3 'Death'", "study 'Gamma 2003'", "ESTIMATE='abc' is not a number")]
    for parts in expected:
        assert any(all(p in line for p in parts) for line in problems), parts


def test_a_study_without_a_year_and_a_file_that_is_not_revman(tmp_path):
    from mt_evidence.evidence.revman import RevManError
    from mt_evidence.evidence.revman_review import read_revman_review

    body = _dich("STD-Nameless", "3", "30", "5", "31")
    path = _rm5(tmp_path, _study("STD-Nameless", "Nameless trial", ""),
                _comparison(1, "Synthetic", _outcome("DICH", 1, "Relapse", "A", "B", body, measure="RR")))
    with pytest.raises(RevManError, match="Nameless trial.*no year"):
        read_revman_review(path)
    svg = tmp_path / "picture.rm5"
    svg.write_text('<?xml version="1.0"?><svg/>', encoding="utf-8")
    with pytest.raises(RevManError, match="not a RevMan 5 review"):
        read_revman_review(svg)
    with pytest.raises(FileNotFoundError, match="nowhere.rm5"):
        read_revman_review(tmp_path / "nowhere.rm5")


# ---------------------------------------------------------------------------------------------------------
# The command line
# ---------------------------------------------------------------------------------------------------------


def _run(args):
    from typer.testing import CliRunner

    from mt_evidence.cli import app

    return CliRunner().invoke(app, args)


def test_cli_writes_a_valid_folder_and_prints_the_summary(tmp_path):
    path = _md_file(tmp_path)
    out = tmp_path / "out"
    r = _run(["revman", str(path), "--out", str(out), "--map", "Usual care=usual_care:control"])
    assert r.exit_code == 0, r.output
    assert "1 of 1 analyses within 1e-06 of RevMan" in r.output and "Traceback" not in r.output
    assert "[red]" not in r.output and "mt-evidence validate" in r.output
    v = _run(["validate", str(out)])
    assert v.exit_code == 0, v.output
    again = _run(["revman", str(_md_file(tmp_path, shift=0.5, name="other.rm5")), "--out", str(out)])
    assert again.exit_code == 0 and "0 of 1 analyses within 1e-06 of RevMan; 1 differ: see" in again.output


def test_cli_wrong_file_type_gives_one_message_and_no_traceback(tmp_path):
    bad = tmp_path / "review.rm5"
    bad.write_text("study,mean\nSYNTHETIC,1\n", encoding="utf-8")
    r = _run(["revman", str(bad), "--out", str(tmp_path / "out")])
    assert r.exit_code == 1 and "Traceback" not in r.output and not (tmp_path / "out").exists()
    assert "not an XML file" in r.output and "review.rm5" in r.output and "Nothing was written" in r.output
    r = _run(["revman", str(tmp_path / "missing.rm5"), "--out", str(tmp_path / "out")])
    assert r.exit_code == 1 and "does not exist" in r.output and "Traceback" not in r.output
    r = _run(["revman", str(_md_file(tmp_path)), "--out", str(tmp_path / "out"), "--map", "Usual care"])
    assert r.exit_code == 1 and "LABEL=name" in r.output and "Traceback" not in r.output


def test_cli_refuses_a_folder_it_did_not_write_and_leaves_it_unchanged(tmp_path):
    path = _md_file(tmp_path)
    mine = tmp_path / "mine"
    mine.mkdir()
    (mine / "notes.txt").write_text("my notes", encoding="utf-8")
    r = _run(["revman", str(path), "--out", str(mine)])
    assert r.exit_code == 1 and "did not write" in r.output and "Traceback" not in r.output
    assert [p.name for p in mine.iterdir()] == ["notes.txt"]
    r = _run(["revman", str(path), "--out", str(tmp_path)])  # the folder holding the RevMan file
    assert r.exit_code == 1 and "nothing was written" in r.output
    f = tmp_path / "a_file"
    f.write_text("x", encoding="utf-8")
    r = _run(["revman", str(path), "--out", str(f)])
    assert r.exit_code == 1 and f.read_text(encoding="utf-8") == "x"


def test_a_review_without_study_data_and_unread_outcome_types(tmp_path):
    from mt_evidence.evidence.revman import RevManError
    from mt_evidence.evidence.revman_review import read_revman_review

    empty = _rm5(tmp_path, STUDIES_XML, "", name="protocol.rm5")
    with pytest.raises(RevManError, match="protocol.rm5.*nothing to import"):
        read_revman_review(empty)
    r = _run(["revman", str(empty), "--out", str(tmp_path / "out")])
    assert r.exit_code == 1 and "nothing to import" in r.output and "Traceback" not in r.output
    oev = '<OEV_OUTCOME NO="2"><NAME>Time to relapse</NAME></OEV_OUTCOME>'
    body = _dich(S["A"][0], "3", "30", "5", "31")
    path = _rm5(tmp_path, STUDIES_XML, _comparison(1, "Synthetic", _outcome("DICH", 1, "Relapse", "A", "B", body,
                                                                              measure="RR") + oev))
    review = read_revman_review(path)
    assert any("outcome 2 'Time to relapse': a OEV_OUTCOME outcome, which is not read" in w for w in review.warnings)

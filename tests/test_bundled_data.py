"""The bundled evidence (data/raw): provenance on every row, derived values that follow their rules,
no synthetic rows, and a clean build."""

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from mt_evidence.evidence.build import assemble
from mt_evidence.evidence.io import bundled_data_dir, load_evidence, validate_path

RAW = Path(__file__).resolve().parents[1] / "data" / "raw"


@pytest.fixture(scope="module")
def ev():
    return load_evidence(RAW)


def test_bundled_data_validates_clean():
    assert validate_path(RAW) == []
    assert bundled_data_dir().resolve() == RAW.resolve()


def test_every_row_names_its_source(ev):
    for table in (ev.arms, ev.contrasts):
        assert table["source_url"].str.match(r"https?://").all()
        assert table["source_location"].str.len().gt(5).all()
    for s in ev.studies.itertuples():
        urls = [u.strip() for u in s.sources.split(";")]
        assert urls and all(u.startswith("http") for u in urls), s.study_id
    # every address a row cites is listed among its study's sources
    # (a ';' inside an address is written %3B in `sources`, where ';' separates addresses)
    listed = {s.study_id: s.sources.replace("%3B", ";") for s in ev.studies.itertuples()}
    for table in (ev.arms, ev.contrasts):
        for r in table.itertuples():
            assert r.source_url in listed[r.study_id] or r.source_url.split("://", 1)[1] in listed[r.study_id], (
                r.study_id, r.source_url)


def test_published_risk_of_bias_rows_name_their_source(ev):
    rob = ev.rob
    assert len(rob) > 0
    assert rob["source_url"].str.match(r"https?://").all()
    assert rob["review_citation"].str.len().gt(10).all() and rob["source_location"].str.len().gt(5).all()
    assert set(rob["study_id"]) <= set(ev.studies["study_id"])


def test_no_synthetic_rows_in_bundled_data(ev):
    for df in (ev.studies, ev.arms, ev.contrasts):
        text = df.apply(lambda r: " ".join(str(v) for v in r.to_numpy()), axis=1)
        assert not text.str.contains("synthetic", case=False).any()
        assert not text.str.contains("example.org").any()


def test_every_trial_has_a_risk_of_bias_judgement_with_its_source_or_a_reason(ev):
    """docs/methods.md section 17: a published judgement, else the review's own RoB 2 by two readers with a
    consensus; "not assessed" only with the reason."""
    st = ev.studies.set_index("study_id")
    rob = ev.rob
    for sid in st.index:
        overall = st.loc[sid, "rob_overall"]
        if isinstance(overall, str) and overall:
            assert st.loc[sid, "rob_basis"] in ("published", "review_own"), sid
            assert str(st.loc[sid, "rob_source"]).startswith("http"), sid
            if st.loc[sid, "rob_basis"] == "review_own":
                own = rob[(rob["study_id"] == sid) & (rob["basis"] == "review_own")]
                assert len(own) == 6 and own["reader1"].iloc[:5].notna().all() and own["reader2"].iloc[:5].notna().all()
        else:
            why = rob[(rob["study_id"] == sid) & (rob["judgement"] == "not_assessed")]["note"]
            assert len(why) and why.str.len().gt(20).all(), f"{sid}: no risk-of-bias judgement and no reason"
    # where the two readers differed, the consensus says why
    own = rob[rob["basis"] == "review_own"]
    differ = own["reader1"].notna() & own["reader2"].notna() & (own["reader1"] != own["reader2"])
    assert own.loc[differ, "consensus_note"].str.len().gt(20).all()


def test_fixes_from_the_audit_hold(ev):
    """The evidence issue's audit: every rule it asked for stays true on the bundled data."""
    d, c, a = ev.arm_details, ev.contrasts, ev.arms
    # Haas 2014: every dose arm kept, the light-massage control an active hands-on control (not sham), and no
    # contrast selected by its result (the abstract's best dose) pooled
    haas = d[d["study_id"] == "Haas2014"].set_index("arm")
    assert sorted(haas["sessions"]) == [0, 6, 12, 18]
    assert haas.loc["smt0_light_massage", "intervention"] == "other"
    assert (c.loc[c["study_id"] == "Haas2014", "role"] == "excluded").all()
    # McKenzie arms are their own exercise subtype
    for sid in ("Paatelma2008", "Petersen2011"):
        rows = c[(c["study_id"] == sid) & (c["arm1"] == "mckenzie")]
        assert len(rows) and (rows["technique1"] == "mckenzie").all(), sid
    # PSFS is function, not disability; Aure 2003's manual therapy arm is combined care
    assert (c.loc[c["instrument"].str.contains("PSFS"), "outcome"] == "function").all()
    assert (c.loc[c["study_id"] == "Aure2003", "intervention1"] == "combined").all()
    assert d.set_index(["study_id", "arm"]).loc[("Aure2003", "manual_therapy"), "intervention"] == "combined"
    # Balthazard 2012: both arms share the exercise co-intervention
    balt = d[d["study_id"] == "Balthazard2012"]
    assert len(balt) == 2 and balt["co_intervention"].str.contains("exercise").all()
    # every adverse-event row says how the trial defined it, or why it cannot
    h = ev.harms
    assert (h["definition"].fillna("").str.len().gt(0) | h["note"].fillna("").str.len().gt(0)).all()
    assert len(a) and len(d)


def test_derived_values_follow_their_rules(ev):
    # raw values are stored as printed: a derivation note may describe how a sign was read, but any row that
    # prints both SD and SE must satisfy SD = SE * sqrt(n), and a contrast printing both SE and CI must agree
    a = ev.arms
    both = a["sd"].notna() & a["se"].notna() & a["n"].notna()
    np.testing.assert_allclose(a.loc[both, "sd"], a.loc[both, "se"] * np.sqrt(a.loc[both, "n"]), rtol=0.02)
    c = ev.contrasts
    both = c["se"].notna() & c["ci_low"].notna() & c["ci_high"].notna()
    z = stats.norm.ppf(0.975)
    np.testing.assert_allclose(c.loc[both, "se"], (c.loc[both, "ci_high"] - c.loc[both, "ci_low"]) / (2 * z),
                               rtol=0.05)
    # rows re-signed by the pipeline are marked in the raw data, and only change scores are
    assert (a.loc[a["change_sign"].notna(), "value_type"] == "change").all()


def test_processed_derivations_match_their_rules(ev):
    res = assemble(ev)
    eff = res.effects
    arms = ev.arms
    for r in eff[eff["source_kind"] == "arms"].itertuples():
        i, j = (int(x.split(":")[1]) - 2 for x in r.source_rows.split(";"))
        a, b = arms.loc[i], arms.loc[j]
        sign = 1 if a["change_sign"] != "baseline_minus_followup" else -1
        diff = sign * (a["mean"] - b["mean"])
        assert r.md == pytest.approx(diff if r.higher_is_worse else -diff)
        if "SD = SE * sqrt(n)" in (r.derivation or ""):
            assert pd.isna(a["sd"]) or pd.isna(b["sd"])  # an SD was derived only where one was not printed
    for r in eff[eff["source_kind"] == "contrasts"].itertuples():
        k = int(r.source_rows.split(":")[1]) - 2
        c = ev.contrasts.loc[k]
        if "CI width" in (r.derivation or ""):
            assert r.md_se == pytest.approx((c["ci_high"] - c["ci_low"]) / (2 * stats.norm.ppf(0.975)))
        assert abs(r.md) == pytest.approx(abs(c["estimate"]))


def test_trials_with_unstated_directions_never_reach_primary(ev):
    res = assemble(ev)
    prim = res.primary()
    ns = ev.contrasts[ev.contrasts["direction_stored"] == "not_stated"]
    rows = {f"contrasts.csv:{i + 2}" for i in ns.index}
    assert not set(prim["source_rows"]) & rows
    # every study that is not in the primary set is listed with a reason
    missing = set(ev.studies["study_id"]) - set(prim["study_id"])
    listed = set(res.exclusions["study_id"])
    assert missing <= listed


def test_comparisons_cover_the_core_questions(ev):
    prim = assemble(ev).primary()
    comps = set(prim["comparison"])
    for needed in ("manual_therapy_vs_exercise", "combined_vs_usual_care", "manual_therapy_vs_usual_care",
                   "exercise_vs_usual_care"):
        assert needed in comps
    assert {"short", "long"} <= set(prim["window"].dropna())


def test_second_edition_rules_hold_on_the_bundled_data():
    """Evidence issue: every dose arm of Haas 2014 is present with its manipulation sessions; every adverse-event
    row has its definition or a note; every bundled arm has a dose row."""
    import mt_evidence as me

    ev = me.load_evidence()
    haas = ev.arm_details[ev.arm_details["study_id"] == "Haas2014"].set_index("arm")["sessions"].to_dict()
    assert haas == {"smt0_light_massage": 0, "smt6": 6, "smt12": 12, "smt18": 18}
    h = ev.harms
    assert len(h) and ((h["definition"].str.len() > 0) | (h["note"].str.len() > 0)).all()
    detailed = set(zip(ev.arm_details["study_id"], ev.arm_details["arm"]))
    arms = set(zip(ev.arms["study_id"], ev.arms["arm"]))
    original = set(ev.studies["study_id"].iloc[:34])  # the first edition's 34 trials come first in studies.csv
    missing = {a for a in arms if a[0] in original and a not in detailed}
    assert not missing, f"bundled arms without a dose row: {sorted(missing)}"

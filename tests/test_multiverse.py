"""The multiverse (docs/methods.md section 19), proved on a hand-built comparison frame whose every answer is known.

SYNTHETIC rows (made-up trials T1..T4), never in a report.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

import mt_evidence as me
from mt_evidence.synthesis import analysis as A
from mt_evidence.synthesis.multiverse import CHOICES, multiverse, multiverse_summary

CFG = A.load_config()
OTHER = A.OTHER_POINT_USED


def row(study, yi, vi, week, *, used=True, instrument="VAS", rob="some_concerns", derived=False, adjusted=False,
        control="usual_care", smd=0.1):
    return {"study_id": study, "comparison": "manual_therapy_vs_pragmatic", "outcome": "pain", "window": "short",
            "timepoint_weeks": week, "instrument": instrument, "yi": yi, "vi": vi, "md100": yi, "smd": smd,
            "used": used, "why_not": "" if used else OTHER, "rob_overall": rob, "derived": derived,
            "adjusted": adjusted, "control_type": control}


# T1: week 12 (closest to the 13-week target, used: -20) and week 4 (earliest: -2); T2 at high risk of bias (-18);
# T3 with a derived SD (-16); T4 model-adjusted, advice as control (-4); every variance 4
FRAME = pd.DataFrame([
    row("T1", -20.0, 4.0, 12), row("T1", -2.0, 4.0, 4, used=False),
    row("T2", -18.0, 4.0, 13, rob="high"),
    row("T3", -16.0, 4.0, 8, derived=True),
    row("T4", -4.0, 4.0, 13, adjusted=True, control="advice"),
])


def specs_where(mv, **choices):
    s = mv.specs
    for k, v in choices.items():
        s = s[s[k] == v]
    return s


def test_the_plan_is_the_primary_analysis():
    mv = multiverse(FRAME, CFG)
    plan = mv.specs[mv.specs["plan"]]
    assert len(plan) == 1
    ref = A.pool_analysis([-20.0, -18.0, -16.0, -4.0], [4.0] * 4, ["T1", "T2", "T3", "T4"], CFG)
    assert plan["estimate"].item() == pytest.approx(ref.estimate, rel=1e-12)
    assert plan["ci_low"].item() == pytest.approx(ref.ci_low, rel=1e-12)
    assert plan["studies"].item() == "T1, T2, T3, T4"


@pytest.mark.parametrize("choices, studies, estimate", [
    # earliest time point: T1 enters at week 4 (-2); the others have one point each
    (dict(timepoint="earliest", risk_of_bias="all", derived="in", adjusted="in", control="all"),
     "T1, T2, T3, T4", None),
    # without trials at high risk: T2 out -> 3 trials
    (dict(timepoint="closest", risk_of_bias="no_high", derived="in", adjusted="in", control="all"),
     "T1, T3, T4", None),
    # derived out and adjusted out: T1 and T2 -> two trials, common effect: mean of -20 and -18
    (dict(timepoint="closest", risk_of_bias="all", derived="out", adjusted="unadjusted_only", control="all"),
     "T1, T2", -19.0),
    # advice only: T4 alone, its own result
    (dict(timepoint="closest", risk_of_bias="all", derived="in", adjusted="in", control="advice"), "T4", -4.0),
    # low risk only: no trial
    (dict(timepoint="closest", risk_of_bias="low_only", derived="in", adjusted="in", control="all"), "", None),
])
def test_each_choice_selects_the_known_trials(choices, studies, estimate):
    mv = multiverse(FRAME, CFG)
    s = specs_where(mv, estimator="REML", ci="hksj_adhoc", instrument="preferred", **choices)
    assert len(s) == 1
    r = s.iloc[0]
    assert r["studies"] == studies
    if estimate is not None:
        assert r["estimate"] == pytest.approx(estimate, abs=1e-12)
    if studies == "T1, T2, T3, T4" and choices["timepoint"] == "earliest":
        ref = me.pool([-2.0, -18.0, -16.0, -4.0], [4.0] * 4, method="REML", test="hksj", adhoc=True)
        assert r["estimate"] == pytest.approx(ref.estimate, rel=1e-12)
    if not studies:
        assert r["k"] == 0 and np.isnan(r["estimate"]) and r["model"] == "no trial"


def test_estimator_and_interval_act_only_from_three_trials():
    mv = multiverse(FRAME, CFG)
    two = specs_where(mv, timepoint="closest", instrument="preferred", risk_of_bias="all", derived="out",
                      adjusted="unadjusted_only", control="all")
    assert len(two) == 9 and set(two["model"]) == {"common effect, z"}
    assert two["estimate"].nunique() == 1 and two["ci_low"].nunique() == 1
    four = specs_where(mv, timepoint="closest", instrument="preferred", risk_of_bias="all", derived="in",
                       adjusted="in", control="all")
    for r in four.itertuples():
        ci = {"hksj_adhoc": dict(test="hksj", adhoc=True), "hksj": dict(test="hksj", adhoc=False),
              "z": dict(test="z")}[r.ci]
        ref = me.pool([-20.0, -18.0, -16.0, -4.0], [4.0] * 4, method=r.estimator, **ci)
        assert (r.estimate, r.ci_low, r.ci_high) == pytest.approx((ref.estimate, ref.ci_low, ref.ci_high), rel=1e-12)


def test_the_summary_counts_the_combinations_that_change_the_conclusion():
    mv = multiverse(FRAME, CFG)
    s = multiverse_summary(mv).iloc[0]
    run = mv.specs[mv.specs["k"] > 0]
    # control types usual care and advice: all, each alone -> 3 values; 3 x 2 x 3 x 2 x 2 x 3 data choices x 9 models
    assert len(mv.specs) == 3 * 2 * 3 * 2 * 2 * 3 * 9
    assert s["n_specs"] == len(run)
    # equal variances: the plan's estimate is the mean of -20, -18, -16 and -4, -14.5: little or no difference (T 15)
    assert s["plan_estimate"] == pytest.approx(-14.5, abs=1e-9) and s["plan_category"] == "little"
    expected = int((run["category"] == s["plan_category"]).sum())
    assert s["n_same"] == expected and s["flips"] == (expected < len(run))
    # T1 and T2 alone (derived values out, unadjusted only) give -19, an important benefit: the conclusion flips
    assert s["flips"] and "benefit" in s["other_categories"]
    # extremes: T1 alone at week 12 (-20) and at week 4 (-2; earliest, no high risk, no derived, unadjusted)
    assert s["estimate_min"] == pytest.approx(-20.0) and s["estimate_max"] == pytest.approx(-2.0)


def test_choices_can_be_narrowed_and_are_checked():
    mv = multiverse(FRAME, CFG, choices={"estimator": ("DL",), "ci": ("z",)})
    # the plan's model is always kept, so the plan row exists
    assert set(mv.specs["estimator"]) == {"REML", "DL"} and mv.specs["plan"].sum() == 1
    with pytest.raises(ValueError, match="unknown choice"):
        multiverse(FRAME, CFG, choices={"colour": ("red",)})
    assert set(CHOICES) == {"estimator", "ci", "timepoint", "instrument", "risk_of_bias", "derived", "adjusted",
                            "control"}


def test_on_the_bundled_evidence_the_plan_rows_reproduce_every_primary_analysis():
    ev = me.load_evidence()
    frame = A.comparison_frame(ev, CFG)
    mv = multiverse(frame, CFG)
    primary = {(w.comparison, w.outcome, w.window): w.result for w in A.pool_windows(frame, CFG)}
    plan = mv.specs[mv.specs["plan"]]
    assert len(plan) >= 20
    for r in plan.itertuples():
        p = primary[(r.comparison, r.outcome, r.window)]
        assert (r.estimate, r.ci_low, r.ci_high) == pytest.approx((p.estimate, p.ci_low, p.ci_high), rel=1e-12)
        assert r.k == p.k


def test_the_specification_curve_draws_every_specification():
    import matplotlib

    matplotlib.use("Agg")
    from mt_evidence.reporting.speccurve import plot_specification_curve, specification_frame

    mv = multiverse(FRAME, CFG)
    fr = specification_frame(mv.specs)
    assert fr["estimate"].is_monotonic_increasing and len(fr) == (mv.specs["k"] > 0).sum()
    fig = plot_specification_curve(mv.specs, threshold=15)
    top = fig.axes[0]
    drawn = top.collections[1].get_offsets()[:, 1]
    assert np.allclose(np.sort(drawn), np.sort(fr["estimate"].to_numpy()))
    with pytest.raises(ValueError, match="nothing to draw"):
        plot_specification_curve(mv.specs[mv.specs["k"] == 0])


def test_the_report_flags_conclusions_that_change_under_other_choices():
    from mt_evidence.reporting import report as R
    from mt_evidence.synthesis.multiverse import multiverse as run

    ev = me.load_evidence()
    frame = A.comparison_frame(ev, CFG)
    summary = run(frame, CFG).summary()
    texts = R.multiverse_texts(summary)
    flips = summary[summary["flips"]]
    assert len(flips) and len(summary) > len(flips)  # on this evidence some conclusions hold, some do not
    for r in summary.itertuples():
        t = texts[(r.comparison, r.outcome, r.window)]
        assert t["flips"] == r.flips
        agree = f"{r.n_same} of {r.n_specs} combinations" if r.flips else f"all {r.n_specs} combinations"
        assert agree in t["text"]
        assert ("the conclusion changes under some reasonable choices" in t["text"]) == r.flips
    html, claims, _, _ = R._render(ev, generated="test")
    assert "Multiverse: every combination of choices at once" in html
    tested = {(t.test.comparison, t.test.outcome, t.test.window) for c in claims for t in c.tests}
    shown = [texts[k]["text"] for k in tested if k in texts]
    assert shown and all(s.replace("'", "&#39;") in html for s in shown)


def test_progress_reaches_its_total():
    seen = []
    multiverse(FRAME, CFG, progress=lambda done, total: seen.append((done, total)))
    assert seen and seen[-1][0] == seen[-1][1] and all(b == seen[0][1] for _, b in seen)
    assert [d for d, _ in seen] == sorted(d for d, _ in seen)


def test_the_command_writes_both_tables_and_refuses_foreign_folders(tmp_path):
    import subprocess
    import sys

    exe = [sys.executable, "-m", "mt_evidence.cli", "multiverse"]
    out = tmp_path / "mv"
    r = subprocess.run(exe + ["--out", str(out)], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    summary = pd.read_csv(out / "multiverse_summary.csv")
    specs = pd.read_csv(out / "multiverse.csv")
    assert len(specs) == len(multiverse(A.comparison_frame(me.load_evidence(), CFG), CFG).specs)
    assert f"{len(summary)} analyses" in r.stderr and "Traceback" not in r.stderr
    mine = tmp_path / "mine"
    mine.mkdir()
    (mine / "notes.txt").write_text("my own file")
    r = subprocess.run(exe + ["--out", str(mine)], capture_output=True, text=True)
    assert r.returncode == 1 and "Traceback" not in r.stderr and "[red]" not in r.stderr
    assert (mine / "notes.txt").read_text() == "my own file" and len(list(mine.iterdir())) == 1

"""Analyses by window, multi-arm handling, short vs long, sensitivity, and the figures' tidy frames.

Fixtures are SYNTHETIC (invented numbers) unless they load the bundled data."""

from pathlib import Path

import matplotlib

matplotlib.use("Agg")

import numpy as np
import pandas as pd
import pytest

import mt_evidence as me
from mt_evidence.synthesis import analysis as A
from mt_evidence.reporting import plots as P



@pytest.fixture
def synth(synthetic_evidence):
    return synthetic_evidence


def add_arm(path: Path, **row):
    df = pd.read_csv(path / "arms.csv", dtype=str)
    df = pd.concat([df, pd.DataFrame([row])], ignore_index=True)
    df.to_csv(path / "arms.csv", index=False)


def test_default_config_has_cochrane_windows():
    cfg = A.load_config()
    assert [w.name for w in cfg.windows] == ["short", "intermediate", "long"]
    short, inter, long = cfg.windows
    assert short.contains(13) and not short.contains(0) and not short.contains(14)
    assert inter.contains(26) and not inter.contains(52) and not inter.contains(13)
    assert long.contains(52) and long.contains(104)
    assert cfg.important_difference["pain"] == 15 and "Hayden 2021" in cfg.important_difference_source
    assert cfg.mic["pain"] == 15 and "Ostelo" in cfg.mic_source  # within-person change: kept apart


def test_bad_config_is_a_clear_error(tmp_path):
    p = tmp_path / "c.toml"
    p.write_text("[[windows]]\nname = 'short'\n")
    with pytest.raises(ValueError, match="missing 'label'"):
        A.load_config(p)


def test_comparison_frame_rules_on_synthetic_data(synth):
    ev = me.load_evidence(synth)
    f = A.comparison_frame(ev)
    mt_ex = f[f["comparison"] == "manual_therapy_vs_exercise"]
    assert set(mt_ex["window"]) == {"short", "long"}
    short = mt_ex[mt_ex["window"] == "short"].iloc[0]
    assert short["yi"] == pytest.approx(-10.0)  # (3.0 - 4.0) on 0-10 -> -10 on 0-100
    assert short["vi"] == pytest.approx((np.sqrt(4 / 29 + 4 / 28) * 10) ** 2)
    comb = f[(f["comparison"] == "combined_vs_control") & (f["window"] == "short")].iloc[0]
    assert comb["control_type"] == "usual_care" and comb["derived"]
    # the contrast at 52 weeks arrives oriented: combined vs usual care, negative favours combined
    long = f[(f["comparison"] == "combined_vs_control") & (f["window"] == "long")].iloc[0]
    assert long["md"] == pytest.approx(-1.5) and long["source_kind"] == "contrasts"
    assert set(f["rob_overall"]) <= {"low", "not assessed"}


def test_one_time_point_per_trial_per_window_closest_to_target(synth):
    base = dict(study_id="SynthA2020", technique="", outcome="pain", instrument="NRS (0-10)", scale_min="0",
                scale_max="10", higher_is_worse="true", value_type="final", sd="2.0", adjusted="false",
                source_url="https://example.org/synthetic-a", source_location="Table 9")
    add_arm(synth, arm="manip", intervention="manual_therapy", timepoint_weeks="12", n="29", mean="2.0", **base)
    add_arm(synth, arm="exer", intervention="exercise", timepoint_weeks="12", n="28", mean="4.0", **base)
    f = A.comparison_frame(me.load_evidence(synth))
    rows = f[(f["comparison"] == "manual_therapy_vs_exercise") & (f["window"] == "short")]
    assert len(rows) == 2 and rows["used"].sum() == 1
    used = rows[rows["used"]].iloc[0]
    assert used["timepoint_weeks"] == 12  # closer to the 13-week target than week 4
    assert "another time point" in rows[~rows["used"]].iloc[0]["why_not"]


def test_multi_arm_trial_combines_arms_instead_of_double_counting(synth):
    base = dict(study_id="SynthA2020", technique="", outcome="pain", instrument="NRS (0-10)", scale_min="0",
                scale_max="10", higher_is_worse="true", value_type="final", adjusted="false",
                source_url="https://example.org/synthetic-a", source_location="Table 9")
    add_arm(synth, arm="mobil", intervention="manual_therapy", timepoint_weeks="4", n="30", mean="3.5", sd="2.0",
            **base)
    f = A.comparison_frame(me.load_evidence(synth))
    row = f[(f["comparison"] == "manual_therapy_vs_exercise") & (f["window"] == "short")].iloc[0]
    n, m, sd = me.combine_arms(29, 3.0, 2.0, 30, 3.5, 2.0)
    assert row["n1"] == pytest.approx(float(n)) and row["arm1"] == "manip+mobil"
    assert row["md"] == pytest.approx(float(m) - 4.0)
    assert (f[(f["comparison"] == "manual_therapy_vs_exercise") & f["used"]]
            .groupby(["study_id", "window"]).size().max()) == 1


def test_short_vs_long_within_trials(synth):
    ev = me.load_evidence(synth)
    f = A.comparison_frame(ev)
    cfg = A.load_config()
    sl = A.short_vs_long(f, "manual_therapy_vs_exercise", "pain", cfg)
    t = sl.trials.iloc[0]
    assert t["study_id"] == "SynthA2020"
    v = t["short_var"] + t["long_var"] - 2 * 0.5 * np.sqrt(t["short_var"] * t["long_var"])
    assert sl.within.estimate == pytest.approx(t["long"] - t["short"])
    assert sl.within.se == pytest.approx(np.sqrt(v))
    assert list(sl.sensitivity["correlation"]) == list(cfg.sensitivity)
    # higher assumed correlation -> narrower interval for the within-trial change
    widths = (sl.sensitivity["ci_high"] - sl.sensitivity["ci_low"]).to_numpy()
    assert np.all(np.diff(widths) < 0)
    assert "naive subgroup test" in sl.summary()
    none = A.short_vs_long(f, "combined_vs_control", "pain", cfg)
    assert none.within is None and "cannot be estimated" in none.summary()


def test_sensitivity_rows(synth):
    ev = me.load_evidence(synth)
    f = A.comparison_frame(ev)
    s = A.sensitivity(f, "combined_vs_control", "disability", "short")
    assert list(s["analysis"]) == ["primary", "common_effect", "random_z", "low_risk_of_bias",
                                   "no_derived_values", "unadjusted_only", "final_values_only"]
    assert s.set_index("analysis").loc["low_risk_of_bias", "k"] == 1  # SynthB2021 is judged low (synthetic)
    assert s.set_index("analysis").loc["no_derived_values", "k"] == 0  # its SD came from the SE


def test_bundled_analyses_run():
    ev = me.load_evidence()
    f = A.comparison_frame(ev)
    res = A.pool_windows(f)
    table = A.results_table(res)
    assert {"manual_therapy_vs_control", "combined_vs_control"} <= set(table["comparison"])
    assert (table["k"] >= 1).all()
    assert f["used"].any() and (f.loc[~f["used"], "why_not"] != "").all()


# ------------------------------------------------------------------------------------------- figures


def test_forest_frame_and_plot():
    r = me.pool([-2.0, -1.0, 0.5, -3.0], [1.0, 0.5, 2.0, 1.5], labels=["A", "B", "A", "C"])
    fr = P.forest_frame(r)
    assert list(fr["row_type"]) == ["study"] * 4 + ["pooled", "prediction"]
    assert list(fr.loc[fr["row_type"] == "study", "label"]) == ["A", "B", "A", "C"]  # duplicates kept
    np.testing.assert_allclose(fr.loc[fr["row_type"] == "study", "weight"].sum(), 100)
    assert fr.iloc[4]["estimate"] == r.estimate and fr.iloc[5]["ci_low"] == r.pi_low
    info = pd.DataFrame({"n1": [10, 20, 30], "n2": [11, 21, 31], "rob_overall": ["low", None, "high"]},
                        index=["A", "B", "C"])
    ax = P.plot_forest(r, info=info, mid=1.0, favours=("MT", "exercise"), title="synthetic")
    texts = [t.get_text() for t in ax.texts]
    assert "Estimate [95% CI]" in texts and any(t.startswith("Heterogeneity") for t in texts)
    assert any("Favours MT" in t.get_text() for t in ax.texts)
    labels = [t for t in texts if t in ("A", "B", "C")]
    assert labels.count("A") == 2


def test_long_labels_do_not_overlap(tmp_path):
    labels = [f"A very long trial name number {i} with extra words to wrap" for i in range(12)]
    r = me.pool(np.linspace(-2, 2, 12), np.full(12, 0.5), labels=labels)
    ax = P.plot_forest(r)
    fig = ax.figure
    fig.canvas.draw()
    renderer = fig.canvas.get_renderer()
    boxes = [t.get_window_extent(renderer) for t in ax.texts if t.get_text().startswith("A very long")]
    for b1, b2 in zip(boxes, boxes[1:]):
        assert b1.y0 >= b2.y1 - 1 or b2.y0 >= b1.y1 - 1  # no vertical overlap between consecutive rows


def test_short_long_frame_and_export(tmp_path):
    s = me.pool([-5.0, -3.0, -4.0], [2.0, 1.0, 3.0], labels=["A", "B", "C"])
    lg = me.pool([-1.0, 0.5], [2.0, 1.0], labels=["B", "D"])
    fr = P.short_long_frame(s, lg)
    assert list(fr.loc[fr["row_type"] == "study", "label"]) == ["A", "B", "C", "D"]
    assert np.isnan(fr.set_index("label").loc["A", "long_estimate"])
    assert fr.set_index("label").loc["B", "long_estimate"] == -1.0
    fig = P.plot_short_long(s, lg, mid=2, change_text="synthetic")
    paths = P.save_figure(fig, tmp_path / "fig")
    assert [p.suffix for p in paths] == [".png", ".svg", ".pdf"]
    assert all(p.stat().st_size > 1000 for p in paths)
    from PIL import Image

    with Image.open(paths[0]) as im:
        assert im.info.get("dpi", (300, 300))[0] == pytest.approx(300, abs=1)
    again = P.save_figure(fig, tmp_path / "fig2")
    assert again[0].read_bytes() == paths[0].read_bytes()  # deterministic PNG


def test_short_long_figure_shows_weights_and_participants_like_metafor():
    """Issue 13 (anchors: metafor's forest plot): each panel prints the estimate with its CI, the weight and the
    participants per arm; every text stays inside the saved figure (nothing clipped at the right edge)."""
    s = me.pool([-5.0, -3.0, -4.0], [2.0, 1.0, 3.0], labels=["A", "B", "C"])
    lg = me.pool([-1.0, 0.5], [2.0, 1.0], labels=["B", "D"])
    info = {"short": pd.DataFrame({"n1": [40, 60, 30], "n2": [41, 59, 31]}, index=["A", "B", "C"]),
            "long": pd.DataFrame({"n1": [55, 20], "n2": [50, 22]}, index=["B", "D"])}
    fr = P.short_long_frame(s, lg, info=info).set_index("label")
    assert fr.loc["B", "long_n1"] == 55 and np.isnan(fr.loc["A", "long_n1"])
    fig = P.plot_short_long(s, lg, mid=2, change_text="synthetic", info=info, title="SYNTHETIC")
    texts = [t for ax in fig.axes for t in ax.texts] + list(fig.texts)
    shown = {t.get_text() for t in texts}
    assert {"Weight", "n (arms)", "40/41", "55/50", "100%"} <= shown
    w = s.study_frame()["weight"]
    assert f"{w.iloc[0]:.0f}%" in shown
    fig.canvas.draw()
    renderer = fig.canvas.get_renderer()
    right = fig.bbox.x1
    assert all(t.get_window_extent(renderer).x1 <= right + 1 for t in texts if t.get_text())


def test_funnel_and_rob():
    r = me.pool([-2.0, -1.0, 0.5, -3.0], [1.0, 0.5, 2.0, 1.5])
    fr = P.funnel_frame(r)
    assert {"z90", "z95", "z99"} <= set(fr.columns)
    ax = P.plot_funnel(r)
    assert ax.get_ylim()[0] > ax.get_ylim()[1]  # SE axis inverted, as metafor
    st = pd.DataFrame({"study_id": ["X", "Y"], "rob_overall": ["low", None], "rob_source": ["https://x", None]})
    rf = P.rob_frame(st)
    assert set(rf.loc[rf["study_id"] == "Y", "judgement"]) == {"not assessed"}
    ax = P.plot_rob(st)
    assert "1 of 2 trials with any judgement, 1 with an overall one (0 this review's own" in ax.get_title(loc="left")
    rob = pd.DataFrame({"study_id": ["Y"], "tool": ["RoB1"], "domain": ["Allocation concealment (selection bias)"],
                        "judgement": ["high"], "source_url": ["https://y"]})
    rf = P.rob_frame(st, rob)
    assert rf.set_index(["study_id", "domain"]).loc[("Y", "Allocation concealment"), "judgement"] == "high"
    assert rf.set_index(["study_id", "domain"]).loc[("Y", "Overall"), "judgement"] == "not assessed"
    assert rf.set_index(["study_id", "domain"]).loc[("X", "Allocation concealment"), "judgement"] == "not assessed"
    # the review's own RoB 2 fills the five domains; the overall judgement is the one the analyses use
    own = pd.DataFrame({"study_id": ["Y"] * 6, "tool": ["RoB2"] * 6,
                        "domain": ["randomisation", "deviations", "missing", "measurement", "selection", "overall"],
                        "judgement": ["low", "some_concerns", "low", "high", "low", "high"],
                        "source_url": ["https://y"] * 6, "basis": ["review_own"] * 6})
    st2 = st.assign(rob_overall=["low", "high"], rob_basis=["published", "review_own"])
    rf = P.rob_frame(st2, own).set_index(["study_id", "domain"])
    assert rf.loc[("Y", "Measurement"), "judgement"] == "high" and rf.loc[("Y", "Measurement"), "basis"] == "review_own"
    assert rf.loc[("Y", "Overall"), "judgement"] == "high" and rf.loc[("X", "Overall"), "basis"] == "published"
    assert "overall" not in rf.index.get_level_values("domain")
    ax = P.plot_rob(st2, own)
    assert "2 with an overall one (1 this review's own RoB 2 by two readers, 1 published)" in ax.get_title(loc="left")


def test_subgroup_forest_frame_and_plot():
    sub = me.subgroup([-5, -3, -8, -1, -2, -6], [4, 3, 5, 2, 3, 6],
                      ["usual_care", "usual_care", "sham", "sham", "wait_list", "wait_list"], labels=list("ABCDEF"))
    fr = P.forest_frame_subgroups(sub)
    assert list(fr["row_type"]) == (["header", "study", "study", "subgroup"] * 3 + ["pooled", "prediction"])
    sg = fr[fr["row_type"] == "subgroup"]
    np.testing.assert_allclose(sg["estimate"], [r.estimate for r in sub.groups.values()])
    ax = P.plot_forest_subgroups(sub, favours=("MT", "control"))
    texts = " ".join(t.get_text() for t in ax.texts)
    assert "Test for subgroup differences: separate tau²" in texts and "common tau²" in texts


def test_control_type_subgroups_on_bundled_data():
    ev = me.load_evidence()
    f = A.comparison_frame(ev)
    sub = A.control_subgroups(f, "combined_vs_control", "disability", "short")
    assert sub is not None and set(sub.groups) <= {"usual_care", "advice", "sham", "wait_list"}
    assert A.control_subgroups(f, "manual_therapy_vs_exercise", "disability", "short") is None


def test_contrast_only_multi_arm_trial_without_group_sizes_keeps_one_comparison(synth):
    """When the shared arm cannot be split (a group size unknown), one contrast is kept and the other is listed."""
    df = pd.read_csv(synth / "contrasts.csv", dtype=str)
    row = df.iloc[0].copy()
    extra = row.copy()
    extra["arm1"], extra["n2"], extra["estimate"] = "uc", "", "1.0"
    extra["arm2"] = "combo2"
    df = pd.concat([df, pd.DataFrame([extra])], ignore_index=True)
    df.to_csv(synth / "contrasts.csv", index=False)
    f = A.comparison_frame(me.load_evidence(synth))
    rows = f[(f["comparison"] == "combined_vs_control") & (f["window"] == "long")]
    assert len(rows) == 2 and rows["used"].sum() == 1
    assert rows.loc[~rows["used"], "why_not"].iloc[0].startswith("multi-arm trial")
    assert "cannot be split" in rows.loc[~rows["used"], "why_not"].iloc[0]


def test_smd_rules_change_scores_adjusted_means_and_contrasts(synth):
    """docs/methods.md section 3: SMD from final values only; no SD rebuilt from an adjusted mean's SE; a
    contrast-only trial gives an SMD from the SE of an unadjusted difference and both group sizes."""
    from scipy import stats

    arms = pd.read_csv(synth / "arms.csv", dtype=str, keep_default_na=False)
    week4 = arms["timepoint_weeks"] == "4"
    arms.loc[week4, "value_type"] = "change"  # SynthA week 4 becomes change scores
    arms.to_csv(synth / "arms.csv", index=False)
    con = pd.read_csv(synth / "contrasts.csv", dtype=str, keep_default_na=False)
    con.loc[0, "adjusted"] = "false"
    con.to_csv(synth / "contrasts.csv", index=False)
    ev = me.load_evidence(synth)
    smd = A.comparison_frame(ev, measure="smd")
    md = A.comparison_frame(ev, measure="md100")
    a4 = smd[(smd["study_id"] == "SynthA2020") & (smd["timepoint_weeks"] == 4)].iloc[0]
    assert not a4["used"] and "final values only" in a4["why_not"]
    assert md[(md["study_id"] == "SynthA2020") & (md["timepoint_weeks"] == 4)]["used"].all()  # MD may mix them
    b52 = smd[(smd["study_id"] == "SynthB2021") & (smd["timepoint_weeks"] == 52)].iloc[0]
    # by hand: MD 1.5 (usual care minus combined) -> -1.5 for combined first; SE from the 95% CI; SD from SE
    se = (2.5 - 0.5) / (2 * stats.norm.ppf(0.975))
    n1, n2 = 37.0, 38.0
    d = -1.5 / (se / np.sqrt(1 / n1 + 1 / n2))
    m = n1 + n2 - 2
    from scipy.special import gammaln

    j = np.exp(gammaln(m / 2) - 0.5 * np.log(m / 2) - gammaln((m - 1) / 2))  # exact correction, as metafor
    assert b52["used"] and b52["yi"] == pytest.approx(j * d, rel=1e-9)
    assert b52["vi"] == pytest.approx(1 / n1 + 1 / n2 + (j * d) ** 2 / (2 * (n1 + n2)), rel=1e-9)
    assert b52["derived"] and "6.5.2.3" in b52["derivation"]
    con.loc[0, "adjusted"] = "true"
    con.to_csv(synth / "contrasts.csv", index=False)
    smd2 = A.comparison_frame(me.load_evidence(synth), measure="smd")
    b52 = smd2[(smd2["study_id"] == "SynthB2021") & (smd2["timepoint_weeks"] == 52)].iloc[0]
    assert not b52["used"] and "model-adjusted" in b52["why_not"]


def test_no_smd_from_the_se_of_adjusted_means(synth):
    arms = pd.read_csv(synth / "arms.csv", dtype=str, keep_default_na=False)
    w12 = arms["timepoint_weeks"] == "12"
    arms.loc[w12, "sd"] = ""
    arms.loc[w12, "se"] = "0.5"
    arms.loc[w12, "adjusted"] = "true"
    arms.to_csv(synth / "arms.csv", index=False)
    smd = A.comparison_frame(me.load_evidence(synth), measure="smd")
    row = smd[(smd["study_id"] == "SynthB2021") & (smd["timepoint_weeks"] == 12)].iloc[0]
    assert not row["used"] and "adjusted mean" in row["why_not"]
    arms.loc[w12, "adjusted"] = "false"  # unadjusted means: SD = SE x sqrt(n) is the Handbook's rule
    arms.to_csv(synth / "arms.csv", index=False)
    smd = A.comparison_frame(me.load_evidence(synth), measure="smd")
    assert smd[(smd["study_id"] == "SynthB2021") & (smd["timepoint_weeks"] == 12)]["used"].all()


def test_contrast_only_multi_arm_trial_splits_the_shared_arm(synth):
    """Two manual-therapy arms against one usual-care arm, contrasts only (SYNTHETIC): both contrasts are used,
    each with the shared arm's n halved (Cochrane Handbook 23.3.4), never one chosen over the other."""
    con = pd.read_csv(synth / "contrasts.csv", dtype=str, keep_default_na=False)
    base = dict(con.iloc[0])
    base.update(study_id="SynthA2020", arm1="uc", arm2="mt1", intervention1="usual_care",
                intervention2="manual_therapy", outcome="pain", instrument="NRS (0-10)", scale_min="0",
                scale_max="10", timepoint_weeks="8", estimate="1.5", se="0.4", ci_low="", ci_high="", n1="40",
                n2="38", adjusted="false", direction_printed="usual care minus manual therapy")
    other = dict(base, arm2="mt2", estimate="1.0", se="0.5", n2="42")
    con = pd.concat([con, pd.DataFrame([base, other])], ignore_index=True)
    con.to_csv(synth / "contrasts.csv", index=False)
    f = A.comparison_frame(me.load_evidence(synth))
    rows = f[(f["comparison"] == "manual_therapy_vs_pragmatic") & (f["timepoint_weeks"] == 8)]
    assert rows["used"].all() and len(rows) == 2
    assert set(rows["study_id"]) == {"SynthA2020 (mt1)", "SynthA2020 (mt2)"}
    r1 = rows[rows["study_id"] == "SynthA2020 (mt1)"].iloc[0]
    # by hand: SE 0.4 on 0-10 -> 4 points; control n 40 halved to 20
    factor = (1 / 38 + 1 / 20) / (1 / 38 + 1 / 40)
    assert r1["vi"] == pytest.approx(4.0**2 * factor, rel=1e-12) and r1["n2"] == 20
    assert r1["population"] == "chronic" and "23.3.4" in r1["multiarm_note"]


def test_md_and_smd_versions_use_the_same_row_of_each_trial(synth):
    """A trial with a preferred instrument that gives only the MD (adjusted means, SE) and another that gives both:
    both versions of the analysis take the row that gives both (docs/methods.md section 3). SYNTHETIC."""
    for arm, intervention, technique, mean in (("manip", "manual_therapy", "manipulation", "30"),
                                                ("exer", "exercise", "general_exercise", "40")):
        add_arm(synth, study_id="SynthA2020", arm=arm, intervention=intervention, technique=technique,
                outcome="pain", instrument="VAS (0-100)", scale_min="0", scale_max="100", higher_is_worse="true",
                timepoint_weeks="4", value_type="final", n="29", mean=mean, se="3", adjusted="true",
                source_url="https://example.org/synthetic-a", source_location="Table 3")
    ev = me.load_evidence(synth)
    md = A.comparison_frame(ev, measure="md100")
    smd = A.comparison_frame(ev, measure="smd")
    pick = {}
    for name, f in (("md", md), ("smd", smd)):
        row = f[(f["study_id"] == "SynthA2020") & (f["window"] == "short") & (f["outcome"] == "pain")
                & (f["comparison"] == "manual_therapy_vs_exercise") & f["used"]]
        pick[name] = tuple(row[["instrument", "timepoint_weeks"]].iloc[0])
    assert pick["md"] == pick["smd"] == ("NRS (0-10)", 4)


def test_instrument_range_in_doubt_enters_with_a_sensitivity_range(synth, tmp_path):
    """docs/methods.md section 3 (SYNTHETIC): a Roland-Morris row whose version is not stated keeps an empty range
    in the data; it enters on the first range of its rule (0-24), marked, and the sensitivity analyses give the
    other range (0-23) and the analysis without it. An instrument with no rule stays out, with the reason."""
    arms = pd.read_csv(synth / "arms.csv", dtype=str, keep_default_na=False)
    b12 = arms["study_id"] == "SynthB2021"
    arms.loc[b12, ["instrument", "scale_min", "scale_max"]] = ["RMDQ (version not stated)", "", ""]
    arms.to_csv(synth / "arms.csv", index=False)
    con = pd.read_csv(synth / "contrasts.csv", dtype=str, keep_default_na=False)
    con.loc[0, ["instrument", "scale_min", "scale_max"]] = ["Roland questionnaire (range not printed)", "", ""]
    con.to_csv(synth / "contrasts.csv", index=False)
    ev = me.load_evidence(synth)
    f = A.comparison_frame(ev)
    row = f[(f["study_id"] == "SynthB2021") & (f["comparison"] == "combined_vs_pragmatic")
            & (f["window"] == "short")].iloc[0]
    # by hand: (6.0 - 8.0) on 0-24 -> -8.333 points; SE sqrt(0.7^2 + 0.7^2) on 0-24
    assert row["used"] and row["yi"] == pytest.approx(-2.0 * 100 / 24)
    assert row["vi"] == pytest.approx((np.sqrt(2 * 0.7**2) * 100 / 24) ** 2)
    assert row["derived"] and "range in doubt, 0-24 assumed" in row["derivation"]
    s = A.sensitivity(f, "combined_vs_pragmatic", "disability", "short").set_index("analysis")
    assert s.loc["other_range 0-23", "estimate"] == pytest.approx(-2.0 * 100 / 23)
    assert s.loc["other_range 0-23", "ci_high"] == pytest.approx(
        -2.0 * 100 / 23 + 1.959963984540054 * np.sqrt(2 * 0.7**2) * 100 / 23)
    assert s.loc["printed_ranges_only", "k"] == 0
    long = f[(f["study_id"] == "SynthB2021") & (f["comparison"] == "combined_vs_pragmatic") & (f["window"] == "long")]
    assert long["used"].all() and long["yi"].iloc[0] == pytest.approx(-1.5 * 100 / 24)  # a contrast as well
    # a sensitivity table without a row in doubt has no range variants
    assert not A.sensitivity(f, "manual_therapy_vs_exercise", "pain", "short")["analysis"].str.contains(
        "range").any()
    # no rule for the instrument: out of the 0-100 analyses, with the reason
    cfg = tmp_path / "no_rules.toml"
    text = (Path(A.__file__).parent.parent / "data" / "analysis.toml").read_text()
    cfg.write_text(text.split("[[range_in_doubt]]")[0] + "[important_difference]" + text.split(
        "[important_difference]")[1])
    f0 = A.comparison_frame(ev, A.load_config(cfg))
    row0 = f0[(f0["study_id"] == "SynthB2021") & (f0["comparison"] == "combined_vs_pragmatic")
              & (f0["window"] == "short")].iloc[0]
    assert not row0["used"] and "instrument range unknown" in row0["why_not"]


def test_range_in_doubt_settings_are_checked(tmp_path):
    text = (Path(A.__file__).parent.parent / "data" / "analysis.toml").read_text()
    p = tmp_path / "c.toml"
    p.write_text(text.replace("ranges = [[0, 24], [0, 23]]", "ranges = [[0, 24]]").replace(
        'pattern = "\\\\b(RMDQ|RDQ|RMQ|Roland)"', 'pattern = "(RMDQ"'))
    with pytest.raises(ValueError) as err:
        A.load_config(p)
    msg = str(err.value)
    assert "2 problem(s)" in msg and "not a regular expression" in msg and "two or more [low, high] pairs" in msg


def test_change_score_smd_is_a_separate_analysis(synth):
    """docs/methods.md section 3 (SYNTHETIC): change-score SMDs are never pooled with final-value SMDs; they form
    their own analysis, from the SD of the change in each arm."""
    arms = pd.read_csv(synth / "arms.csv", dtype=str, keep_default_na=False)
    arms.loc[arms["timepoint_weeks"] == "4", "value_type"] = "change"
    arms.to_csv(synth / "arms.csv", index=False)
    ev = me.load_evidence(synth)
    final = A.comparison_frame(ev, measure="smd")
    change = A.comparison_frame(ev, measure="smd_change")
    pick = (lambda f: f[(f["study_id"] == "SynthA2020") & (f["timepoint_weeks"] == 4)
                        & (f["comparison"] == "manual_therapy_vs_exercise")].iloc[0])
    assert not pick(final)["used"] and "change-score SMD analysis" in pick(final)["why_not"]
    c = pick(change)
    es = me.effect_size("SMD", m1=[3.0], sd1=[2.0], n1=[29], m2=[4.0], sd2=[2.0], n2=[28])
    assert c["used"] and c["yi"] == pytest.approx(float(es["yi"][0])) and c["vi"] == pytest.approx(float(es["vi"][0]))
    # final values are not in the change-score analysis, and printed differences neither
    assert not change.loc[change["value_type"] == "final", "used"].any()
    assert (change.loc[change["value_type"] != "change", "why_not"] == A.SMD_CHANGE_ONLY).all()
    assert not change.loc[change["source_kind"] == "contrasts", "used"].any()
    with pytest.raises(ValueError, match="smd_change"):
        A.comparison_frame(ev, measure="or")


def test_mckenzie_trials_have_their_own_sensitivity_analysis(synth):
    """docs/methods.md section 11 (SYNTHETIC): a trial whose exercise side is the McKenzie method is left out in
    the ``without_mckenzie`` analysis, whichever side of the comparison its exercise stands on."""
    arms = pd.read_csv(synth / "arms.csv", dtype=str, keep_default_na=False)
    f0 = A.comparison_frame(me.load_evidence(synth))
    mte = f0[(f0["comparison"] == "manual_therapy_vs_exercise") & f0["used"]]
    assert len(mte) and "without_mckenzie" not in set(A.sensitivity(f0, "manual_therapy_vs_exercise", "pain",
                                                                       "short")["analysis"])
    arms.loc[arms["intervention"] == "exercise", "technique"] = "mckenzie"
    arms.to_csv(synth / "arms.csv", index=False)
    f = A.comparison_frame(me.load_evidence(synth))
    row = f[(f["comparison"] == "manual_therapy_vs_exercise") & f["used"] & (f["outcome"] == "pain")
            & (f["window"] == "short")]
    assert (row["technique2"] == "mckenzie").all()  # the exercise is the second side here
    s = A.sensitivity(f, "manual_therapy_vs_exercise", "pain", "short").set_index("analysis")
    assert s.loc["without_mckenzie", "k"] == s.loc["primary", "k"] - len(row)


def test_reuse_frames_computes_the_effect_rows_once_within_its_scope(monkeypatch):
    """The report asks for comparison frames eight times: within ``reuse_frames`` the effect rows of one evidence and
    settings are computed once and every frame is the one computed afresh; outside, every call computes."""
    ev, cfg = me.load_evidence(), A.load_config()
    calls = []
    real = A._arm_effects
    monkeypatch.setattr(A, "_arm_effects", lambda *a: calls.append(1) or real(*a))
    fresh = {m: A.comparison_frame(ev, cfg, measure=m) for m in A.MEASURES}
    assert len(calls) == 3
    with A.reuse_frames():
        reused = {m: A.comparison_frame(ev, cfg, measure=m) for m in A.MEASURES}
        A.comparison_frame(ev, A.load_config())  # other settings: their own rows
    assert len(calls) == 5
    for m in A.MEASURES:
        pd.testing.assert_frame_equal(reused[m], fresh[m])
    A.comparison_frame(ev, cfg)
    assert len(calls) == 6
    # each measure's frame is built once in the scope, and every caller gets its own copy
    built = []
    real_frame = A._comparison_frame
    monkeypatch.setattr(A, "_comparison_frame", lambda *a: built.append(a[2]) or real_frame(*a))
    with A.reuse_frames():
        first = A.comparison_frame(ev, cfg, measure="smd")
        first.loc[0, "yi"] = 99.0
        first.attrs["mine"] = True
        second = A.comparison_frame(ev, cfg, measure="smd")
        A.comparison_frame(ev, cfg)
    assert built == ["smd", "md100"]
    pd.testing.assert_frame_equal(second, fresh["smd"])
    assert "mine" not in second.attrs

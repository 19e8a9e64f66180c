"""Network meta-analysis against metafor's rma.mv (tests/reference/make_network_reference.R), and its input checks."""

import itertools
import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import mt_evidence as me
from mt_evidence.stats.network import NetworkInputError, P_SCORE_CAVEAT

REF = json.loads((Path(__file__).parent / "reference" / "network_reference.json").read_text())
CASES = {c["id"]: c for c in REF["cases"]}
RTOL = 1e-6


def arms_of(case, kind="generic"):
    a = pd.DataFrame(case["arms"])
    if kind == "md":
        return a[["study", "treatment", "mean", "sd", "n"]]
    return a[["study", "treatment", "estimate", "variance"]]


def test_reference_versions_recorded():
    assert REF["metafor_version"].startswith("3.8") and REF["metadat_version"]
    assert set(CASES) == {"senn2013", "hasselblad1998"}


@pytest.mark.parametrize("case,method", list(itertools.product(sorted(CASES), ["REML", "DL", "FE"])))
def test_consistency_model_matches_rma_mv(case, method):
    c = CASES[case]
    ref = c["models"][method]
    res = me.network_meta(arms_of(c), reference=c["reference"], method=method)
    assert res.tau2 == pytest.approx(ref["tau2"], rel=RTOL, abs=1e-12)
    assert res.q == pytest.approx(ref["q"], rel=RTOL) and res.df == ref["df"]
    eff = res.relative_effects.set_index("treatment").loc[ref["names"]]
    for col in ("estimate", "se", "ci_low", "ci_high"):
        np.testing.assert_allclose(eff[col].to_numpy(float), ref[col], rtol=RTOL)


def test_mean_differences_from_arm_means_and_sds():
    c = CASES["senn2013"]
    ref = c["models"]["REML"]
    res = me.network_meta(arms_of(c, "md"), reference="placebo")
    eff = res.relative_effects.set_index("treatment").loc[ref["names"]]
    np.testing.assert_allclose(eff["estimate"], ref["estimate"], rtol=RTOL)
    np.testing.assert_allclose(eff["se"], ref["se"], rtol=RTOL)


def test_contrast_input_and_mixed_input_give_the_same_network():
    """Every pair of every study as contrasts (the three-arm study with all three) reproduces the arm-level fit;
    so does half the studies as arms and half as contrasts."""
    c = CASES["senn2013"]
    arms = arms_of(c)
    rows = []
    for s, g in arms.groupby("study", sort=False):
        for (_, a), (_, b) in itertools.combinations(g.iterrows(), 2):
            rows.append({"study": s, "treat1": a["treatment"], "treat2": b["treatment"],
                         "yi": a["estimate"] - b["estimate"], "se": np.sqrt(a["variance"] + b["variance"])})
    con = pd.DataFrame(rows)
    base = me.network_meta(arms, reference="placebo")
    from_con = me.network_meta(con, reference="placebo")
    np.testing.assert_allclose(from_con.coef, base.coef, rtol=1e-7)  # the REML search's tolerance
    assert from_con.tau2 == pytest.approx(base.tau2, rel=1e-7)
    studies = arms["study"].unique()
    half = set(studies[: len(studies) // 2])
    mixed = me.network_meta(arms[arms["study"].isin(half)], contrasts=con[~con["study"].isin(half)],
                            reference="placebo")
    np.testing.assert_allclose(mixed.coef, base.coef, rtol=1e-7)


def test_reference_choice_only_reexpresses_the_effects():
    c = CASES["hasselblad1998"]
    a = me.network_meta(arms_of(c), reference="no_contact")
    b = me.network_meta(arms_of(c), reference="self_help")
    assert a.tau2 == pytest.approx(b.tau2, rel=1e-7)
    pa, pb = a.pairs().set_index(["treat1", "treat2"]), b.pairs()
    for r in pb.itertuples():
        key = (r.treat1, r.treat2) if (r.treat1, r.treat2) in pa.index else (r.treat2, r.treat1)
        sign = 1 if key == (r.treat1, r.treat2) else -1
        assert sign * pa.loc[key, "estimate"] == pytest.approx(r.estimate, rel=1e-6)
        assert pa.loc[key, "se"] == pytest.approx(r.se, rel=1e-6)


@pytest.mark.parametrize("case", sorted(CASES))
def test_design_by_treatment_interaction_matches_rma_mv(case):
    c = CASES[case]
    ref = c["design_by_treatment"]
    got = me.network_meta(arms_of(c), reference=c["reference"]).design_by_treatment()
    for k in ("q_total", "q_within", "q_inconsistency", "tau2_design_by_treatment", "q_inconsistency_random"):
        assert got[k] == pytest.approx(ref[k], rel=RTOL), k
    for k in ("df_total", "df_within", "df_inconsistency"):
        assert got[k] == ref[k], k
    assert got["df_inconsistency"] == ref["df_inconsistency_random"]


@pytest.mark.parametrize("case", sorted(CASES))
def test_node_splitting_matches_rma_mv(case):
    c = CASES[case]
    ns = me.network_meta(arms_of(c), reference=c["reference"]).node_split().set_index(["treat1", "treat2"])
    assert len(ns) == len(c["node_split"])
    for s in c["node_split"]:
        row = ns.loc[(s["treat1"], s["treat2"])]
        if not s["estimable"]:
            assert np.isnan(row["difference"]) and row["note"].startswith("no indirect evidence")
            continue
        for k in ("difference", "difference_se", "direct", "direct_se", "indirect", "indirect_se", "tau2"):
            assert row[k] == pytest.approx(s[k], rel=RTOL, abs=1e-12), (s["treat1"], s["treat2"], k)


@pytest.mark.parametrize("method", ["REML", "DL", "FE"])
def test_additive_component_model_matches_rma_mv(method):
    c = CASES["hasselblad1998"]
    comp = c["component"]
    ref = comp["models"][method]
    res = me.component_network_meta(arms_of(c), {k: list(v) for k, v in comp["mapping"].items()},
                                    reference="no_contact", method=method)
    assert res.tau2 == pytest.approx(ref["tau2"], rel=RTOL, abs=1e-12)
    eff = res.component_effects.set_index("component").loc[ref["names"]]
    for col in ("estimate", "se", "ci_low", "ci_high"):
        np.testing.assert_allclose(eff[col].to_numpy(float), ref[col], rtol=RTOL)
    add = res.additivity
    assert add["q_additive"] == pytest.approx(ref["q"], rel=RTOL)
    assert add["q_diff"] == pytest.approx(ref["q_diff"], rel=1e-6, abs=1e-9) and add["df_diff"] == ref["df_diff"]
    te = res.treatment_effects.set_index("treatment")
    assert te.loc["grp_counseling", "estimate"] == pytest.approx(eff["estimate"].sum(), rel=1e-12)


def test_one_comparison_network_is_the_pairwise_meta_analysis():
    """A network of two treatments is a pairwise meta-analysis: the method of moments is DerSimonian-Laird and
    REML is REML (metafor rma, validated in test_reference_metafor)."""
    rng = np.random.default_rng(1)
    k = 7
    yi, vi = rng.normal(-5, 4, k), rng.uniform(2, 9, k)
    con = pd.DataFrame({"study": [f"S{i}" for i in range(k)], "treat1": "a", "treat2": "b", "yi": yi,
                        "se": np.sqrt(vi)})
    for method in ("DL", "REML"):
        net = me.network_meta(con, reference="b", method=method)
        pw = me.pool(yi, vi, method=method)
        assert net.tau2 == pytest.approx(pw.tau2, rel=1e-6, abs=1e-10)
        assert net.coef[0] == pytest.approx(pw.estimate, rel=1e-6)
        assert np.sqrt(net.vcov[0, 0]) == pytest.approx(pw.se, rel=1e-6)


def test_league_p_scores_and_graph():
    c = CASES["senn2013"]
    res = me.network_meta(arms_of(c, "md"), reference="placebo")
    lg = res.league(digits=2)
    assert lg.loc["metformin", "metformin"] == "metformin"
    e, s = res._effect("metformin", "placebo")
    assert lg.loc["metformin", "placebo"].startswith(f"{e:.2f} (")
    ps = res.p_scores(small_values="good")  # lower HbA1c is better
    assert set(ps.index) == set(res.treatments) and ps.between(0, 1).all()
    assert ps.mean() == pytest.approx(0.5, abs=1e-12)  # P-scores average 1/2 by construction
    assert ps.idxmin() == "placebo" and "ignore the size" in P_SCORE_CAVEAT
    nodes, edges = res.graph()
    assert nodes.set_index("treatment").loc["placebo", "studies"] == 19
    assert nodes["participants"].sum() == pytest.approx(pd.DataFrame(c["arms"])["n"].sum())
    assert edges.set_index(["treat1", "treat2"]).loc[("placebo", "metformin"), "studies"] == 4
    assert "tau^2 by REML" in repr(res) and "reference placebo" in res.describe()


def test_bad_network_input_names_every_problem():
    arms = pd.DataFrame({
        "study": ["A", "A", "B", "C", "C", "D", "D", "E", "E"],
        "treatment": ["x", "y", "x", "x", "x", "p", "q", "y", "z"],
        "mean": [1, 2, 3, 1, 2, 1, 2, 1, 1], "sd": [1, 1, 1, 1, 1, 1, -1, 1, 1], "n": [10] * 9})
    with pytest.raises(NetworkInputError) as err:
        me.network_meta(arms, reference="x")
    msg = str(err.value)
    assert "study 'B' has a single arm" in msg
    assert "study 'C': two or more arms of x" in msg
    assert "row 7 (study 'D'), column 'sd'" in msg
    ok = arms[arms["study"].isin(["A", "E"])]
    disconnected = pd.concat([ok, pd.DataFrame({"study": ["F", "F"], "treatment": ["p", "q"], "mean": [1, 2],
                                                "sd": [1, 1], "n": [10, 10]})])
    with pytest.raises(NetworkInputError, match="disconnected.*studies F"):
        me.network_meta(disconnected, reference="x")
    with pytest.raises(NetworkInputError, match="reference 'w' is not a treatment"):
        me.network_meta(ok, reference="w")
    with pytest.raises(ValueError, match="method"):
        me.network_meta(ok, method="Bayes")


def test_multi_arm_contrasts_must_be_complete_and_consistent():
    con = pd.DataFrame({"study": ["M", "M"], "treat1": ["a", "b"], "treat2": ["c", "c"], "yi": [1.0, 2.0],
                        "se": [0.5, 0.5]})
    with pytest.raises(NetworkInputError, match="3 treatments .* needs all 3 pairwise contrasts"):
        me.network_meta(con)
    bad = pd.concat([con, pd.DataFrame({"study": ["M"], "treat1": ["a"], "treat2": ["b"], "yi": [5.0],
                                        "se": [0.6]})])
    with pytest.raises(NetworkInputError, match="not consistent"):
        me.network_meta(bad)


def test_a_treatment_with_one_study_is_noted():
    c = CASES["senn2013"]
    res = me.network_meta(arms_of(c), reference="placebo")
    assert any("single study" in n and "sitagliptin, vildagliptin" in n for n in res.notes)


# --------------------------------------------------------------------- the bundled network (synthesis layer)

from mt_evidence.synthesis import analysis as A  # noqa: E402
from mt_evidence.synthesis import network as SN  # noqa: E402
from test_verdict_scenarios import trial, write_evidence  # noqa: E402


def additive_trials(combined_nrs: float, k: int = 3):
    """SYNTHETIC: manual therapy -1.0 and exercise -0.5 NRS points (-10 and -5 on 0-100) against usual care, and
    combined care ``combined_nrs`` against usual care, each in k trials of its own design."""
    out = []
    for i in range(k):
        j = 0.02 * (i - (k - 1) / 2)
        out += [trial(f"SynMT{i}", "chronic", [("mt", "manual_therapy", "manipulation", {6: 4.0 + j}),
                                                ("uc", "usual_care", "none", {6: 5.0})]),
                trial(f"SynEX{i}", "chronic", [("ex", "exercise", "general_exercise", {6: 4.5 - j}),
                                                ("uc", "usual_care", "none", {6: 5.0})]),
                trial(f"SynCE{i}", "chronic", [("ce", "combined", "manipulation;general_exercise",
                                                 {6: 5.0 + combined_nrs + j}),
                                                ("ex", "exercise", "general_exercise", {6: 4.5})])]
    return out


def test_network_recovers_known_effects_and_additivity(tmp_path):
    """Combined care exactly the sum of its parts (-15 on 0-100): the network gives -10, -5 and -15 against usual
    care, the component model the same, and the additivity test finds nothing to reject."""
    ev = me.load_evidence(write_evidence(tmp_path / "add", additive_trials(-1.5), n=200))
    na = SN.analyse_network(ev, "pain", "short")
    eff = na.result.relative_effects.set_index("treatment")["estimate"]
    assert na.result.reference == "usual_care" and na.result.k == 9
    assert eff["manual_therapy"] == pytest.approx(-10, abs=0.05)
    assert eff["exercise"] == pytest.approx(-5, abs=0.05)
    assert eff["combined"] == pytest.approx(-15, abs=0.05)
    comp = na.component.component_effects.set_index("component")["estimate"]
    assert comp["manual_therapy"] == pytest.approx(-10, abs=0.05) and comp["exercise"] == pytest.approx(-5, abs=0.05)
    assert na.component.additivity["df_diff"] == 1 and na.component.additivity["p"] > 0.5


def test_network_detects_a_combination_better_than_its_parts(tmp_path):
    """Combined care -30 on 0-100 where its parts add to -15: the additivity test rejects the additive model."""
    ev = me.load_evidence(write_evidence(tmp_path / "syn", additive_trials(-3.0), n=200))
    na = SN.analyse_network(ev, "pain", "short")
    assert na.result.relative_effects.set_index("treatment").loc["combined", "estimate"] == pytest.approx(-30, abs=0.1)
    assert na.component.additivity["p"] < 1e-6


def test_disconnected_trials_are_left_out_with_their_reason(tmp_path):
    trials = [t for t in additive_trials(-1.5) if t["study_id"].startswith("SynMT")]
    trials.append(trial("SynExAdvice", "chronic", [("e", "exercise", "general_exercise", {6: 4.0}),
                                                    ("a", "advice", "none", {6: 5.0})]))
    ev = me.load_evidence(write_evidence(tmp_path / "dis", trials, n=100))
    na = SN.analyse_network(ev, "pain", "short")
    assert na.fitted and na.result.k == 3 and set(na.result.treatments) == {"usual_care", "manual_therapy"}
    left = [d for d in na.left_out if d["study"] == "SynExAdvice"]
    assert left and "not connected to the main network" in left[0]["why"]


def test_a_trial_of_two_control_types_links_the_network(tmp_path):
    """docs/methods.md section 16 (SYNTHETIC): manual therapy -10 against usual care (3 trials), exercise -5
    against advice (3 trials), and one trial of advice against usual care (-2): without that trial the network
    falls apart; with it, exercise is reached through advice (-5 - 2 = -7 against usual care)."""
    trials = [t for t in additive_trials(-1.5) if t["study_id"].startswith("SynMT")]
    for i in range(3):
        trials.append(trial(f"SynExAd{i}", "chronic", [("e", "exercise", "general_exercise", {6: 4.3 + 0.01 * i}),
                                                       ("a", "advice", "none", {6: 4.8 + 0.01 * i})]))
    trials.append(trial("SynAdUc", "chronic", [("a", "advice", "none", {6: 4.8}),
                                               ("u", "usual_care", "none", {6: 5.0})]))
    ev = me.load_evidence(write_evidence(tmp_path / "ctl", trials, n=300))
    na = SN.analyse_network(ev, "pain", "short")
    assert na.fitted and "SynAdUc" in {s.name for s in na.result.studies}
    eff = na.result.relative_effects.set_index("treatment")["estimate"]
    assert eff["advice"] == pytest.approx(-2.0, abs=0.05)
    assert eff["exercise"] == pytest.approx(-7.0, abs=0.1)


def test_bundled_networks_and_report_section():
    from mt_evidence.reporting import report as R

    ev = me.load_evidence()
    cfg = A.load_config()
    nets = R.analyse_networks(ev, cfg, A.comparison_frame(ev, cfg))
    dis = nets[("disability", "short")]
    assert dis.fitted and dis.result.k >= 10 and dis.result.reference == "usual_care"
    assert set(dis.result.treatments) >= {"manual_therapy", "exercise", "combined", "usual_care", "advice"}
    pain = nets[("pain", "short")]
    assert {d["study"] for d in pain.left_out} >= {"Machado2010", "Saper2017"}  # exercise vs advice only
    doc = R.network_json(nets)
    assert all(n["kind"].startswith("network estimate") for n in doc)
    rows = R.network_rows(nets, cfg, figures=False)
    short = next(w for w in rows[1]["windows"] if w["window"].startswith("short"))
    assert short["effects"] and "design-by-treatment" in short["consistency"] and short["p_scores"]


def test_network_estimates_sit_beside_the_pairwise_ones():
    from mt_evidence.reporting import report as R

    ev = me.load_evidence()
    cfg = A.load_config()
    nets = R.analyse_networks(ev, cfg, A.comparison_frame(ev, cfg))
    text = R.network_text(nets, "manual_therapy_vs_pragmatic", "disability", "short")
    r = nets[("disability", "short")].result
    e, se = r._effect("manual_therapy", "usual_care")
    assert text.startswith("Network estimate (") and "certainty not rated" in text
    assert f"against usual care {e:+.1f}" in text and "against advice" in text
    assert R.network_text(nets, "manual_therapy_vs_control", "disability", "short") == ""  # views: none

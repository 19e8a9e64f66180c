"""Verdicts proved on evidence built so that the right answer is known (docs/methods.md sections 5-9).

Each scenario writes a SYNTHETIC evidence folder (invented trials, clearly labelled, never bundled), a claims file
and a settings file, runs the report on it and reads the verdicts from ``claims.json``, the machine-readable
output beside the HTML. The numbers are chosen so that the verdict follows from the plan's rules by hand:
a large precise effect is supported; a precise effect well below the important difference is not; an imprecise
one is uncertain; two concordant trials are pooled with the common-effect model; an effect that fades while
exercise's lasts supports the "short-lived" claim; an effect in acute but not chronic pain gives "partly".
"""

import json
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from mt_evidence.reporting import report as R
from mt_evidence.synthesis import analysis as A

FIX = Path(__file__).parent / "fixtures" / "synthetic_clean"
STUDY_COLUMNS = list(pd.read_csv(FIX / "studies.csv", nrows=0).columns)
ARM_COLUMNS = list(pd.read_csv(FIX / "arms.csv", nrows=0).columns)
CONTRAST_COLUMNS = list(pd.read_csv(FIX / "contrasts.csv", nrows=0).columns)
SD = 2.0  # on the 0-10 NRS: 20 points on 0-100


def trial(study_id, population, arms, *, rob="low"):
    """One synthetic trial: ``arms`` = [(arm, intervention, technique, {week: mean}), ...], n per arm in ``n``."""
    return {"study_id": study_id, "population": population, "arms": arms, "rob": rob}


def write_evidence(folder: Path, trials: list[dict], n: int) -> Path:
    folder.mkdir(parents=True)
    studies, arms = [], []
    for t in trials:
        studies.append({"study_id": t["study_id"], "citation": f"SYNTHETIC {t['study_id']} (not a real study)",
                        "year": 2020, "population": t["population"], "setting": "synthetic", "n_randomised": 2 * n,
                        **({f"rob_{d}": t["rob"] for d in ("randomisation", "deviations", "missing", "measurement",
                                                           "selection", "overall")} if t["rob"] else {}),
                        "rob_tool": "RoB2" if t["rob"] else "", "sources": "https://example.org/synthetic",
                        "note": "synthetic scenario"})
        for arm, intervention, technique, means in t["arms"]:
            for week, mean in means.items():
                arms.append({"study_id": t["study_id"], "arm": arm, "intervention": intervention,
                             "technique": technique, "outcome": "pain", "instrument": "NRS (0-10)", "scale_min": 0,
                             "scale_max": 10, "higher_is_worse": "true", "timepoint_weeks": week,
                             "value_type": "final", "n": n, "mean": mean, "sd": SD, "adjusted": "false",
                             "source_url": "https://example.org/synthetic", "source_location": "invented"})
    pd.DataFrame(studies, columns=STUDY_COLUMNS).to_csv(folder / "studies.csv", index=False)
    pd.DataFrame(arms, columns=ARM_COLUMNS).to_csv(folder / "arms.csv", index=False)
    pd.DataFrame(columns=CONTRAST_COLUMNS).to_csv(folder / "contrasts.csv", index=False)
    return folder


CLAIM_TEMPLATE = '''[[claim]]
id = {id}
text = "{text}"
'''
TEST_TEMPLATE = '''[[claim.test]]
comparison = "{comparison}"
outcome = "{outcome}"
window = "{window}"
expect = "{expect}"
why = "scenario"
'''


def run(tmp_path: Path, trials: list[dict], claims: list[tuple[str, list[dict]]], n: int,
        extra: dict[str, pd.DataFrame] | None = None) -> dict:
    """Write the scenario, run the report (no PDF) and return claims.json, keyed by claim id. ``extra``: more
    tables of the evidence folder (harms, arm_details) by file name."""
    ev = write_evidence(tmp_path / "evidence", trials, n)
    for name, df in (extra or {}).items():
        df.to_csv(ev / name, index=False)
    text = ""
    for i, (claim, tests) in enumerate(claims, start=1):
        text += CLAIM_TEMPLATE.format(id=i, text=claim)
        for t in tests:
            text += TEST_TEMPLATE.format(**{"outcome": "pain", **t})
            if t.get("context"):
                text += "context = true\n"
            if "population" in t:
                text += f'population = "{t["population"]}"\n'
            if "minus" in t:
                text += f'minus = "{t["minus"]}"\n'
    (tmp_path / "claims.toml").write_text(text)
    default = (Path(A.__file__).parents[1] / "data" / "analysis.toml").read_text()
    (tmp_path / "settings.toml").write_text(default + '\n[report]\nclaims = "claims.toml"\n')
    out = R.build_report(ev, tmp_path / "out", config=tmp_path / "settings.toml", pdf=False)
    data = json.loads((out.html_path.parent / "claims.json").read_text())
    assert (out.html_path.parent / "summary_of_findings.csv").exists()
    return {c["id"]: c for c in data["claims"]}


def mt_vs(control, effect_nrs, k, population="chronic", week=6, spread=0.1):
    """k trials of manual therapy against ``control`` with a true difference ``effect_nrs`` on the NRS."""
    out = []
    for i in range(k):
        d = effect_nrs + spread * (i - (k - 1) / 2)
        out.append(trial(f"Syn{control[:3]}{population[:2]}{i}", population,
                         [("mt", "manual_therapy", "manipulation", {week: 5.0 + d}),
                          ("ctl", control, "none", {week: 5.0})]))
    return out


def test_large_precise_effect_is_supported(tmp_path):
    res = run(tmp_path, mt_vs("sham", -3.0, 6), [("MT reduces pain", [
        {"comparison": "manual_therapy_vs_sham", "window": "short", "expect": "benefit"}])], n=150)
    a = res[1]["analyses"][0]
    assert a["k"] == 6 and a["estimate"] == pytest.approx(-30, abs=0.5)
    assert a["certainty"] == "high" and a["statement"].startswith("Manual therapy reduces pain")
    assert res[1]["verdict"] == "supported"


def test_precise_effect_below_the_important_difference_is_not_supported(tmp_path):
    """A -3 point effect (a fifth of the 15-point important difference), precise and at low risk of bias: the
    benefit claim is not supported and "no important benefit" is; the CI excluding 0 does not matter."""
    res = run(tmp_path, mt_vs("sham", -0.3, 6), [
        ("MT reduces pain", [{"comparison": "manual_therapy_vs_sham", "window": "short", "expect": "benefit"}]),
        ("no important benefit", [{"comparison": "manual_therapy_vs_sham", "window": "short",
                                   "expect": "no_important_benefit"}])], n=400)
    a = res[1]["analyses"][0]
    assert a["ci_high"] < 0  # a "significant" effect...
    assert a["estimate"] > -15 and a["certainty"] == "high"  # ...well below the important difference
    assert "little or no difference" in a["statement"]
    assert res[1]["verdict"] == "not supported" and res[2]["verdict"] == "supported"


def test_imprecise_effect_is_uncertain(tmp_path):
    res = run(tmp_path, mt_vs("sham", -0.5, 3, spread=0.3), [("MT reduces pain", [
        {"comparison": "manual_therapy_vs_sham", "window": "short", "expect": "benefit"}])], n=6)
    a = res[1]["analyses"][0]
    assert a["ci_low"] < -15 and a["ci_high"] > 15
    assert a["certainty"] in ("low", "very low") and any("imprecision (-2)" in r for r in a["certainty_reasons"])
    assert res[1]["verdict"] == "uncertain"


def test_two_concordant_trials_use_the_common_effect_model(tmp_path):
    trials = mt_vs("usual_care", -2.0, 2, spread=0.2)
    res = run(tmp_path, trials, [("MT reduces pain", [
        {"comparison": "manual_therapy_vs_pragmatic", "window": "short", "expect": "benefit"}])], n=100)
    a = res[1]["analyses"][0]
    # by hand: inverse-variance mean of the two trials, z interval (SD 20 points, 100 per arm)
    yi = np.array([-21.0, -19.0])
    vi = np.full(2, 2 * 20.0**2 / 100)
    w = 1 / vi
    est, se = np.sum(w * yi) / np.sum(w), np.sqrt(1 / np.sum(w))
    z = stats.norm.ppf(0.975)
    assert a["estimate"] == pytest.approx(est, rel=1e-9)
    assert a["ci_low"] == pytest.approx(est - z * se, rel=1e-9) and a["ci_high"] == pytest.approx(est + z * se,
                                                                                                   rel=1e-9)
    assert any("common-effect" in n for n in a["notes"])
    assert "FE" in a["pooling"]


def test_two_trials_never_use_t_on_one_degree_of_freedom():
    """The k = 2 rule against the old behaviour: Knapp-Hartung on 1 df would make the interval about six times wider
    than the common-effect interval for two concordant trials."""
    import mt_evidence as me

    yi, vi = np.array([-2.5, -4.9]), np.array([2.2, 2.0])
    planned = A.pool_analysis(yi, vi, ["a", "b"], A.load_config())
    fe = me.pool(yi, vi, method="FE", test="z")
    hk = me.pool(yi, vi, method="REML", test="hksj")
    assert (planned.estimate, planned.ci_low, planned.ci_high) == (fe.estimate, fe.ci_low, fe.ci_high)
    assert np.isnan(planned.pi_low) and np.isnan(planned.pi_high)
    assert (hk.ci_high - hk.ci_low) > 5 * (fe.ci_high - fe.ci_low)


def test_an_effect_that_fades_while_exercise_lasts(tmp_path):
    trials = []
    for i in range(3):  # manual therapy: -25 points at 6 weeks, -2 at 52 weeks
        trials.append(trial(f"SynFade{i}", "chronic", [
            ("mt", "manual_therapy", "manipulation", {6: 2.5 + 0.05 * i, 52: 4.8 + 0.05 * i}),
            ("uc", "usual_care", "none", {6: 5.0, 52: 5.0})]))
    for i in range(3):  # exercise: -20 points at 52 weeks
        trials.append(trial(f"SynLast{i}", "chronic", [
            ("ex", "exercise", "general_exercise", {52: 3.0 + 0.05 * i}),
            ("uc", "usual_care", "none", {52: 5.0})]))
    res = run(tmp_path, trials, [("alone it fades; lasting improvement comes from exercise", [
        {"comparison": "manual_therapy_vs_pragmatic", "window": "long", "expect": "no_important_benefit"},
        {"comparison": "manual_therapy_vs_pragmatic", "window": "short_vs_long", "expect": "fades"},
        {"comparison": "exercise_vs_pragmatic", "window": "long", "expect": "benefit"}])], n=300)
    verdicts = [a["verdict"] for a in res[1]["analyses"]]
    assert verdicts == ["supported"] * 3, res[1]
    assert res[1]["verdict"] == "supported"


def run_fading_manual_therapy(tmp_path):
    """SYNTHETIC: manual therapy -25 -> -2 points against usual care, exercise -20 -> -20, in separate trials that
    report both times; one claim that manual therapy fades more than exercise. Returns claims.json by id."""
    trials = []
    for i in range(3):
        trials.append(trial(f"SynMt{i}", "chronic", [
            ("mt", "manual_therapy", "manipulation", {6: 2.5 + 0.05 * i, 52: 4.8 + 0.05 * i}),
            ("uc", "usual_care", "none", {6: 5.0, 52: 5.0})]))
        trials.append(trial(f"SynEx{i}", "chronic", [
            ("ex", "exercise", "general_exercise", {6: 3.0 + 0.05 * i, 52: 3.0 + 0.05 * i}),
            ("uc", "usual_care", "none", {6: 5.0, 52: 5.0})]))
    res = run(tmp_path, trials, [("manual therapy fades more than exercise", [
        {"comparison": "manual_therapy_vs_pragmatic", "window": "short_vs_long", "expect": "fades_more",
         "minus": "exercise_vs_pragmatic"}])], n=300)
    return res


def test_manual_therapy_fades_more_than_exercise(tmp_path):
    """Claim 2's difference of changes: manual therapy -25 -> -2 points, exercise -20 -> -20, in separate trials."""
    res = run_fading_manual_therapy(tmp_path)
    a = res[1]["analyses"][0]
    assert a["verdict"] == "supported", a
    assert "differs by +23.0 points" in a["explanation"]


def test_the_network_over_time_shows_which_care_fades_beside_the_durability_claim(tmp_path):
    """docs/methods.md section 16, Durability (SYNTHETIC): manual therapy -25 -> -2 points against usual care,
    exercise -20 -> -20, each in trials that report both times. The joint model's change from short to long term,
    shown beside claim 2 as context, finds manual therapy fading (+23 points, CI above 0) and exercise not (CI
    around 0); the verdict itself still comes from the pairwise test."""
    res = run_fading_manual_therapy(tmp_path)
    ctx = next(c for c in res[1]["context"] if c["outcome"] == "pain")
    assert ctx["analysis"].startswith("network over time") and ctx["reference"] == "usual_care"
    ch = {c["treatment"]: c for c in ctx["changes"]}
    assert ch["manual_therapy"]["estimate"] == pytest.approx(23.0, abs=0.2) and ch["manual_therapy"]["ci_low"] > 0
    assert ch["exercise"]["ci_low"] < 0 < ch["exercise"]["ci_high"]
    assert "certainty not rated" in ctx["text"] and res[1]["verdict"] == "supported"


def test_acute_but_not_chronic_gives_partly_supported(tmp_path):
    trials = mt_vs("usual_care", -2.5, 3, population="acute") + mt_vs("usual_care", -0.2, 3, population="chronic")
    res = run(tmp_path, trials, [("helps acute and chronic pain", [
        {"comparison": "manual_therapy_vs_pragmatic", "window": "short", "expect": "benefit", "population": "acute"},
        {"comparison": "manual_therapy_vs_pragmatic", "window": "short", "expect": "benefit",
         "population": "chronic"}])], n=300)
    acute, chronic = res[1]["analyses"]
    assert acute["verdict"] == "supported" and chronic["verdict"] == "not supported"
    assert acute["studies"] == ["Synusuac0", "Synusuac1", "Synusuac2"]
    assert res[1]["verdict"] == "partly supported"
    (diff,) = res[1]["subgroup_tests"]  # the difference itself is tested, not only each population apart
    assert diff["groups"] == ["acute", "chronic"] and diff["df"] == 1 and diff["p"] < 0.001


def test_unassessed_risk_of_bias_is_shown_both_ways(tmp_path):
    res = run(tmp_path, [dict(t, rob="") for t in mt_vs("sham", -3.0, 6)], [("MT reduces pain", [
        {"comparison": "manual_therapy_vs_sham", "window": "short", "expect": "benefit"}])], n=150)
    a = res[1]["analyses"][0]
    assert a["certainty"] == "moderate" and a["certainty_if_unassessed_low"] == "high"
    assert any("no risk-of-bias judgement" in r for r in a["certainty_reasons"])


def test_any_control_pool_cannot_carry_a_verdict(tmp_path):
    with pytest.raises(ValueError, match="pools sham with usual care"):
        run(tmp_path, mt_vs("sham", -3.0, 3), [("MT reduces pain", [
            {"comparison": "manual_therapy_vs_control", "window": "short", "expect": "benefit"}])], n=50)


def test_report_cli_writes_claims_json_and_sof(tmp_path):
    """The same through the command line, as a user runs it."""
    from typer.testing import CliRunner

    from mt_evidence.cli import app

    ev = write_evidence(tmp_path / "ev", mt_vs("sham", -3.0, 3), n=100)
    r = CliRunner().invoke(app, ["report", "--data", str(ev), "--out", str(tmp_path / "rep"), "--no-pdf"])
    assert r.exit_code == 0, r.output
    data = json.loads((tmp_path / "rep" / "claims.json").read_text())
    assert len(data["claims"]) == 9 and data["rule"] and "partly supported" in data["verdicts"]
    c1 = next(c for c in data["claims"] if c["id"] == 1)
    sham = next(a for a in c1["analyses"] if a["comparison"] == "manual_therapy_vs_sham")
    assert sham["k"] == 3 and sham["statement"]
    sof = pd.read_csv(tmp_path / "rep" / "summary_of_findings.csv")
    row = sof[(sof["comparison_id"] == "manual_therapy_vs_sham") & (sof["window"] == "short")].iloc[0]
    assert row["estimate"] == pytest.approx(sham["estimate"]) and row["statement"] == sham["statement"]
    html = (tmp_path / "rep" / "index.html").read_text()
    assert sham["statement"] in html  # the same content as the HTML
    shutil.rmtree(tmp_path / "rep")


def test_three_agreeing_trials_never_get_an_interval_narrower_than_common_effect():
    """Knapp-Hartung without the floor: three identical small trials give a zero-width interval. The plan's
    setting (ad hoc floor) keeps it at least as wide as the common-effect interval."""
    import mt_evidence as me

    yi, vi = np.array([-5.0, -5.0, -5.0]), np.array([330.0, 330.0, 330.0])
    bare = me.pool(yi, vi, method="REML", test="hksj", adhoc=False)
    planned = A.pool_analysis(yi, vi, ["a", "b", "c"], A.load_config())
    fe = me.pool(yi, vi, method="FE", test="z")
    assert bare.ci_high - bare.ci_low < 1e-6
    assert planned.ci_high - planned.ci_low >= fe.ci_high - fe.ci_low - 1e-9


def test_a_context_test_cannot_decide_a_claim_alone():
    """Combined care vs usual care answers "better than either alone" only indirectly: with no direct test
    runnable, the claim is uncertain, not "not supported"."""
    from mt_evidence.synthesis import claims as C

    direct = C.TestResult(C.ClaimTest("combined_vs_exercise", "pain", "short", "benefit"), C.NOT_TESTABLE, "none")
    context = C.TestResult(C.ClaimTest("combined_vs_pragmatic", "pain", "short", "benefit", context=True),
                           C.NOT_SUPPORTED, "little or no difference")
    assert C.combine([direct, context]) == C.UNCERTAIN
    supported = C.TestResult(C.ClaimTest("combined_vs_exercise", "pain", "short", "benefit"), C.SUPPORTED, "yes")
    assert C.combine([supported, context]) == C.PARTLY
    assert C.combine([direct, C.TestResult(context.test, C.NOT_TESTABLE, "none")]) == C.NOT_TESTABLE


# ------------------------------------------------------------------------------------ harms (claim 8)

HARM_COLUMNS = ["study_id", "arm", "intervention", "technique", "event_type", "event_label", "events", "n", "unit",
                "definition", "timepoint_weeks", "source_url", "source_location", "derivation", "note"]
SAFE = [("It is safe", [
    {"comparison": "manual_therapy_vs_no_manual_therapy", "outcome": "serious_adverse_event", "window": "any",
     "expect": "no_serious_harm"},
    {"comparison": "manual_therapy_arms", "outcome": "any_adverse_event", "window": "any", "expect": "describe",
     "context": True}])]


def harms_table(trials, events_mt, events_ctl, n, *, event_type="serious_adverse_event"):
    rows = []
    for t, e1, e2 in zip(trials, events_mt, events_ctl):
        for arm, intervention, events in (("mt", "manual_therapy", e1), ("ctl", "usual_care", e2)):
            rows.append({"study_id": t["study_id"], "arm": arm, "intervention": intervention,
                         "event_type": event_type, "events": events, "n": n, "unit": "participants",
                         "definition": "synthetic: invented counts", "source_url": "https://example.org/synthetic",
                         "source_location": "invented"})
    return pd.DataFrame(rows, columns=HARM_COLUMNS)


def test_serious_harms_more_frequent_with_manual_therapy_is_not_supported(tmp_path):
    trials = mt_vs("usual_care", -1.0, 3)
    harms = pd.concat([harms_table(trials, [12, 15, 10], [1, 2, 0], 100),
                       harms_table(trials, [30, 35, 25], [10, 12, 9], 100, event_type="any_adverse_event")])
    res = run(tmp_path, trials, SAFE, n=100, extra={"harms.csv": harms})
    serious, describe = res[1]["analyses"]
    assert serious["verdict"] == "not supported" and "risk ratio" in serious["explanation"]
    assert describe["verdict"] == "uncertain" and "about 30 in 100" in describe["explanation"]
    assert res[1]["verdict"] == "not supported"


def test_no_serious_harm_seen_is_uncertain_never_supported(tmp_path):
    """No serious event in 600 people: trials cannot show a rare harm does not happen. The exact upper limit for
    0 of 300 given manual therapy is 1 - 0.025^(1/300), about 12 in 1,000."""
    trials = mt_vs("usual_care", -1.0, 3)
    res = run(tmp_path, trials, SAFE, n=100, extra={"harms.csv": harms_table(trials, [0, 0, 0], [0, 0, 0], 100)})
    serious = res[1]["analyses"][0]
    assert serious["verdict"] == "uncertain"
    upper = 1000 * (1 - 0.025 ** (1 / 300))
    assert f"up to {upper:.0f} in 1,000" in serious["explanation"]
    assert res[1]["verdict"] == "uncertain"


# ------------------------------------------------------------------------------------- dose (claim 9)

DETAIL_COLUMNS = ["study_id", "arm", "intervention", "technique", "sessions", "sessions_printed", "weeks_of_care",
                  "provider", "co_intervention", "co_intervention_differs", "source_url", "source_location",
                  "derivation", "note"]
MORE = [("More sessions are not better", [
    {"comparison": "more_vs_fewer_sessions", "window": "short", "expect": "no_important_benefit"}])]


def dose_trials(k, difference_nrs):
    trials, details = [], []
    for i in range(k):
        sid = f"SynDose{i}"
        trials.append(trial(sid, "chronic", [("smt2", "manual_therapy", "manipulation", {6: 5.0}),
                                             ("smt8", "manual_therapy", "manipulation", {6: 5.0 + difference_nrs}),
                                             ("smt12", "manual_therapy", "manipulation", {6: 5.0 + difference_nrs})]))
        for arm, sessions in (("smt2", 2), ("smt8", 8), ("smt12", 12)):
            details.append({"study_id": sid, "arm": arm, "intervention": "manual_therapy", "sessions": sessions,
                            "source_url": "https://example.org/synthetic", "source_location": "invented"})
    return trials, pd.DataFrame(details, columns=DETAIL_COLUMNS)


def test_more_sessions_no_better_supports_the_dose_claim(tmp_path):
    trials, details = dose_trials(4, 0.0)
    res = run(tmp_path, trials, MORE, n=200, extra={"arm_details.csv": details})
    a = res[1]["analyses"][0]
    assert a["k"] == 4 and a["estimate"] == pytest.approx(0, abs=1e-9)
    assert res[1]["verdict"] == "supported"


def test_more_sessions_clearly_better_contradicts_the_dose_claim(tmp_path):
    trials, details = dose_trials(4, -3.0)  # more sessions: 30 points better on 0-100
    res = run(tmp_path, trials, MORE, n=200, extra={"arm_details.csv": details})
    a = res[1]["analyses"][0]
    assert a["estimate"] == pytest.approx(-30, abs=1e-6)
    assert res[1]["verdict"] == "not supported"


def test_a_co_intervention_only_one_arm_gets_lowers_certainty_for_indirectness(tmp_path):
    """docs/methods.md section 15: the same six trials, once with the manual-therapy arms also given a
    co-intervention the control arms do not get (arm_details.csv), lose one level for indirectness."""
    trials = mt_vs("usual_care", -3.0, 6)
    claims = [("MT reduces pain", [{"comparison": "manual_therapy_vs_pragmatic", "window": "short",
                                    "expect": "benefit"}])]
    plain = run(tmp_path / "a", trials, claims, n=150)[1]["analyses"][0]
    details = pd.DataFrame([{"study_id": t["study_id"], "arm": "mt", "intervention": "manual_therapy",
                             "co_intervention": "synthetic: a drug the control arm does not get",
                             "co_intervention_differs": "true", "source_url": "https://example.org/synthetic",
                             "source_location": "invented"} for t in trials], columns=DETAIL_COLUMNS)
    flagged = run(tmp_path / "b", trials, claims, n=150, extra={"arm_details.csv": details})[1]["analyses"][0]
    assert plain["certainty"] == "high"
    assert flagged["certainty"] == "moderate"
    assert any("co-intervention" in r for r in flagged["certainty_reasons"])


def test_between_trial_dose_regression_recovers_a_known_slope_and_stays_context(tmp_path):
    """docs/methods.md section 14 (SYNTHETIC): six trials of manual therapy against usual care whose effect grows
    by exactly 0.1 NRS points (1 point on 0-100) per planned session: the regression finds -1 per session, the
    same as the engine's meta-regression (validated against metafor) on the same rows, and it is shown beside the
    dose claim without deciding it (no within-trial dose contrast: the claim stays not testable)."""
    from mt_evidence.stats.regression import meta_regression

    sessions = [2, 4, 6, 8, 10, 12]
    trials = [trial(f"SynReg{i}", "chronic", [("mt", "manual_therapy", "manipulation", {6: 5.0 - 0.1 * s}),
                                               ("uc", "usual_care", "none", {6: 5.0})])
              for i, s in enumerate(sessions)]
    details = pd.DataFrame([{"study_id": f"SynReg{i}", "arm": "mt", "intervention": "manual_therapy",
                             "sessions": s, "source_url": "https://example.org/synthetic",
                             "source_location": "invented"} for i, s in enumerate(sessions)], columns=DETAIL_COLUMNS)
    res = run(tmp_path, trials, MORE, n=100, extra={"arm_details.csv": details})[1]
    assert res["verdict"] == "not testable"
    pain = next(c for c in res["context"] if c["outcome"] == "pain")
    assert pain["k"] == 6 and pain["per_session"] == pytest.approx(-1.0, abs=1e-9)
    yi = np.array([-0.1 * s * 10 for s in sessions])
    vi = np.full(6, 2 * (SD * 10) ** 2 / 100)
    ref = meta_regression(yi, vi, {"sessions": sessions}, method="REML", test="hksj", adhoc=True)
    assert pain["ci_low"] == pytest.approx(ref.coefficients.loc["sessions", "ci_low"], rel=1e-9)
    assert pain["ci_high"] == pytest.approx(ref.coefficients.loc["sessions", "ci_high"], rel=1e-9)
    dis = next(c for c in res["context"] if c["outcome"] == "disability")
    assert dis["per_session"] is None and "0 trial(s)" in dis["not_estimated_because"]
    # with four trials: not estimated, and the report says how many there are
    few = run(tmp_path / "few", trials[:4], MORE, n=100, extra={"arm_details.csv": details.iloc[:4]})[1]
    pain4 = next(c for c in few["context"] if c["outcome"] == "pain")
    assert pain4["per_session"] is None and pain4["not_estimated_because"].startswith("4 trial(s)")
    assert "5 needed" in pain4["text"]

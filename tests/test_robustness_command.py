"""The robustness of one analysis (synthesis.robustness) and `mt-evidence robustness`: every check runs with the
plan's own conventions, the answers agree with the checks run one by one, a check that cannot run says why, and the
command writes its folder all or nothing.

The frame of 12 trials below is SYNTHETIC (invented effects, so that the small-study checks have enough trials);
the bundled evidence is used as it is.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

import mt_evidence as me
from mt_evidence.cli import app
from mt_evidence.reporting import robustness as RR
from mt_evidence.synthesis import analysis as A
from mt_evidence.synthesis import robustness as R

runner = CliRunner()


@pytest.fixture(scope="module")
def bundled():
    cfg = A.load_config(None)
    ev = me.load_evidence()
    return ev, cfg, A.comparison_frame(ev, cfg)


def synthetic_frame(k: int = 12) -> pd.DataFrame:
    rng = np.random.default_rng(15)
    vi = rng.uniform(4, 40, k)
    yi = -6 + rng.normal(0, np.sqrt(vi + 9))
    return pd.DataFrame({"study_id": [f"Syn{i:02d}" for i in range(k)], "comparison": "exercise_vs_control",
                         "outcome": "pain", "window": "short", "yi": yi, "vi": vi, "used": True})


def test_every_check_agrees_with_the_check_run_alone(bundled):
    ev, cfg, frame = bundled
    r = R.robustness(frame, cfg, "exercise_vs_control", "disability", "short", studies=ev.studies)
    w = R.find_analysis(frame, cfg, "exercise_vs_control", "disability", "short")
    conv = w.result.conventions
    assert r.k == w.k == 9 and r.pooled.estimate == w.result.estimate and r.pooled.ci_low == w.result.ci_low
    plan = dict(method=conv.method, test=conv.test, adhoc=conv.adhoc, level=conv.level)
    # leaving each trial out = pooling the others with the plan's conventions
    for i, row in r.leave_one_out.iterrows():
        keep = np.arange(r.k) != i
        alone = me.pool(r.yi[keep], r.vi[keep], **plan)
        assert row["estimate"] == pytest.approx(alone.estimate, rel=1e-12)
        assert row["ci_low"] == pytest.approx(alone.ci_low, rel=1e-12)
    # the last cumulative step pools every trial: the planned result
    last = r.cumulative.table.iloc[-1]
    assert (last["estimate"], last["ci_low"], last["ci_high"]) == pytest.approx(
        (w.result.estimate, w.result.ci_low, w.result.ci_high), rel=1e-12)
    # ordered by year of publication, read from the studies table
    years = ev.studies.set_index("study_id")["year"]
    order = [years[s.split(" (")[0]] for s in r.cumulative.table["study"]]
    assert order == sorted(order)
    # GOSH: the subset of every trial is the DL fit of all of them
    full = r.gosh.incl.all(axis=1)
    assert r.gosh.table.loc[full, "estimate"].item() == pytest.approx(
        me.pool(r.yi, r.vi, method="DL").estimate, rel=1e-12)
    # the permutation test's observed statistic is the planned test's
    assert r.permutation.coefficients.loc["intrcpt", "stat"] == pytest.approx(w.result.stat, rel=1e-12)
    # nine trials: the small-study checks refuse, and say why
    assert set(r.skipped) == {"egger", "begg", "trim_and_fill", "pet_peese", "selection_model"}
    assert all("at least 10 trials" in why for why in r.skipped.values())
    text = r.summary_text()
    assert "Not run on this analysis" in text and "egger: Egger's test needs at least 10 trials" in text
    assert "with the ad hoc correction" in text  # the plan's conventions are printed with the results


def test_with_ten_or_more_trials_the_small_study_checks_run():
    frame = synthetic_frame()
    r = R.robustness(frame, None, "exercise_vs_control", "pain", "short")
    assert not r.skipped
    assert set(r.bias) == {"egger", "begg", "trim_and_fill", "pet_peese", "selection_model"}
    assert r.bias["egger"]["pval"] == pytest.approx(me.egger_test(r.yi, r.vi)["pval"], rel=1e-12)
    assert "pval = " in r.summary_text()  # the tests that return a dict are printed one value per line
    assert r.bias["selection_model"].lrt == pytest.approx(me.selection_model(r.yi, r.vi, alternative="less").lrt, rel=1e-12)
    # without a studies table the cumulative analysis keeps the analysis's order (sorted by study id)
    assert list(r.cumulative.table["study"]) == sorted(frame["study_id"])


def test_one_trial_skips_every_check_with_the_reason(bundled):
    _, cfg, frame = bundled
    r = R.robustness(frame, cfg, "manual_therapy_vs_exercise", "disability", "short")
    assert r.k == 1 and set(r.skipped) == set(R.ROBUSTNESS_STEPS)
    assert r.tables() == {} and "one trial" in r.summary_text()


def test_a_wrong_analysis_lists_those_there_are(bundled):
    _, cfg, frame = bundled
    with pytest.raises(ValueError, match=r"no analysis exercise_vs_control / disability / forever.*"
                                         r"exercise_vs_control / disability / short \(9 trials\)"):
        R.robustness(frame, cfg, "exercise_vs_control", "disability", "forever")


def test_progress_is_reported_for_every_step():
    said = []
    R.robustness(synthetic_frame(), None, "exercise_vs_control", "pain", "short",
                 progress=lambda step, done, total: said.append((step, done, total)))
    assert [s for s, d, t in said if d == t and d == 1 and s not in ("gosh", "permutation")] == \
        [s for s in R.ROBUSTNESS_STEPS if s not in ("gosh", "permutation")]
    gosh_calls = [(d, t) for s, d, t in said if s == "gosh" and t > 1]
    assert gosh_calls and gosh_calls[-1] == (2**12 - 1, 2**12 - 1)  # every subset of 12 trials


def test_write_robustness_writes_every_table_and_figure(tmp_path, monkeypatch):
    r = R.robustness(synthetic_frame(), None, "exercise_vs_control", "pain", "short")
    written = RR.write_robustness(r, tmp_path / "out", dpi=60)
    names = {p.name for p in (tmp_path / "out").iterdir()} - {".mt-evidence-owner"}
    assert names == set(written) == {"summary.txt", "leave_one_out.csv", "influence.csv", "baujat.csv",
                                     "cumulative.csv", "permutation.csv", "gosh.csv", "gosh.png", "baujat.png",
                                     "cumulative.png"}
    loo = pd.read_csv(tmp_path / "out" / "leave_one_out.csv")
    assert np.array_equal(loo["estimate"].to_numpy(), r.leave_one_out["estimate"].to_numpy())  # every digit
    assert len(pd.read_csv(tmp_path / "out" / "gosh.csv")) == 2**12 - 1
    # a GOSH table too large for a CSV: the figure and the summary only
    monkeypatch.setattr(RR, "GOSH_CSV_MAX", 100)
    written = RR.write_robustness(r, tmp_path / "out", dpi=60)
    assert "gosh.csv" not in written and not (tmp_path / "out" / "gosh.csv").exists()


def test_cli_writes_the_folder_and_lists_analyses_when_none_is_named(tmp_path):
    out = tmp_path / "rob"
    res = runner.invoke(app, ["robustness", "--out", str(out)])
    assert res.exit_code == 1
    assert "exercise_vs_control" in res.output and "--comparison, --outcome and --window" in res.output
    assert not out.exists()
    res = runner.invoke(app, ["robustness", "--comparison", "exercise_vs_control", "--outcome", "disability",
                              "--window", "short", "--out", str(out)])
    assert res.exit_code == 0, res.output
    assert "6 of 11 checks ran" in res.output
    assert (out / "summary.txt").read_text().startswith("Robustness of exercise_vs_control, disability, short")
    assert (out / "gosh.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_cli_refuses_a_folder_it_did_not_write_and_a_wrong_measure(tmp_path):
    mine = tmp_path / "mine"
    mine.mkdir()
    (mine / "notes.txt").write_text("my notes")
    args = ["robustness", "--comparison", "exercise_vs_control", "--outcome", "disability", "--window", "short"]
    res = runner.invoke(app, args + ["--out", str(mine)])
    assert res.exit_code == 1 and (mine / "notes.txt").read_text() == "my notes"
    assert sorted(p.name for p in mine.iterdir()) == ["notes.txt"]
    res = runner.invoke(app, args + ["--out", str(tmp_path / "x"), "--measure", "cm"])
    assert res.exit_code == 1 and "expected one of md100, smd, smd_change" in res.output
    res = runner.invoke(app, args[:-1] + ["forever", "--out", str(tmp_path / "x")])
    assert res.exit_code == 1 and "no analysis exercise_vs_control / disability / forever" in res.output
    assert not (tmp_path / "x").exists()

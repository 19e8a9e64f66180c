"""The network over time (durability in one model): validated against metafor rma.mv with two compound-symmetric
random effects (tests/reference/make_network_time_reference.R -> network_time_reference.json), the covariance of
repeated time points checked by hand, and known-answer scenarios (SYNTHETIC data, marked as such)."""

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import mt_evidence as me
from mt_evidence.stats import network_time as NT
from mt_evidence.stats.network import NetworkInputError

REF = json.loads((Path(__file__).parent / "reference" / "network_time_reference.json").read_text())
CASES = {c["name"]: c for c in REF["cases"]}


def _close(a, b, rtol=1e-6, atol=1e-6):
    np.testing.assert_allclose(np.asarray(a, float), np.asarray(b, float), rtol=rtol, atol=atol)


@pytest.mark.parametrize("rho", [0, 0.5, 0.9])
def test_ishak2007_matches_metafor(rho):
    c = CASES[f"ishak2007_rho{rho}"]
    d = pd.DataFrame(c["data"])
    con = pd.DataFrame({"study": d["study"], "treat1": "dbs", "treat2": "pre", "yi": d["yi"],
                        "se": np.sqrt(d["vi"]), "time": d["time"]})
    r = NT.network_over_time(con, reference="pre", rho_within=rho)
    assert list(r.times) == [3, 6, 12, 24]
    e = r.effects()
    _close(e["estimate"], c["b"])
    _close(e["se"], c["se"])
    _close([r.tau2_study, r.tau2_time], [c["tau2_study"], c["tau2_time"]], rtol=1e-5, atol=1e-5)


def test_bundled_disability_network_matches_metafor():
    """Real trials: the stacked differences of the bundled disability network (several treatments, multi-arm
    trials, repeated windows), fitted by metafor with the same y, V and X."""
    inp = json.loads((Path(__file__).parent / "reference" / "network_time_input.json").read_text())
    c = CASES["bundled_disability_network"]
    y, V, X = np.array(inp["y"]), np.array(inp["V"]), np.array(inp["X"])
    study, time, comp = inp["study"], inp["time"], inp["comp"]
    n = len(y)
    R1 = np.array([[(1.0 if comp[i] == comp[j] else 0.5) if study[i] == study[j] else 0.0 for j in range(n)]
                   for i in range(n)])
    R2 = np.array([[(1.0 if comp[i] == comp[j] else 0.5) if (study[i], time[i]) == (study[j], time[j]) else 0.0
                    for j in range(n)] for i in range(n)])
    rows = NT._Rows(y, V, R1, R2, X, pd.DataFrame())
    t1, t2 = NT._reml(rows)
    _close([t1, t2], [c["tau2_study"], c["tau2_time"]], rtol=1e-5, atol=1e-5)
    b, A, _, _, _ = NT.gls(y, V + t1 * R1 + t2 * R2, X)
    _close(b, c["b"])
    _close(np.sqrt(np.diag(A)), c["se"])
    # and the package's own fit of the bundled data gives the same numbers
    from mt_evidence.synthesis import network as SN

    res = SN.analyse_network_over_time(me.load_evidence(), "disability").result
    got = {f"{r.time}:{r.treatment}": r.estimate for r in res.effects().itertuples()}
    _close([got[k] for k in c["columns"]], c["b"], rtol=1e-5)


def test_repeated_time_points_covary_by_rho_within():
    """By hand (SYNTHETIC): one two-arm trial at two times, one three-arm trial at one time."""
    con = pd.DataFrame({
        "study": ["T1", "T1", "T2", "T2", "T2"],
        "treat1": ["a", "a", "a", "b", "b"], "treat2": ["ref", "ref", "ref", "ref", "a"],
        "yi": [-2.0, -1.0, -3.0, -1.0, 2.0], "se": [1.0, 2.0, 1.5, 1.5, 1.5], "time": [1, 2, 1, 1, 1]})
    # T2 given as contrasts must be complete and consistent: b - a = (b - ref) - (a - ref)
    con.loc[4, "yi"] = con.loc[3, "yi"] - con.loc[2, "yi"]
    from mt_evidence.stats.network import prepare_studies

    by_time = {t: prepare_studies(con[con["time"] == t].drop(columns=["time"]), None, None)[0] for t in (1, 2)}
    rows = NT.time_model_matrices(by_time, ["ref", "a", "b"], 0.3)
    r = rows.rows.reset_index(drop=True)
    i1 = r.index[(r["study"] == "T1") & (r["time"] == 1)][0]
    i2 = r.index[(r["study"] == "T1") & (r["time"] == 2)][0]
    assert rows.V[i1, i2] == pytest.approx(0.3 * 1.0 * 2.0)       # same difference, two times
    assert rows.R1[i1, i2] == 1.0 and rows.R2[i1, i2] == 0.0        # shared trial effect, not the time-specific one
    j = r.index[r["study"] == "T2"]
    assert rows.R2[j[0], j[1]] == 0.5 and rows.R1[j[0], j[1]] == 0.5  # two differences of one trial at one time
    assert rows.V[i1, j[0]] == 0.0                                   # different trials


def _fade_trials():
    """SYNTHETIC: manual therapy against usual care, 1.0 SE per difference, true effect -10 short and -2 long, each trial 4 points off it at both times (a trial effect that lasts)."""
    rows = []
    for i in range(8):
        rows.append({"study": f"S{i}", "treat1": "mt", "treat2": "uc", "yi": -10.0 + 4 * (i % 3 - 1), "se": 1.0,
                     "time": "short"})
        rows.append({"study": f"S{i}", "treat1": "mt", "treat2": "uc", "yi": -2.0 + 4 * (i % 3 - 1), "se": 1.0,
                     "time": "long"})
    return pd.DataFrame(rows)


def test_a_fading_effect_is_recovered_with_the_right_uncertainty():
    r = NT.network_over_time(_fade_trials(), reference="uc", rho_within=0.5, times=["short", "long"])
    ch = r.change("mt", "short", "long")
    assert ch["estimate"] == pytest.approx(8.0) and ch["ci_low"] > 0
    # every trial reports both times with the same deviation, so its true effects are perfectly correlated
    assert r.tau2_study > 5 and r.tau2_time == pytest.approx(0.0, abs=1e-6)
    assert r.rho_between == pytest.approx(1.0)
    # the change is more precise than two independent estimates would be (repeated measures in the same trials)
    ind = np.sqrt(r.effect("mt", "short")["se"] ** 2 + r.effect("mt", "long")["se"] ** 2)
    assert ch["se"] < ind
    assert "assumed rho = 0.5" in r.describe()


def test_time_model_problems_are_named():
    df = _fade_trials()
    df.loc[df["time"] == "long", "treat2"] = "advice"
    with pytest.raises(NetworkInputError) as e:
        NT.network_over_time(df, reference="uc")
    assert "at time long: no trial has the reference 'uc'" in str(e.value)
    with pytest.raises(NetworkInputError, match="no column 'week'"):
        NT.network_over_time(_fade_trials(), time="week")
    with pytest.raises(ValueError, match="rho_within"):
        NT.network_over_time(_fade_trials(), rho_within=1.0)


def test_reml_simplex_stops_once_converged_and_a_variance_indistinguishable_from_0_is_0(monkeypatch):
    """The simplex polish stops when its simplex has shrunk (its function tolerance is within the objective's
    rounding; below it, it turned for all 4,000 iterations, 1.5 s a fit); the bundled pain network's variance
    shared over time is one the likelihood cannot tell from 0, and is reported as 0 exactly."""
    from scipy import optimize

    from mt_evidence.synthesis import network as SN

    iterations = []
    real = optimize.minimize

    def counting(*args, **kwargs):
        res = real(*args, **kwargs)
        if kwargs.get("method") == "Nelder-Mead":
            iterations.append(res.nit)
        return res

    monkeypatch.setattr(NT.optimize, "minimize", counting)
    ev = me.load_evidence()
    pain = SN.analyse_network_over_time(ev, "pain").result
    SN.analyse_network_over_time(ev, "disability")
    assert iterations and max(iterations) < 1000
    assert pain.tau2_study == 0.0 and pain.tau2_time > 1

"""Dose (claim 9): do more sessions of manual therapy do better than fewer? (docs/methods.md section 14)

* **Within trials** (:func:`dose_frame`): in a trial with two or more arms of the same manual-therapy category
  (manual therapy, or manual therapy with exercise) whose planned sessions differ (``arm_details.csv``), the
  lowest-dose arm is "fewer sessions" and the others are "more sessions"; the usual rules then apply (arms of one
  side combined by the Handbook formula, arm-level data first, one time point per window), giving the comparison
  ``more_vs_fewer_sessions`` (negative favours more sessions).
* **Between trials** (:func:`dose_regression`): a meta-regression of manual therapy's effect against a pragmatic
  control on the number of planned sessions (REML, Knapp-Hartung), from 5 trials with a known number. Context
  only: trials that give more sessions also differ in population, technique and control.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace

import numpy as np
import pandas as pd

from ..evidence.io import Evidence
from ..stats.regression import MetaRegressionResult, meta_regression
from . import analysis as A

MORE, FEWER = "more_sessions", "fewer_sessions"
DOSE_CATEGORIES = ("manual_therapy", "combined")


def dose_arms(ev: Evidence) -> pd.DataFrame:
    """Arms of trials with a dose contrast: study_id, arm, intervention, sessions, side (more/fewer)."""
    d = ev.arm_details
    if d is None or d.empty:
        return pd.DataFrame(columns=["study_id", "arm", "intervention", "sessions", "side"])
    d = d[d["intervention"].isin(DOSE_CATEGORIES) & d["sessions"].notna()]
    rows = []
    for (sid, cat), g in d.groupby(["study_id", "intervention"], sort=True):
        if g["sessions"].nunique() < 2:
            continue
        low = g["sessions"].min()
        lowest = g[g["sessions"] == low]
        if len(lowest) > 1:  # two arms share the lowest dose: no single reference arm
            continue
        for r in g.itertuples():
            rows.append({"study_id": sid, "arm": r.arm, "intervention": cat, "sessions": r.sessions,
                         "side": FEWER if r.sessions == low else MORE})
    return pd.DataFrame(rows, columns=["study_id", "arm", "intervention", "sessions", "side"])


def dose_evidence(ev: Evidence) -> Evidence:
    """The evidence of dose-contrast trials only, arms relabelled ``more_sessions`` / ``fewer_sessions``."""
    arms_map = {(r.study_id, r.arm): r.side for r in dose_arms(ev).itertuples()}
    a = ev.arms.loc[np.array([(s, x) in arms_map for s, x in zip(ev.arms["study_id"], ev.arms["arm"])],
                             dtype=bool)].copy()
    a["intervention"] = [arms_map[(s, x)] for s, x in zip(a["study_id"], a["arm"])]
    c = ev.contrasts.loc[np.array([(s, x) in arms_map and (s, y) in arms_map and arms_map[(s, x)] != arms_map[(s, y)]
                                   for s, x, y in zip(ev.contrasts["study_id"], ev.contrasts["arm1"],
                                                      ev.contrasts["arm2"])], dtype=bool)].copy()
    if len(c):
        c["intervention1"] = [arms_map[(s, x)] for s, x in zip(c["study_id"], c["arm1"])]
        c["intervention2"] = [arms_map[(s, y)] for s, y in zip(c["study_id"], c["arm2"])]
        swap = c["intervention1"] == FEWER
        for x, y in (("arm1", "arm2"), ("intervention1", "intervention2"), ("technique1", "technique2"),
                     ("n1", "n2")):
            c.loc[swap, [x, y]] = c.loc[swap, [y, x]].to_numpy()
        flip = {"arm1_minus_arm2": "arm2_minus_arm1", "arm2_minus_arm1": "arm1_minus_arm2"}
        c.loc[swap, "direction_stored"] = c.loc[swap, "direction_stored"].map(lambda v: flip.get(v, v))
    return replace(ev, arms=a.reset_index(drop=True), contrasts=c.reset_index(drop=True))


def dose_frame(ev: Evidence, config: A.AnalysisConfig | None = None, *, measure: str = "md100") -> pd.DataFrame:
    """Rows of the comparison frame for ``more_vs_fewer_sessions`` (same columns as ``comparison_frame``)."""
    if dose_arms(ev).empty:
        return pd.DataFrame(columns=A.FRAME_COLUMNS)
    f = A.comparison_frame(dose_evidence(ev), config, measure=measure)
    return f[f["comparison"] == "more_vs_fewer_sessions"].reset_index(drop=True)


#: the between-trial dose analysis needs this many trials with a known number of sessions (docs/methods.md 14)
MIN_TRIALS_REGRESSION = 5


@dataclass(frozen=True)
class DoseRegression:
    """Between-trial meta-regression of one analysis's effect on planned sessions (context only)."""

    comparison: str
    outcome: str
    window: str
    trials: pd.DataFrame = field(repr=False)  # study_id, sessions, yi, vi of the rows with a known number
    result: MetaRegressionResult | None
    reason: str = ""  # why it was not fitted

    @property
    def k(self) -> int:
        return A.trial_count(self.trials["study_id"]) if len(self.trials) else 0

    def slope(self) -> pd.Series | None:
        """The coefficient of ``sessions``: the change in the effect per extra planned session."""
        return None if self.result is None else self.result.coefficients.loc["sessions"]

    def text(self, unit: str = "points on 0-100") -> str:
        first, second = A.COMPARISON_LABELS[self.comparison]
        head = (f"Between trials (context only, docs/methods.md section 14): {first} vs {second}, "
                f"{self.outcome}, {self.window} term")
        if self.result is None:
            return f"{head}: not estimated; {self.reason}."
        c = self.slope()
        return (f"{head}: the effect changes by {c['estimate']:+.2f} {unit} per extra planned session "
                f"(95% CI {c['ci_low']:.2f} to {c['ci_high']:.2f}; {self.k} trials, {len(self.trials)} comparisons; "
                f"REML, Knapp-Hartung). Trials that give more sessions also differ in population, technique and "
                f"control, so this does not show what more sessions do.")


def _planned_sessions(ev: Evidence, study_id: str, arm) -> float:
    """Planned sessions of a frame row's first arm (the mean over combined arms); NaN when not known."""
    d = ev.arm_details
    if d is None or d.empty:
        return np.nan
    trial = str(study_id).split(" (")[0]
    got = d[(d["study_id"] == trial) & d["arm"].isin(str(arm).split("+"))]["sessions"]
    return float(got.mean()) if len(got) and got.notna().all() else np.nan


def dose_regression(frame: pd.DataFrame, ev: Evidence, outcome: str, window: str = "short",
                    comparison: str = "manual_therapy_vs_pragmatic",
                    config: A.AnalysisConfig | None = None) -> DoseRegression:
    """Meta-regression of the used rows of ``comparison`` x ``outcome`` x ``window`` on the planned sessions of
    the manual-therapy arm (``arm_details.csv``), by the plan's random-effects settings (REML, Knapp-Hartung),
    from :data:`MIN_TRIALS_REGRESSION` trials with a known number of sessions; otherwise the reason."""
    config = config or A.load_config()
    f = frame.loc[frame["used"].astype(bool) & (frame["comparison"] == comparison) & (frame["outcome"] == outcome)
                  & (frame["window"] == window)]
    t = pd.DataFrame({"study_id": f["study_id"].to_numpy(), "arm": f["arm1"].to_numpy(),
                      "sessions": [_planned_sessions(ev, s, a) for s, a in zip(f["study_id"], f["arm1"])],
                      "yi": f["yi"].to_numpy(float), "vi": f["vi"].to_numpy(float)})
    unknown = int(t["sessions"].isna().sum())
    t = t[t["sessions"].notna()].reset_index(drop=True)
    k = A.trial_count(t["study_id"]) if len(t) else 0
    missing = f" ({unknown} comparison(s) without a known number of sessions left out)" if unknown else ""
    if k < MIN_TRIALS_REGRESSION:
        return DoseRegression(comparison, outcome, window, t, None,
                              f"{k} trial(s) with a known number of sessions, {MIN_TRIALS_REGRESSION} needed{missing}")
    if t["sessions"].nunique() < 2:
        return DoseRegression(comparison, outcome, window, t, None, "every trial plans the same number of sessions")
    res = meta_regression(t["yi"].to_numpy(float), t["vi"].to_numpy(float), {"sessions": t["sessions"]},
                          method=config.method if config.method != "FE" else "REML",
                          test="hksj" if config.test in ("hksj", "knha") else config.test, adhoc=config.adhoc)
    return DoseRegression(comparison, outcome, window, t, res, missing.strip(" ()"))

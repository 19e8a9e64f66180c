"""Dose (claim 9): do more sessions of manual therapy do better than fewer? (docs/methods.md section 14)

* **Within trials** (:func:`dose_frame`): in a trial with two or more arms of the same manual-therapy category
  (manual therapy, or manual therapy with exercise) whose planned sessions differ (``arm_details.csv``), the
  lowest-dose arm is "fewer sessions" and the others are "more sessions"; the usual rules then apply (arms of one
  side combined by the Handbook formula, arm-level data first, one time point per window), giving the comparison
  ``more_vs_fewer_sessions`` (negative favours more sessions).
* **Between trials** (:func:`dose_regression`): manual therapy's effect against a pragmatic control regressed on
  the planned number of sessions (REML, Knapp-Hartung), from ``MIN_K_REGRESSION`` trials with a known number;
  context only, since dose goes with population and technique across trials.
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pandas as pd

from ..evidence.io import Evidence
from ..stats.regression import MetaRegressionResult, meta_regression
from . import analysis as A

MORE, FEWER = "more_sessions", "fewer_sessions"
DOSE_CATEGORIES = ("manual_therapy", "combined")
MIN_K_REGRESSION = 5


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


def sessions_by_arm(ev: Evidence) -> dict[tuple[str, str], float]:
    d = ev.arm_details
    if d is None or d.empty:
        return {}
    d = d[d["sessions"].notna()]
    return {(s, a): float(n) for s, a, n in zip(d["study_id"], d["arm"], d["sessions"])}


def dose_regression(frame: pd.DataFrame, ev: Evidence, outcome: str, window: str,
                    comparison: str = "manual_therapy_vs_pragmatic") -> tuple[MetaRegressionResult | None, pd.DataFrame]:
    """Manual therapy's effect regressed on its planned sessions across trials (context only)."""
    ses = sessions_by_arm(ev)
    g = frame[(frame["comparison"] == comparison) & (frame["outcome"] == outcome) & (frame["window"] == window)
              & frame["used"].astype(bool)].copy()
    g["sessions"] = [_arm_sessions(ses, s, a) for s, a in zip(g["study_id"], g["arm1"])]
    g = g[g["sessions"].notna()]
    if g["study_id"].nunique() < MIN_K_REGRESSION or g["sessions"].nunique() < 2:
        return None, g
    res = meta_regression(g["yi"].to_numpy(float), g["vi"].to_numpy(float), {"sessions": g["sessions"].to_numpy(float)},
                          method="REML", test="hksj")
    return res, g


def _arm_sessions(ses: dict, sid: str, arm) -> float:
    """Sessions of an arm; for combined arms ('a+b') the mean of the parts when all are known."""
    parts = str(arm).split("+")
    vals = [ses.get((sid, p)) for p in parts]
    return float(np.mean(vals)) if all(v is not None for v in vals) else np.nan

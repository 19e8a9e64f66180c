"""Dose (claim 9): do more sessions of manual therapy do better than fewer? (docs/methods.md section 14)

* **Within trials** (:func:`dose_frame`): in a trial with two or more arms of the same manual-therapy category
  (manual therapy, or manual therapy with exercise) whose planned sessions differ (``arm_details.csv``), the
  lowest-dose arm is "fewer sessions" and the others are "more sessions"; the usual rules then apply (arms of one
  side combined by the Handbook formula, arm-level data first, one time point per window), giving the comparison
  ``more_vs_fewer_sessions`` (negative favours more sessions).
* **Between trials**: a meta-regression on planned sessions is planned (docs/methods.md section 14).
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pandas as pd

from ..evidence.io import Evidence
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

"""Harms (claim 8): adverse events of manual therapy against arms without it, and how common they are within
manual-therapy arms (docs/methods.md section 13).

The flow: :func:`harms_tables` turns ``harms.csv`` rows into one 2x2 table per trial x comparison x event type
(manual-therapy arms of a trial combined, events and n added) -> :func:`analyse_harms` pools each with
Mantel-Haenszel (risk ratio and risk difference; Peto's odds ratio as a sensitivity analysis), pools the
proportion of manual-therapy participants with each event (Freeman-Tukey, REML), and gives the exact upper 95%
limit of the risk of a serious adverse event with manual therapy.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd
from scipy import stats

from ..evidence.io import Evidence
from ..stats.binary import BinaryPoolResult, ProportionPoolResult, pool_binary, pool_proportions

MT = ("manual_therapy", "combined")
HARM_COMPARISONS = {
    "manual_therapy_vs_sham": ("manual therapy", "sham", ("sham",)),
    "manual_therapy_vs_no_manual_therapy": ("manual therapy", "care without manual therapy",
                                            ("exercise", "usual_care", "advice", "wait_list", "other")),
}
EVENT_LABELS = {
    "any_adverse_event": "any adverse event",
    "serious_adverse_event": "serious adverse events",
    "increased_pain_or_soreness": "increased pain or soreness",
    "other": "other adverse events",
}


def usable(harms: pd.DataFrame) -> pd.DataFrame:
    """Rows that can be pooled: counts of participants with both events and n."""
    if harms is None or harms.empty:
        return pd.DataFrame(columns=["study_id", "arm", "intervention", "event_type", "events", "n"])
    h = harms[(harms["unit"] == "participants") & harms["events"].notna() & harms["n"].notna()]
    return h.copy()


def harms_tables(harms: pd.DataFrame) -> pd.DataFrame:
    """One row per trial x comparison x event type: events and n with manual therapy (arms combined) and
    without, and the arms that went in."""
    h = usable(harms)
    rows = []
    for (sid, etype), g in h.groupby(["study_id", "event_type"], sort=True):
        mt = g[g["intervention"].isin(MT)]
        if mt.empty:
            continue
        for comp, (_f, _s, controls) in HARM_COMPARISONS.items():
            ctl = g[g["intervention"].isin(controls)]
            if ctl.empty:
                continue
            rows.append({"study_id": sid, "comparison": comp, "event_type": etype,
                         "events1": float(mt["events"].sum()), "n1": float(mt["n"].sum()),
                         "events2": float(ctl["events"].sum()), "n2": float(ctl["n"].sum()),
                         "arms1": ";".join(mt["arm"]), "arms2": ";".join(ctl["arm"])})
    return pd.DataFrame(rows, columns=["study_id", "comparison", "event_type", "events1", "n1", "events2", "n2",
                                       "arms1", "arms2"])


def clopper_pearson_upper(events: float, n: float, level: float = 0.95) -> float:
    """Exact two-sided upper limit of a proportion (Clopper-Pearson)."""
    if n <= 0:
        return float("nan")
    if events >= n:
        return 1.0
    return float(stats.beta.ppf(1 - (1 - level) / 2, events + 1, n - events))


@dataclass(frozen=True)
class HarmAnalysis:
    comparison: str
    event_type: str
    tables: pd.DataFrame
    rr: BinaryPoolResult | None
    rd: BinaryPoolResult | None
    peto: BinaryPoolResult | None

    @property
    def label(self) -> str:
        f, s, _ = HARM_COMPARISONS[self.comparison]
        return f"{EVENT_LABELS.get(self.event_type, self.event_type)}: {f} vs {s}"

    @property
    def k(self) -> int:
        return len(self.tables)

    def text(self) -> str:
        t = self.tables
        e1, n1, e2, n2 = (int(t[c].sum()) for c in ("events1", "n1", "events2", "n2"))
        counts = f"{e1} of {n1} with manual therapy, {e2} of {n2} without ({self.k} trial(s))"
        if self.rr is None or not np.isfinite(self.rr.estimate):
            rd = self.rd
            extra = (f"; risk difference {100 * rd.estimate:+.1f} per 100 (95% CI {100 * rd.ci_low:.1f} to "
                     f"{100 * rd.ci_high:.1f})" if rd is not None and np.isfinite(rd.estimate) else "")
            return f"{counts}; no risk ratio (too few events){extra}"
        r = self.rr
        return (f"{counts}; risk ratio {r.ratio:.2f} (95% CI {r.ratio_ci_low:.2f} to {r.ratio_ci_high:.2f}, "
                f"Mantel-Haenszel), risk difference {100 * self.rd.estimate:+.1f} per 100 (95% CI "
                f"{100 * self.rd.ci_low:.1f} to {100 * self.rd.ci_high:.1f})")


@dataclass(frozen=True)
class HarmsResult:
    analyses: tuple[HarmAnalysis, ...]
    proportions: dict[str, ProportionPoolResult]
    serious: dict = field(default_factory=dict)

    def get(self, comparison: str, event_type: str) -> HarmAnalysis | None:
        return next((a for a in self.analyses if a.comparison == comparison and a.event_type == event_type), None)


def analyse_harms(ev: Evidence | pd.DataFrame, level: float = 0.95) -> HarmsResult:
    harms = ev.harms if isinstance(ev, Evidence) else ev
    tables = harms_tables(harms)
    out = []
    for (comp, etype), g in tables.groupby(["comparison", "event_type"], sort=True):
        g = g.reset_index(drop=True)
        args = (g["events1"], g["n1"], g["events2"], g["n2"])
        labels = list(g["study_id"])
        rr = pool_binary("RR", *args, method="MH", level=level, labels=labels)
        rd = pool_binary("RD", *args, method="MH", level=level, labels=labels)
        try:
            peto = pool_binary("OR", *args, method="PETO", level=level, labels=labels)
        except ValueError:
            peto = None
        out.append(HarmAnalysis(comp, etype, g, rr, rd, peto))
    h = usable(harms)
    mt = h[h["intervention"].isin(MT)]
    props = {}
    for etype, g in mt.groupby("event_type"):
        per_trial = g.groupby("study_id")[["events", "n"]].sum()
        if len(per_trial) >= 1:
            props[etype] = pool_proportions(per_trial["events"], per_trial["n"], measure="PFT", method="REML",
                                            pi_type="riley", labels=list(per_trial.index), level=level)
    serious = {}
    s = mt[mt["event_type"] == "serious_adverse_event"]
    if len(s):
        e, n = float(s["events"].sum()), float(s["n"].sum())
        serious = {"events": e, "participants": n, "trials": int(s["study_id"].nunique()),
                   "upper": clopper_pearson_upper(e, n, level)}
    return HarmsResult(tuple(out), props, serious)


def serious_sentence(serious: dict) -> str:
    """What trials can and cannot show about rare serious harms, in one sentence."""
    if not serious:
        return ("No trial in this evidence reports serious adverse events per arm as counts, so nothing can be said "
                "about serious harms from it.")
    e, n, up = serious["events"], serious["participants"], serious["upper"]
    per = 1000 * up
    return (f"{e:.0f} serious adverse event(s) were recorded among {n:.0f} people given manual therapy in "
            f"{serious['trials']} trial(s). Trials of this size cannot rule out a risk of up to {per:.0f} in 1,000 "
            "(exact upper 95% limit); rarer serious harms, such as those reported after neck manipulation, cannot "
            "be seen in trials at all and need other kinds of study.")

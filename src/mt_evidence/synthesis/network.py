"""The bundled trials as one network per outcome and window (docs/methods.md section 16).

:func:`network_input` turns the evidence into the tidy frames :func:`mt_evidence.network_meta` reads (arm-level
rows where the trial gives arms, printed differences otherwise), with the instrument, time point and value type the
pairwise analyses chose for each trial; :func:`analyse_network` fits the standard and the additive component
models on the largest connected part and lists what was left out and why.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from ..evidence.io import Evidence
from ..stats import network as N
from . import analysis as A

NODES = ("manual_therapy", "exercise", "combined", "sham", "usual_care", "advice", "wait_list")
NODE_LABELS = {"manual_therapy": "manual therapy", "exercise": "exercise", "combined": "manual therapy + exercise",
               "sham": "sham", "usual_care": "usual care", "advice": "advice", "wait_list": "wait list"}
REFERENCE_ORDER = ("usual_care", "advice", "wait_list", "sham", "exercise")
COMPONENTS = {"combined": ["manual_therapy", "exercise"]}
#: the pairwise comparisons whose rows carry the network's data (no "any control" views, no technique or dose
#: comparisons: those are the same trials again)
_NETWORK_COMPARISONS = tuple(c for c in A.COMPARISONS if c not in A.ANY_CONTROL_VIEWS
                             and c != "more_vs_fewer_sessions")


def _second_node(comparison: str, control_type: str) -> str:
    first, seconds = A.COMPARISONS[comparison]
    return control_type if set(seconds) <= set(A.CONTROLS) else seconds[0]


def network_input(ev: Evidence, outcome: str, window: str, config: A.AnalysisConfig | None = None,
                  frame: pd.DataFrame | None = None) -> tuple[pd.DataFrame, pd.DataFrame, list[dict]]:
    """(arms, contrasts, left_out) for one outcome and window.

    ``arms``: study, treatment, estimate, variance, n (arm means on 0-100, oriented so that a lower value is
    better: a difference of two arms then reads as in the pairwise analyses); ``contrasts``: study, treat1,
    treat2, yi, se, n1, n2; ``left_out``: one dict per trial or arm not used, with the reason.
    """
    config = config or A.load_config()
    frame = A.comparison_frame(ev, config) if frame is None else frame
    f = frame.loc[frame["used"].astype(bool) & (frame["outcome"] == outcome) & (frame["window"] == window)
                  & frame["comparison"].isin(_NETWORK_COMPARISONS)].copy()
    f["_trial"] = f["study_id"].str.replace(r" \(.*\)$", "", regex=True)
    arms_all = ev.arms
    arms_all = arms_all[(arms_all["role"].fillna("primary") == "primary") & arms_all["mean"].notna()]
    arm_rows, con_rows, left = [], [], []
    for trial, g in f.groupby("_trial", sort=True):
        from_arms = g[g["source_kind"] == "arms"]
        if len(from_arms):
            key = from_arms.iloc[0]
            a = arms_all[(arms_all["study_id"] == trial) & (arms_all["outcome"] == outcome)
                         & (arms_all["instrument"] == key["instrument"])
                         & (arms_all["timepoint_weeks"] == key["timepoint_weeks"])
                         & (arms_all["value_type"] == key["value_type"])
                         & (arms_all["adjusted"].fillna(False).astype(bool) == bool(key["adjusted"]))].copy()
            flip = a["change_sign"] == "baseline_minus_followup"
            a.loc[flip, "mean"] = -a.loc[flip, "mean"]
            a.loc[flip, ["ci_low", "ci_high"]] = -a.loc[flip, ["ci_high", "ci_low"]].to_numpy()
            other = a[~a["intervention"].isin(NODES)]
            for r in other.itertuples():
                left.append({"study": trial, "what": f"arm {r.arm}", "why": f"intervention '{r.intervention}' is not "
                             "a node of the network"})
            a = a[a["intervention"].isin(NODES)]
            nodes = []
            for node, ga in a.groupby("intervention", sort=False):
                s, _ = A._side_summary([r for _, r in ga.iterrows()])
                r0 = ga.iloc[0]
                on = A._on_100(s["mean"], s["se"], r0["instrument"], r0["scale_min"], r0["scale_max"], config)
                if not (np.isfinite(on["md100"]) and np.isfinite(on["md100_se"]) and on["md100_se"] > 0):
                    left.append({"study": trial, "what": f"arm(s) {', '.join(ga['arm'])}",
                                 "why": "no mean and SE on a 0-100 scale"})
                    continue
                sign = 1.0 if bool(r0["higher_is_worse"]) else -1.0
                nodes.append({"study": trial, "treatment": node, "estimate": sign * on["md100"],
                              "variance": on["md100_se"] ** 2, "n": s["n"]})
            if len(nodes) >= 2:
                arm_rows += nodes
            else:
                left.append({"study": trial, "what": "trial", "why": "fewer than two network nodes with usable arms"})
            continue
        # printed differences only
        rows = []
        for r in g.itertuples():
            first = A.COMPARISONS[r.comparison][0]
            rows.append({"study": r.study_id, "trial": trial, "treat1": first,
                         "treat2": _second_node(r.comparison, r.control_type), "yi": r.yi, "se": np.sqrt(r.vi),
                         "n1": r.n1, "n2": r.n2})
        nodes = {x for r in rows for x in (r["treat1"], r["treat2"])}
        split = any(r["study"] != trial for r in rows)
        if len(nodes) > 2 and not split and len(rows) != len(nodes) * (len(nodes) - 1) // 2:
            for r in rows:
                r["study"] = f"{trial} [{r['treat1']} vs {r['treat2']}]"
            left.append({"study": trial, "what": "covariance", "why": (
                f"{len(nodes)} nodes but only {len(rows)} printed differences: each enters as its own contrast, "
                "so the shared arm is counted in each (its weight is overstated)")})
        con_rows += rows
    arms = pd.DataFrame(arm_rows, columns=["study", "treatment", "estimate", "variance", "n"])
    contrasts = pd.DataFrame(con_rows, columns=["study", "trial", "treat1", "treat2", "yi", "se", "n1", "n2"])
    return arms, contrasts, left


@dataclass(frozen=True)
class NetworkAnalysis:
    outcome: str
    window: str
    result: N.NetworkResult | None
    component: N.ComponentNetworkResult | None
    arms: pd.DataFrame = field(repr=False)
    contrasts: pd.DataFrame = field(repr=False)
    left_out: tuple[dict, ...] = ()
    reason: str = ""  # why no network could be fitted

    @property
    def fitted(self) -> bool:
        return self.result is not None


def _parts(arms: pd.DataFrame, contrasts: pd.DataFrame) -> list[tuple[set[str], set[str]]]:
    """Connected parts: (treatments, studies) each, largest first."""
    edges: dict[str, set[str]] = {}
    for s, g in arms.groupby("study"):
        edges.setdefault(s, set()).update(g["treatment"])
    for r in contrasts.itertuples():
        edges.setdefault(r.study, set()).update((r.treat1, r.treat2))
    parent: dict[str, str] = {}

    def find(x):
        while parent.setdefault(x, x) != x:
            x = parent[x]
        return x

    for ts in edges.values():
        ts = sorted(ts)
        for t in ts[1:]:
            parent[find(t)] = find(ts[0])
        find(ts[0])
    groups: dict[str, tuple[set, set]] = {}
    for s, ts in edges.items():
        root = find(next(iter(ts)))
        g = groups.setdefault(root, (set(), set()))
        g[0].update(ts)
        g[1].add(s)
    return sorted(groups.values(), key=lambda g: (-len(g[1]), -len(g[0]), sorted(g[0])))


def analyse_network(ev: Evidence, outcome: str, window: str, config: A.AnalysisConfig | None = None,
                    frame: pd.DataFrame | None = None, method: str = "REML") -> NetworkAnalysis:
    """The network of one outcome and window (docs/methods.md section 16): the standard model and the additive
    component model on the largest connected part, with every trial left out and why."""
    config = config or A.load_config()
    arms, contrasts, left = network_input(ev, outcome, window, config, frame)
    parts = _parts(arms, contrasts)
    if not parts:
        return NetworkAnalysis(outcome, window, None, None, arms, contrasts, tuple(left), "no trial")
    nodes, studies = parts[0]
    for other_nodes, other_studies in parts[1:]:
        for s in sorted(other_studies):
            left.append({"study": s, "what": "trial", "why": (
                f"not connected to the main network (its treatments {', '.join(sorted(other_nodes))} are compared "
                "with nothing else in this window)")})
    a = arms[arms["study"].isin(studies)]
    c = contrasts[contrasts["study"].isin(studies)].drop(columns=["trial"])
    if len(nodes) < 2:
        return NetworkAnalysis(outcome, window, None, None, arms, contrasts, tuple(left), "fewer than two nodes")
    reference = next((r for r in REFERENCE_ORDER if r in nodes), sorted(nodes)[0])
    data, extra = (a, c if len(c) else None) if len(a) else (c, None)
    try:
        res = N.network_meta(data, contrasts=extra, reference=reference, method=method)
    except N.NetworkInputError as err:
        return NetworkAnalysis(outcome, window, None, None, arms, contrasts, tuple(left), str(err))
    comp = None
    if "combined" in nodes and {"manual_therapy", "exercise"} & nodes:
        try:
            comp = N.component_network_meta(data, COMPONENTS, contrasts=extra, reference=reference, method=method)
        except N.NetworkInputError as err:
            left.append({"study": "", "what": "component model", "why": str(err)})
    return NetworkAnalysis(outcome, window, res, comp, arms, contrasts, tuple(left))

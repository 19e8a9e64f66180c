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
from ..stats import network_time as NT
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


def nodes_of(vocabulary=None) -> tuple[str, ...]:
    """The network's treatments: the package's, or a review's declared ones (docs/methods.md section 18)."""
    return NODES if vocabulary is None or vocabulary.is_default else vocabulary.network_nodes


def node_labels(vocabulary=None) -> dict[str, str]:
    return NODE_LABELS if vocabulary is None or vocabulary.is_default else vocabulary.treatment_labels()


def components_of(vocabulary=None) -> dict[str, list[str]]:
    return COMPONENTS if vocabulary is None or vocabulary.is_default else vocabulary.components()


def reference_order(vocabulary=None) -> tuple[str, ...]:
    """Preferred reference nodes: the controls in declared order, then the active cares from the last declared."""
    if vocabulary is None or vocabulary.is_default:
        return REFERENCE_ORDER
    active = [t for t in vocabulary.network_nodes if t not in vocabulary.controls]
    return tuple(c for c in vocabulary.controls if c in vocabulary.network_nodes) + tuple(reversed(active))


def network_comparisons(vocabulary=None) -> tuple[str, ...]:
    """The pairwise comparisons whose rows carry the network's data (no labelled views, technique or dose rows)."""
    if vocabulary is None or vocabulary.is_default:
        return _NETWORK_COMPARISONS
    return tuple(c for c in A.comparisons_of(vocabulary) if c not in A.views_of(vocabulary))


def _second_node(comparison: str, control_type: str, vocabulary=None) -> str:
    first, seconds = A.comparisons_of(vocabulary)[comparison]
    return control_type if set(seconds) <= set(A.controls_of(vocabulary)) else seconds[0]


def _arm_nodes(trial: str, a: pd.DataFrame, config: A.AnalysisConfig, left: list[dict],
               nodes_allowed: tuple[str, ...] = NODES) -> list[dict]:
    """One trial's arms at one instrument and time as network nodes (arms of one node combined by the Handbook
    formula), each mean and its variance on 0-100, oriented so that lower is better; [] when fewer than two."""
    NODES = nodes_allowed  # noqa: N806
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
        return nodes
    left.append({"study": trial, "what": "trial", "why": "fewer than two network nodes with usable arms"})
    return []


def _flip_change_sign(a: pd.DataFrame) -> pd.DataFrame:
    a = a.copy()
    flip = a["change_sign"] == "baseline_minus_followup"
    a.loc[flip, "mean"] = -a.loc[flip, "mean"]
    a.loc[flip, ["ci_low", "ci_high"]] = -a.loc[flip, ["ci_high", "ci_low"]].to_numpy()
    return a


def _control_trials(ev: Evidence, arms_all: pd.DataFrame, outcome: str, window: str, config: A.AnalysisConfig,
                    done: set, left: list[dict]) -> list[dict]:
    """Trials that compare two control types only (e.g. advice against wait list): no pairwise comparison of
    section 1 holds them, but they link the control nodes. Arm-level rows in the window, at the preferred
    instrument, then the time point nearest the window's target (as the pairwise analyses choose)."""
    w = config.window(window)
    out: list[dict] = []
    sub = arms_all[(arms_all["outcome"] == outcome) & ~arms_all["study_id"].isin(done)]
    for trial, g in sub.groupby("study_id", sort=True):
        if not set(g["intervention"]) <= set(A.controls_of(ev.vocabulary)) or g["intervention"].nunique() < 2:
            continue
        g = g[[t == t and w.contains(t) for t in g["timepoint_weeks"]]]
        if g.empty:
            continue
        keys = g.groupby(["instrument", "timepoint_weeks", "value_type", g["adjusted"].fillna(False).astype(bool)],
                         sort=False)["intervention"].nunique()
        keys = [k for k, n in keys.items() if n >= 2]
        if not keys:
            continue
        key = min(keys, key=lambda k: (A._instrument_rank(outcome, k[0], config), abs(k[1] - w.target), -k[1]))
        a = g[(g["instrument"] == key[0]) & (g["timepoint_weeks"] == key[1]) & (g["value_type"] == key[2])
              & (g["adjusted"].fillna(False).astype(bool) == key[3])]
        out += _arm_nodes(trial, _flip_change_sign(a), config, left, nodes_of(ev.vocabulary))
    return out


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
                  & frame["comparison"].isin(network_comparisons(ev.vocabulary))].copy()
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
            a = _flip_change_sign(a)
            arm_rows += _arm_nodes(trial, a, config, left, nodes_of(ev.vocabulary))
            continue
        # printed differences only
        rows = []
        for r in g.itertuples():
            first = A.comparisons_of(ev.vocabulary)[r.comparison][0]
            rows.append({"study": r.study_id, "trial": trial, "treat1": first,
                         "treat2": _second_node(r.comparison, r.control_type, ev.vocabulary), "yi": r.yi, "se": np.sqrt(r.vi),
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
    arm_rows += _control_trials(ev, arms_all, outcome, window, config, set(f["_trial"]), left)
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
    reference = next((r for r in reference_order(ev.vocabulary) if r in nodes), sorted(nodes)[0])
    data, extra = (a, c if len(c) else None) if len(a) else (c, None)
    try:
        res = N.network_meta(data, contrasts=extra, reference=reference, method=method)
    except N.NetworkInputError as err:
        return NetworkAnalysis(outcome, window, None, None, arms, contrasts, tuple(left), str(err))
    comp = None
    components = {t: c for t, c in components_of(ev.vocabulary).items() if t in nodes and set(c) & nodes}
    if components:
        try:
            comp = N.component_network_meta(data, components, contrasts=extra, reference=reference, method=method)
        except N.NetworkInputError as err:
            left.append({"study": "", "what": "component model", "why": str(err)})
    return NetworkAnalysis(outcome, window, res, comp, arms, contrasts, tuple(left))


# ------------------------------------------------------------------------------------- durability over time


@dataclass(frozen=True)
class NetworkTimeAnalysis:
    """One outcome's network over every window at once (docs/methods.md section 16, "Durability")."""

    outcome: str
    result: NT.NetworkTimeResult | None
    left_out: tuple[dict, ...] = ()
    reason: str = ""

    @property
    def fitted(self) -> bool:
        return self.result is not None


def network_over_time_input(ev: Evidence, outcome: str, config: A.AnalysisConfig | None = None,
                            frame: pd.DataFrame | None = None) -> tuple[pd.DataFrame, pd.DataFrame, str, list[dict]]:
    """(arms, contrasts, reference, left_out) of every window, each row with its window in ``time``: in each window
    the connected part that holds the reference (the first of usual care, advice, wait list, sham, exercise that
    is in every window's network, else in most of them); trials outside it are left out with the reason."""
    config = config or A.load_config()
    frame = A.comparison_frame(ev, config) if frame is None else frame
    per: dict[str, tuple] = {}
    left: list[dict] = []
    for w in config.windows:
        arms, con, lo = network_input(ev, outcome, w.name, config, frame)
        left += [{**x, "window": w.name} for x in lo]
        per[w.name] = (arms, con, _parts(arms, con))
    present = {w: set().union(*[p[0] for p in v[2]]) if v[2] else set() for w, v in per.items()}
    order = reference_order(ev.vocabulary)
    if not any(r in s for r in order for s in present.values()):
        order = tuple(sorted(set().union(*present.values()))) or order
    ranked = sorted(order, key=lambda r: (-sum(r in s for s in present.values()), order.index(r)))
    reference = ranked[0]
    arms_out, con_out = [], []
    for w, (arms, con, parts) in per.items():
        main = next((p for p in parts if reference in p[0]), None)
        for nodes, studies in parts:
            if main is not None and studies is main[1]:
                continue
            for s in sorted(studies):
                left.append({"study": s, "what": "trial", "window": w, "why": (
                    f"not connected to {node_labels(ev.vocabulary).get(reference, reference)} in this window (its treatments "
                    f"{', '.join(sorted(nodes))})")})
        if main is None:
            continue
        a = arms[arms["study"].isin(main[1])].assign(time=w)
        c = con[con["study"].isin(main[1])].drop(columns=["trial"]).assign(time=w)
        arms_out.append(a)
        con_out.append(c)
    arms_all = pd.concat(arms_out, ignore_index=True) if arms_out else pd.DataFrame(
        columns=["study", "treatment", "estimate", "variance", "n", "time"])
    con_all = pd.concat(con_out, ignore_index=True) if con_out else pd.DataFrame(
        columns=["study", "treat1", "treat2", "yi", "se", "n1", "n2", "time"])
    return arms_all, con_all, reference, left


def analyse_network_over_time(ev: Evidence, outcome: str, config: A.AnalysisConfig | None = None,
                              frame: pd.DataFrame | None = None, method: str = "REML",
                              rho_within: float | None = None) -> NetworkTimeAnalysis:
    """The network of one outcome over all windows in one model: each care's effect against the reference in each
    window, and how it changes from the first window to the last, with a trial's repeated time points correlated
    (``rho_within``: the short-vs-long analysis's assumed correlation unless given)."""
    config = config or A.load_config()
    arms, con, reference, left = network_over_time_input(ev, outcome, config, frame)
    if arms.empty and con.empty:
        return NetworkTimeAnalysis(outcome, None, tuple(left), "no trial")
    times = [w.name for w in config.windows if (arms["time"] == w.name).any() or (con["time"] == w.name).any()]
    data, extra = (arms, con if len(con) else None) if len(arms) else (con, None)
    rho = config.correlation if rho_within is None else rho_within
    try:
        res = NT.network_over_time(data, contrasts=extra, time="time", reference=reference, method=method,
                                   rho_within=rho, times=times)
    except N.NetworkInputError as err:
        return NetworkTimeAnalysis(outcome, None, tuple(left), str(err))
    return NetworkTimeAnalysis(outcome, res, tuple(left))


def durability_context(na: NetworkTimeAnalysis, digits: int = 1) -> dict:
    """The joint model's answer to "does the effect fade?" for one outcome, as context beside a claim about
    durability (certainty not rated; never part of a verdict): each care's change from the first window to the
    last against the reference, positive when the difference moves up (for a benefit, toward none)."""
    base = {"analysis": "network over time (context only, certainty not rated)", "outcome": na.outcome}
    if not na.fitted:
        return {**base, "changes": [], "not_estimated_because": na.reason or "no network",
                "text": f"Network over time, {na.outcome}: not estimated ({na.reason or 'no network'})."}
    r = na.result
    ch = r.changes()
    if ch.empty:
        return {**base, "changes": [], "not_estimated_because": "no care is compared at both the first and last time",
                "text": f"Network over time, {na.outcome}: no care is compared with "
                        f"{NODE_LABELS.get(r.reference, r.reference)} both at {r.times[0]} and at {r.times[-1]}."}
    parts = [f"{NODE_LABELS.get(x.treatment, x.treatment)} {x.estimate:+.{digits}f} ({x.ci_low:.{digits}f} to "
             f"{x.ci_high:.{digits}f})" for x in ch.itertuples()]
    rho = "" if not np.isfinite(r.rho_between) else f"; trials' effects correlate over time by {r.rho_between:.2f}"
    text = (f"Network over time ({r.k} trials, one model, certainty not rated), {na.outcome}: change of each care's "
            f"difference from {NODE_LABELS.get(r.reference, r.reference)} between {r.times[0]} and {r.times[-1]} "
            f"term, points on 0-100 (positive: a benefit shrinks): " + "; ".join(parts)
            + f"{rho} (estimated), within-trial correlation {r.rho_within:g} (assumed).")
    return {**base, "reference": r.reference, "from": r.times[0], "to": r.times[-1], "k": r.k,
            "tau2_study": r.tau2_study, "tau2_time": r.tau2_time, "rho_within": r.rho_within,
            "changes": [{"treatment": x.treatment, "estimate": x.estimate, "ci_low": x.ci_low, "ci_high": x.ci_high,
                         "p": x.p} for x in ch.itertuples()], "text": text}

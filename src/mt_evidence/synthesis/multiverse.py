"""The multiverse: every defensible combination of analysis choices, run at once (docs/methods.md section 19).

:func:`multiverse` takes a comparison frame (:func:`~mt_evidence.synthesis.analysis.comparison_frame`) and, for
every comparison x outcome x window, re-selects each trial's row and re-pools under every combination of:

* ``estimator``: the tau² estimator (REML, DL, PM);
* ``ci``: the confidence interval (``hksj_adhoc``, ``hksj``, ``z``);
* ``timepoint``: the time point within the window (``closest`` to the target, ``earliest``, ``latest``);
* ``instrument``: ``preferred`` (first of the preference list) or ``last`` (last available);
* ``risk_of_bias``: ``all``, ``no_high`` (trials at high risk left out), ``low_only``;
* ``derived``: ``in`` or ``out`` (rows that needed a derived value or an assumed range);
* ``adjusted``: ``in`` or ``unadjusted_only``;
* ``control``: ``all``, or each control type alone (comparisons against several control types).

Filters act before the choice of time point and instrument. The rule for few trials holds in every combination
(one trial: its result; two: common effect, z), and each distinct set of trials is pooled once per model, in
batches (:func:`~mt_evidence.stats.pooling.pool_many`). :func:`multiverse_summary` says, per analysis, how many
combinations agree with the plan's size category, and the range of their estimates.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass

import numpy as np
import pandas as pd

from ..stats.distributed import require_dask
from ..stats.pooling import pool_many
from ..stats.progress import progress_reporter
from . import analysis as A
from . import grade

__all__ = ["CHOICES", "MultiverseResult", "multiverse", "multiverse_summary", "write_multiverse"]

#: every choice and its values (the plan's first, except the estimator and CI, which follow the settings)
CHOICES: dict[str, tuple[str, ...]] = {
    "estimator": ("REML", "DL", "PM"),
    "ci": ("hksj_adhoc", "hksj", "z"),
    "timepoint": ("closest", "earliest", "latest"),
    "instrument": ("preferred", "last"),
    "risk_of_bias": ("all", "no_high", "low_only"),
    "derived": ("in", "out"),
    "adjusted": ("in", "unadjusted_only"),
    "control": ("all",),
}
CI_SETTINGS = {"hksj_adhoc": dict(test="hksj", adhoc=True), "hksj": dict(test="hksj", adhoc=False),
               "z": dict(test="z", adhoc=False)}
DATA_CHOICES = ("timepoint", "instrument", "risk_of_bias", "derived", "adjusted", "control")


@dataclass(frozen=True)
class MultiverseResult:
    """Every specification of every analysis: ``specs`` has one row per comparison x outcome x window x
    combination of choices, with k, the trials, estimate, CI, tau², the size category and ``plan`` (True for the
    plan's own combination)."""

    specs: pd.DataFrame
    plan: dict

    def of(self, comparison: str, outcome: str, window: str) -> pd.DataFrame:
        s = self.specs
        return s[(s["comparison"] == comparison) & (s["outcome"] == outcome) & (s["window"] == window)]

    def summary(self) -> pd.DataFrame:
        return multiverse_summary(self)

    def __repr__(self) -> str:
        n = self.specs.groupby(["comparison", "outcome", "window"]).ngroups if len(self.specs) else 0
        return f"MultiverseResult({len(self.specs)} specifications of {n} analyses)"


def plan_choices(config: A.AnalysisConfig) -> dict:
    """The plan's value of every choice (the estimator and CI from the settings)."""
    ci = "z" if config.test == "z" else ("hksj_adhoc" if config.adhoc else "hksj")
    return {"estimator": config.method, "ci": ci, "timepoint": "closest", "instrument": "preferred",
            "risk_of_bias": "all", "derived": "in", "adjusted": "in", "control": "all"}


def _candidates(frame: pd.DataFrame) -> pd.DataFrame:
    """Rows the plan uses, and the rows it passed over for another time point or instrument of the same trial."""
    ok = frame["used"].astype(bool) | (frame["why_not"] == A.OTHER_POINT_USED)
    c = frame.loc[ok & frame["window"].notna()].copy()
    return c[np.isfinite(c["yi"].to_numpy(float)) & np.isfinite(c["vi"].to_numpy(float))]


def _select(g: pd.DataFrame, keys: dict, mask: np.ndarray, spec: dict) -> tuple[int, ...]:
    """Row labels of one row per trial under ``spec`` (filters first, then instrument and time point)."""
    if not mask.any():
        return ()
    inst = keys["irank"] if spec["instrument"] == "preferred" else -keys["irank"]
    tp = keys["tp"]
    time = {"closest": (keys["dist"], -tp), "earliest": (tp, tp), "latest": (-tp, -tp)}[spec["timepoint"]]
    # lexsort: last key is primary -> trial, rows giving both MD and SMD first (as the plan), instrument, time
    order = np.lexsort((time[1], time[0], inst, keys["nboth"], keys["trial"]))
    order = order[mask[order]]
    trials = keys["trial"][order]
    first = np.ones(len(order), dtype=bool)
    first[1:] = trials[1:] != trials[:-1]
    return tuple(sorted(int(i) for i in g.index.to_numpy()[order[first]]))


def multiverse(frame: pd.DataFrame, config: A.AnalysisConfig | None = None, *, measure: str = "md100",
               analyses: list[tuple[str, str, str]] | None = None, choices: dict | None = None,
               progress=False, chunk_rows: int | None = None) -> MultiverseResult:
    """Run every combination of analysis choices (module docstring) for each comparison x outcome x window.

    ``frame``: a comparison frame on ``measure`` (its ``yi``/``vi``); ``analyses``: (comparison, outcome, window)
    triples to run (default: every one with a used row; "any control" views left out); ``choices``: replace the
    values of some choices (e.g. ``{"estimator": ("REML", "DL")}``); ``progress``: True for a progress bar, or a
    callable ``(done, total)`` (analyses assembled, then model batches pooled); ``chunk_rows``: pool each model's
    batch as a dask array of that many sets of trials per chunk, one task per chunk, on the active
    ``dask.distributed`` client when there is one (needs the ``dask`` extra; the numbers are the same to the bit).
    Returns a :class:`MultiverseResult`.
    """
    if chunk_rows is not None and (not isinstance(chunk_rows, int) or chunk_rows < 1):
        raise ValueError(f"chunk_rows must be a positive whole number of sets per dask chunk; got {chunk_rows!r}")
    if chunk_rows is not None:
        require_dask("multiverse(chunk_rows=)")
    config = config or A.load_config()
    plan = plan_choices(config)
    ch = {k: tuple(v) for k, v in CHOICES.items()}
    ch.update({k: tuple(v) for k, v in (choices or {}).items()})
    unknown = set(ch) - set(CHOICES)
    if unknown:
        raise ValueError(f"unknown choice(s) {sorted(unknown)}; the choices are {', '.join(CHOICES)}")
    for k in ("estimator", "ci"):
        if plan[k] not in ch[k]:
            ch[k] = (plan[k],) + ch[k]
    bad_ci = set(ch["ci"]) - set(CI_SETTINGS)
    if bad_ci:
        raise ValueError(f"ci must be among {', '.join(CI_SETTINGS)}; got {sorted(bad_ci)}")
    cand = _candidates(frame)
    used = frame.loc[frame["used"].astype(bool)]
    if analyses is None:
        views = set(A.ANY_CONTROL_VIEWS) | set(frame.attrs.get("views", ()))
        analyses = sorted({(c, o, w) for c, o, w in zip(used["comparison"], used["outcome"], used["window"])
                           if c not in views and isinstance(w, str)})
    models = len(ch["estimator"]) * len(ch["ci"]) + 1  # at most: each model, and the common effect below 3 trials
    with progress_reporter(progress, len(analyses) + models, "multiverse: analyses, then models") as advance:
        spec_rows, jobs = _specifications(cand, analyses, ch, choices, config, measure, advance)
        results = _pool_jobs(cand, jobs, config, advance, chunk_rows)
        advance(models - len({m for _, m in jobs}))  # models no analysis needed
    return _result(cand, spec_rows, results, plan)


def _specifications(cand: pd.DataFrame, analyses, ch: dict, choices, config: A.AnalysisConfig, measure: str,
                    advance) -> tuple[list[dict], set]:
    """Every (analysis, combination) with its selected rows and model; the distinct (rows, model) to pool."""
    targets = {w.name: w.target for w in config.windows}
    jobs: set[tuple] = set()  # (row labels, model): each pooled once
    spec_rows: list[dict] = []
    for comp, outcome, window in analyses:
        advance(1)
        g = cand[(cand["comparison"] == comp) & (cand["outcome"] == outcome) & (cand["window"] == window)]
        if g.empty:
            continue
        tp = g["timepoint_weeks"].to_numpy(float)
        both = (np.isfinite(g["md100"].to_numpy(float)) & np.isfinite(g["smd"].to_numpy(float)))
        keys = {"trial": g["study_id"].to_numpy(object).astype(str), "tp": tp,
                "dist": np.abs(tp - targets.get(window, 0.0)), "nboth": np.where(both, 0, 1),
                "irank": np.array([A.instrument_rank(outcome, i, config) for i in g["instrument"]], float)}
        rob = g["rob_overall"].fillna("not assessed").to_numpy(object)
        masks = {
            ("risk_of_bias", "all"): np.ones(len(g), bool), ("risk_of_bias", "no_high"): rob != "high",
            ("risk_of_bias", "low_only"): rob == "low",
            ("derived", "in"): np.ones(len(g), bool), ("derived", "out"): ~g["derived"].astype(bool).to_numpy(),
            ("adjusted", "in"): np.ones(len(g), bool),
            ("adjusted", "unadjusted_only"): ~g["adjusted"].astype(bool).to_numpy(),
        }
        controls = sorted({x for v in g["control_type"].fillna("") for x in str(v).split("+") if x})
        if choices and "control" in choices:
            ctrl_values = ch["control"]
        else:  # each control type alone, where the comparison has several
            ctrl_values = ("all",) + (tuple(controls) if len(controls) > 1 else ())
        threshold = config.important_difference.get(outcome) if measure == "md100" else None
        data_values = [ch[k] if k != "control" else ctrl_values for k in DATA_CHOICES]
        for combo in itertools.product(*data_values):
            spec = dict(zip(DATA_CHOICES, combo))
            mask = masks[("risk_of_bias", spec["risk_of_bias"])] & masks[("derived", spec["derived"])] \
                & masks[("adjusted", spec["adjusted"])]
            if spec["control"] != "all":
                mask = mask & (g["control_type"].fillna("").to_numpy(object) == spec["control"])
            rows = _select(g, keys, mask, spec)
            for est, ci in itertools.product(ch["estimator"], ch["ci"]):
                model = (est, ci) if len(rows) >= config.min_k_random else ("FE", "z")
                spec_rows.append({"comparison": comp, "outcome": outcome, "window": window, "estimator": est,
                                  "ci": ci, **spec, "k": len(rows), "_rows": rows, "_model": model,
                                  "_threshold": threshold})
                if rows:
                    jobs.add((rows, model))
    return spec_rows, jobs


def _result(cand: pd.DataFrame, spec_rows: list[dict], results: dict, plan: dict) -> MultiverseResult:
    out = []
    for r in spec_rows:
        res = results.get((r["_rows"], r["_model"]))
        est, lo, hi, tau2 = res if res is not None else (np.nan,) * 4
        trials = sorted({cand.at[j, "study_id"] for j in r["_rows"]})
        is_plan = all(r[k] == plan[k] for k in CHOICES)
        out.append({**{k: v for k, v in r.items() if not k.startswith("_")},
                    "model": "no trial" if not r["_rows"] else ("common effect, z" if r["_model"] == ("FE", "z")
                                                               else f"{r['_model'][0]}, {r['_model'][1]}"),
                    "estimate": est, "ci_low": lo, "ci_high": hi, "tau2": tau2,
                    "category": (grade.size_category(est, lo, hi, r["_threshold"]) if r["_rows"] else ""),
                    "studies": ", ".join(trials), "plan": is_plan})
    cols = (["comparison", "outcome", "window"] + list(CHOICES) + ["k", "model", "estimate", "ci_low", "ci_high",
                                                                   "tau2", "category", "studies", "plan"])
    return MultiverseResult(pd.DataFrame(out, columns=cols), plan)


def _pool_jobs(cand: pd.DataFrame, jobs: set, config: A.AnalysisConfig, advance=lambda n: None,
               chunk_rows: int | None = None) -> dict:
    """Pool every distinct (set of rows, model) once, batched by model with :func:`pool_many`."""
    by_model: dict[tuple, list[tuple]] = {}
    for rows, model in jobs:
        by_model.setdefault(model, []).append(rows)
    yi, vi = cand["yi"].to_numpy(float), cand["vi"].to_numpy(float)
    pos = {label: i for i, label in enumerate(cand.index)}
    out = {}
    for model, sets in sorted(by_model.items()):
        width = max(len(s) for s in sets)
        Y = np.full((len(sets), width), np.nan)
        V = np.full((len(sets), width), np.nan)
        for r, s in enumerate(sets):
            idx = [pos[j] for j in s]
            Y[r, :len(idx)] = yi[idx]
            V[r, :len(idx)] = vi[idx]
        est, ci = model
        kw = dict(method="FE", test="z") if model == ("FE", "z") else dict(method=est, **CI_SETTINGS[ci])
        if chunk_rows is not None:  # one dask task per chunk of sets (memory bounded by the chunk)
            import dask.array as da

            Y, V = (da.from_array(x, chunks=(chunk_rows, x.shape[1])) for x in (Y, V))
        res = pool_many(Y, V, pi_type=config.pi_type, tau2_ci=False, **kw)
        for r, s in enumerate(sets):
            out[(s, model)] = (float(res.estimate[r]), float(res.ci_low[r]), float(res.ci_high[r]),
                               float(res.tau2[r]))
        advance(1)
    return out


def multiverse_summary(result: MultiverseResult) -> pd.DataFrame:
    """Per analysis: the plan's estimate and size category, the number of combinations with at least one trial,
    how many give the plan's category, the range of their estimates, and ``flips`` (any combination disagrees)."""
    rows = []
    s = result.specs
    for (comp, outcome, window), g in s.groupby(["comparison", "outcome", "window"], sort=False):
        plan = g[g["plan"]]
        run = g[g["k"] > 0]
        if plan.empty or run.empty:
            continue
        p = plan.iloc[0]
        same = int((run["category"] == p["category"]).sum())
        other = run.loc[run["category"] != p["category"], "category"].value_counts()
        rows.append({"comparison": comp, "outcome": outcome, "window": window, "plan_estimate": p["estimate"],
                     "plan_category": p["category"], "n_specs": len(run), "n_same": same,
                     "share_same": same / len(run), "estimate_min": run["estimate"].min(),
                     "estimate_max": run["estimate"].max(), "flips": same < len(run),
                     "other_categories": "; ".join(f"{c} ({n})" for c, n in other.items())})
    return pd.DataFrame(rows)


#: the command that owns folders written by :func:`write_multiverse`
WRITER = "multiverse"


def write_multiverse(result: MultiverseResult, out_dir, *, protected=()) -> dict[str, int]:
    """Write ``multiverse.csv`` (every specification) and ``multiverse_summary.csv`` (one row per analysis) to
    ``out_dir``, all or nothing, replacing only a folder this function wrote (or a new or empty one). Returns the
    rows written per file."""
    from ..evidence import atomic
    from ..evidence.export import csv_bytes

    summary = result.summary()
    files = {"multiverse.csv": csv_bytes(result.specs), "multiverse_summary.csv": csv_bytes(summary)}
    atomic.replace_owned_folder(out_dir, files, WRITER, protected=protected)
    return {"multiverse.csv": len(result.specs), "multiverse_summary.csv": len(summary)}

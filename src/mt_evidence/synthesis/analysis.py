"""Comparisons by follow-up window, and whether effects fade or grow from short to long term.

The flow: :func:`comparison_frame` assembles one effect per trial x comparison x outcome x window (a tidy
frame a test can check) -> :func:`pool_windows` pools each comparison x outcome x window ->
:func:`short_vs_long` estimates the change from short to long term within trials.

Rules (all stated, all configurable in ``data/analysis.toml``):

* **Comparisons** (docs/methods.md section 1). manual therapy vs exercise; combined vs exercise (what manual
  therapy adds to exercise); combined vs manual therapy (what exercise adds); manual therapy, exercise and
  combined each vs sham (the specific effect) and vs a pragmatic control (usual care, advice or wait list),
  kept apart; "... vs control" pools every control type as a labelled view only (``ANY_CONTROL_VIEWS``).
* **Multi-arm trials.** Arms of the same category on one side (two manual-therapy arms against one control)
  are combined into one group with the Cochrane Handbook formula (Table 6.5.a) when their SDs are known, so
  the shared arm is never counted twice; when they cannot be combined, or when only between-group contrasts are
  printed, the comparison with the largest first group is kept and the others are listed as not used.
* **One time point per trial per window:** the one closest to the window's target (ties: the later one).
* **One instrument per trial per outcome:** the first in the configured preference list.
* **Arm-level data first**; a printed between-group contrast is used when the arms are not available.
* **Effect scale:** ``md100`` (mean difference on 0-100, clinicians read points) or ``smd`` (Hedges' g).
  Negative favours the first-named care.
"""

from __future__ import annotations

import copy
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from ..evidence.build import arm_spread, contrast_se, difference_to_100, intervention_rank, orient
from ..evidence.io import Evidence
from ..evidence.tomlfile import read_toml
from ..evidence.windows import Window
from ..stats.effects import combine_arms, effect_size
from ..stats.pooling import PoolResult, pool

CONTROLS = ("usual_care", "advice", "sham", "wait_list")
SHAM = ("sham",)
PRAGMATIC = ("usual_care", "advice", "wait_list")
COMPARISONS: dict[str, tuple[str, tuple[str, ...]]] = {
    "manual_therapy_vs_exercise": ("manual_therapy", ("exercise",)),
    "combined_vs_exercise": ("combined", ("exercise",)),
    "combined_vs_manual_therapy": ("combined", ("manual_therapy",)),
    "manual_therapy_vs_sham": ("manual_therapy", SHAM),
    "manual_therapy_vs_pragmatic": ("manual_therapy", PRAGMATIC),
    "exercise_vs_sham": ("exercise", SHAM),
    "exercise_vs_pragmatic": ("exercise", PRAGMATIC),
    "combined_vs_sham": ("combined", SHAM),
    "combined_vs_pragmatic": ("combined", PRAGMATIC),
    "manual_therapy_vs_control": ("manual_therapy", CONTROLS),
    "exercise_vs_control": ("exercise", CONTROLS),
    "combined_vs_control": ("combined", CONTROLS),
    # within-trial dose contrasts: arms relabelled by synthesis.dose (docs/methods.md section 14)
    "more_vs_fewer_sessions": ("more_sessions", ("fewer_sessions",)),
}
#: "any control" pools: sham and pragmatic controls answer different questions (docs/methods.md section 1), so
#: these are labelled views shown with the test for subgroup differences by control type, never used for a verdict
ANY_CONTROL_VIEWS = ("manual_therapy_vs_control", "exercise_vs_control", "combined_vs_control")
# comparisons between techniques within manual therapy: (technique of the first side, of the second side)
TECHNIQUE_COMPARISONS: dict[str, tuple[str, str]] = {
    "manipulation_vs_mobilisation": ("manipulation", "mobilisation"),
}
ALL_COMPARISONS: tuple[str, ...] = tuple(COMPARISONS) + tuple(TECHNIQUE_COMPARISONS)
PRAGMATIC_LABEL = "usual care, advice or wait list"
COMPARISON_LABELS = {
    "manipulation_vs_mobilisation": ("spinal manipulation (thrust)", "mobilisation"),
    "manual_therapy_vs_exercise": ("manual therapy", "exercise"),
    "combined_vs_exercise": ("manual therapy + exercise", "exercise"),
    "combined_vs_manual_therapy": ("manual therapy + exercise", "manual therapy"),
    "manual_therapy_vs_sham": ("manual therapy", "sham"),
    "manual_therapy_vs_pragmatic": ("manual therapy", PRAGMATIC_LABEL),
    "exercise_vs_sham": ("exercise", "sham"),
    "exercise_vs_pragmatic": ("exercise", PRAGMATIC_LABEL),
    "combined_vs_sham": ("manual therapy + exercise", "sham"),
    "combined_vs_pragmatic": ("manual therapy + exercise", PRAGMATIC_LABEL),
    "manual_therapy_vs_control": ("manual therapy", "any control (labelled view)"),
    "exercise_vs_control": ("exercise", "any control (labelled view)"),
    "combined_vs_control": ("manual therapy + exercise", "any control (labelled view)"),
    "more_vs_fewer_sessions": ("more sessions of manual therapy", "fewer sessions"),
}


@dataclass(frozen=True)
class RangeRule:
    """An instrument whose version, and so range, is in doubt when a trial does not say (docs/methods.md
    section 3): rows whose instrument matches ``pattern`` (a case-insensitive regular expression) and whose range
    is empty enter on ``ranges[0]``; the sensitivity analyses use each other range in turn."""

    pattern: str
    ranges: tuple[tuple[float, float], ...]
    source: str = ""

    def matches(self, instrument) -> bool:
        import re

        return isinstance(instrument, str) and re.search(self.pattern, instrument, flags=re.IGNORECASE) is not None

    @staticmethod
    def label(rng: tuple[float, float]) -> str:
        return f"{rng[0]:g}-{rng[1]:g}"


@dataclass(frozen=True)
class AnalysisConfig:
    """The analysis settings (``data/analysis.toml``; the rules are in ``docs/methods.md``).

    ``important_difference``: between-group important differences on 0-100 per outcome, used for statements,
    imprecision and verdicts. ``mic``: within-person minimal important change, shown for orientation only.
    """

    windows: tuple[Window, ...]
    instruments: dict[str, list[str]]
    important_difference: dict[str, float]
    important_difference_source: str
    correlation: float
    sensitivity: tuple[float, ...]
    method: str = "REML"
    test: str = "hksj"
    pi_type: str = "riley"
    adhoc: bool = False
    min_k_random: int = 3
    mic: dict[str, float] = field(default_factory=dict)
    mic_source: str = ""
    source: str = "default"
    range_in_doubt: tuple[RangeRule, ...] = ()

    def range_rule(self, instrument) -> RangeRule | None:
        """The rule for an instrument whose range is in doubt, if any (first match)."""
        return next((r for r in self.range_in_doubt if r.matches(instrument)), None)

    @property
    def thresholds(self) -> dict[str, float]:
        """The between-group important differences (the thresholds every judgement uses)."""
        return self.important_difference

    @property
    def threshold_source(self) -> str:
        return self.important_difference_source

    def window(self, name: str) -> Window:
        for w in self.windows:
            if w.name == name:
                return w
        raise KeyError(f"no window named {name!r}; windows are {[w.name for w in self.windows]}")

    def describe(self) -> str:
        ws = "; ".join(f"{w.name}: {w.label} (target {w.target:g} weeks)" for w in self.windows)
        return (f"windows: {ws}. Pooling: {self.method}, {self.test} from {self.min_k_random} trials (fewer: "
                "common effect, z). Important difference between groups (0-100): "
                + ", ".join(f"{k} {v:g}" for k, v in self.important_difference.items())
                + f" ({self.important_difference_source}).")


def _threshold_table(spec: dict, name: str, source: str) -> tuple[dict[str, float], str]:
    table = dict(spec[name])
    src = str(table.pop("source", ""))
    out = {}
    for k, v in table.items():
        x = float(v)
        if not np.isfinite(x) or x <= 0:
            raise ValueError(f"{source}: [{name}] {k} = {v!r}; expected a positive number of points on 0-100")
        out[k] = x
    return out, src


SETTINGS_KEYS = {
    "windows": None, "instruments": None, "important_difference": None, "minimal_important_change": None,
    "short_vs_long": {"correlation", "sensitivity"},
    "pooling": {"method", "test", "adhoc", "pi_type", "min_k_random"},
    "report": {"claims", "overrides"},
    "range_in_doubt": None,
}
RANGE_KEYS = ("pattern", "ranges", "source")
WINDOW_KEYS = ("name", "label", "lower", "upper", "include_lower", "include_upper", "target")
POOLING_CHOICES = {"method": ("REML", "ML", "DL", "HE", "HS", "SJ", "PM", "EB", "FE"), "test": ("hksj", "z", "t"),
                   "pi_type": ("riley", "t", "default", "simple")}


def settings_problems(spec: dict, source: str) -> list[str]:
    """Every problem in a settings file: unknown keys (a misspelt key would silently keep the default), wrong
    types and values out of range, each naming the key and what is allowed."""
    out = []
    for key, value in spec.items():
        if key not in SETTINGS_KEYS:
            out.append(f"unknown table or key [{key}] (known: {', '.join(SETTINGS_KEYS)})")
            continue
        allowed = SETTINGS_KEYS[key]
        if allowed is not None:
            if not isinstance(value, dict):
                out.append(f"[{key}] must be a table")
                continue
            for k in value:
                if k not in allowed:
                    out.append(f"unknown key {k!r} in [{key}] (known: {', '.join(sorted(allowed))})")
    windows = spec.get("windows", [])
    if not isinstance(windows, list) or not windows:
        out.append("[[windows]]: at least one window is needed")
        windows = []
    names = []
    for i, w in enumerate(windows, start=1):
        if not isinstance(w, dict):
            out.append(f"[[windows]] {i}: must be a table")
            continue
        for k in w:
            if k not in WINDOW_KEYS:
                out.append(f"[[windows]] {i}: unknown key {k!r} (known: {', '.join(WINDOW_KEYS)})")
        for k in WINDOW_KEYS:
            if k not in w:
                out.append(f"[[windows]] {i}: missing {k!r}")
        for k in ("lower", "upper", "target"):
            if k in w and (isinstance(w[k], bool) or not isinstance(w[k], (int, float)) or not np.isfinite(w[k])):
                out.append(f"[[windows]] {i}: {k} = {w[k]!r}; expected a number of weeks")
        for k in ("include_lower", "include_upper"):
            if k in w and not isinstance(w[k], bool):
                out.append(f"[[windows]] {i}: {k} = {w[k]!r}; expected true or false")
        if all(isinstance(w.get(k), (int, float)) for k in ("lower", "upper")) and w["lower"] >= w["upper"]:
            out.append(f"[[windows]] {i}: lower {w['lower']} is not below upper {w['upper']}")
        if "name" in w:
            if w["name"] in names:
                out.append(f"[[windows]] {i}: a second window named {w['name']!r} (each name once)")
            names.append(w["name"])
    pooling = spec.get("pooling", {}) if isinstance(spec.get("pooling", {}), dict) else {}
    for k, choices in POOLING_CHOICES.items():
        if k in pooling and pooling[k] not in choices:
            out.append(f"[pooling] {k} = {pooling[k]!r}; expected one of {', '.join(choices)}")
    if "adhoc" in pooling and not isinstance(pooling["adhoc"], bool):
        out.append(f"[pooling] adhoc = {pooling['adhoc']!r}; expected true or false")
    if "min_k_random" in pooling and (isinstance(pooling["min_k_random"], bool)
                                      or not isinstance(pooling["min_k_random"], int)):
        out.append(f"[pooling] min_k_random = {pooling['min_k_random']!r}; expected a whole number, 3 or more")
    svl = spec.get("short_vs_long", {}) if isinstance(spec.get("short_vs_long", {}), dict) else {}
    rs = [("correlation", svl["correlation"])] if "correlation" in svl else []
    rs += [("sensitivity", x) for x in svl.get("sensitivity", [])] if isinstance(svl.get("sensitivity", []), list) \
        else [("sensitivity", svl.get("sensitivity"))]
    for k, r in rs:
        if isinstance(r, bool) or not isinstance(r, (int, float)) or not (-1 <= r <= 1):
            out.append(f"[short_vs_long] {k} = {r!r}; expected a correlation between -1 and 1")
    out += _range_problems(spec.get("range_in_doubt", []))
    for table in ("important_difference", "minimal_important_change"):
        t = spec.get(table, {})
        if isinstance(t, dict):
            for k, v in t.items():
                if k == "source":
                    continue
                if isinstance(v, bool) or not isinstance(v, (int, float)) or not np.isfinite(v) or v <= 0:
                    out.append(f"[{table}] {k} = {v!r}; expected a positive number of points on 0-100")
    return out


def _range_problems(rules) -> list[str]:
    import re

    if not isinstance(rules, list):
        return ["[[range_in_doubt]] must be an array of tables ([[range_in_doubt]] entries)"]
    out = []
    for i, r in enumerate(rules, start=1):
        where = f"[[range_in_doubt]] {i}"
        if not isinstance(r, dict):
            out.append(f"{where}: must be a table")
            continue
        out += [f"{where}: unknown key {k!r} (known: {', '.join(RANGE_KEYS)})" for k in r if k not in RANGE_KEYS]
        out += [f"{where}: missing {k!r}" for k in ("pattern", "ranges", "source") if k not in r]
        if "pattern" in r:
            try:
                re.compile(str(r["pattern"]))
            except re.error as exc:
                out.append(f"{where}: pattern {r['pattern']!r} is not a regular expression ({exc})")
        rngs = r.get("ranges", [])
        ok = isinstance(rngs, list) and len(rngs) >= 2 and all(
            isinstance(x, list) and len(x) == 2 and all(isinstance(v, (int, float)) and not isinstance(v, bool)
                                                       for v in x) and x[0] < x[1] for x in rngs)
        if "ranges" in r and not ok:
            out.append(f"{where}: ranges = {rngs!r}; expected two or more [low, high] pairs with low < high, the "
                       "range used in the analysis first, e.g. [[0, 24], [0, 23]]")
        if "source" in r and not str(r["source"]).strip():
            out.append(f"{where}: source is empty; cite where each range is printed")
    return out


def load_config(path: str | Path | None = None) -> AnalysisConfig:
    """Read an analysis configuration (TOML); ``None`` gives the default shipped with the package.

    Every problem in the file (unknown keys, wrong types, values out of range, two windows of one name) is
    reported at once as a ValueError naming the file and the key."""
    spec, source = read_toml(path, "analysis.toml")
    if "thresholds" in spec and "important_difference" not in spec:
        raise ValueError(f"{source}: [thresholds] is now two tables: [important_difference] (between groups, used "
                         "for every judgement) and [minimal_important_change] (within a patient, for orientation); "
                         "see the default analysis.toml")
    problems = settings_problems(spec, source)
    if problems:
        raise ValueError(f"{source}: {len(problems)} problem(s) in the settings:\n" + "\n".join(
            f"  - {p}" for p in problems) + "\nSee the default settings: src/mt_evidence/data/analysis.toml")
    try:
        windows = tuple(Window(**w) for w in spec["windows"])
        idiff, isrc = _threshold_table(spec, "important_difference", source)
        mic, msrc = _threshold_table(spec, "minimal_important_change", source) \
            if "minimal_important_change" in spec else ({}, "")
        pooling = spec.get("pooling", {})
        svl = spec.get("short_vs_long", {})
        min_k = int(pooling.get("min_k_random", 3))
        if min_k < 3:
            raise ValueError(f"{source}: [pooling] min_k_random = {min_k}; expected 3 or more (a random-effects "
                             "interval from one or two trials is not usable; docs/methods.md section 5)")
        return AnalysisConfig(
            windows=windows,
            instruments={k: list(v) for k, v in spec.get("instruments", {}).items()},
            important_difference=idiff,
            important_difference_source=isrc,
            correlation=float(svl.get("correlation", 0.5)),
            sensitivity=tuple(float(x) for x in svl.get("sensitivity", (0.0, 0.5, 0.9))),
            method=pooling.get("method", "REML"),
            test=pooling.get("test", "hksj"),
            pi_type=pooling.get("pi_type", "riley"),
            adhoc=bool(pooling.get("adhoc", False)),
            min_k_random=min_k,
            mic=mic,
            mic_source=msrc,
            source=source,
            range_in_doubt=tuple(RangeRule(str(r["pattern"]), tuple((float(a), float(b)) for a, b in r["ranges"]),
                                           str(r["source"])) for r in spec.get("range_in_doubt", [])),
        )
    except (KeyError, TypeError) as exc:
        raise ValueError(f"{source}: missing or malformed setting ({exc}); see the default analysis.toml") from None


def trial_count(study_ids) -> int:
    """Distinct trials among pooled rows: a multi-arm trial split into "trial (arm)" rows counts once."""
    return len({str(s).split(" (")[0] for s in study_ids})


FEW_TRIALS_NOTES = {
    1: "one trial: its own result (no pooling, no heterogeneity, no prediction interval)",
    2: "two trials: common-effect estimate with a z interval, because between-trial variation cannot be estimated "
       "from two trials (a t interval on 1 degree of freedom would be unusably wide); if the trials differ, the "
       "interval is too narrow",
}


def pool_analysis(yi, vi, labels, config: AnalysisConfig | None = None, **pool_kw) -> PoolResult:
    """Pool one analysis by the plan's rule for few trials (docs/methods.md section 5).

    k = 1: the trial's own difference and normal 95% CI; k = 2 (fewer than ``min_k_random``): common effect,
    z interval, with the caveat in ``notes``; from ``min_k_random`` (3) trials: the configured random-effects
    model (REML, Hartung-Knapp-Sidik-Jonkman). No prediction interval below 3 trials; from 3, t on k - 2 df
    (``pi_type="riley"``, Higgins 2009). ``pool_kw`` overrides the random-effects settings (sensitivity
    analyses). Validated against metafor: ``rma(method="FE")`` and ``rma(method="REML", test="knha")``.
    """
    import dataclasses

    config = config or load_config()
    yi, vi = np.asarray(yi, float), np.asarray(vi, float)
    k = len(yi)
    if k < config.min_k_random:
        r = pool(yi, vi, labels=labels, method="FE", test="z", pi_type=config.pi_type)
        note = FEW_TRIALS_NOTES.get(k, FEW_TRIALS_NOTES[2].replace("two trials", f"{k} trials"))
        return dataclasses.replace(r, pi_low=float("nan"), pi_high=float("nan"), notes=r.notes + (note,))
    kw = dict(method=config.method, test=config.test, pi_type=config.pi_type)
    kw.update(pool_kw)
    if kw["test"] in ("hksj", "knha") and "adhoc" not in pool_kw:
        kw["adhoc"] = config.adhoc
    return pool(yi, vi, labels=labels, **kw)


# ------------------------------------------------------------------------------------------ assembling


#: why a row is not used when another time point or instrument of its trial is (a candidate of the multiverse)
OTHER_POINT_USED = "another time point or instrument of this trial is used in this window"


def instrument_rank(outcome: str, instrument: str, config: AnalysisConfig) -> int:
    """Position of an instrument in the outcome's preference list (``[instruments]``; unlisted ones last)."""
    return _instrument_rank(outcome, instrument, config)


def _instrument_rank(outcome: str, instrument: str, config: AnalysisConfig) -> int:
    prefs = config.instruments.get(outcome, [])
    for i, p in enumerate(prefs):
        if str(instrument).lower().startswith(p.lower()):
            return i
    return len(prefs)


def _side_summary(rows: list[pd.Series]) -> tuple[dict | None, str]:
    """One group from one or more arms of a side: (summary, note)."""
    if len(rows) == 1:
        r = rows[0]
        se, sd, how = arm_spread(r)
        return {"n": r["n"], "mean": r["mean"], "sd": sd, "se": se, "how": how, "arms": [r["arm"]],
                "rows": [int(r.name) + 2]}, ""
    spreads = [arm_spread(r) for r in rows]
    if all(not pd.isna(sd) and not pd.isna(r["n"]) for r, (_, sd, _) in zip(rows, spreads)):
        n, m, sd = rows[0]["n"], rows[0]["mean"], spreads[0][1]
        for r, (_, sdi, _) in zip(rows[1:], spreads[1:]):
            n, m, sd = combine_arms(n, m, sd, r["n"], r["mean"], sdi)
        n, m, sd = float(n), float(m), float(sd)
        hows = sorted({h for _, _, h in spreads if h})
        return ({"n": n, "mean": m, "sd": sd, "se": sd / np.sqrt(n),
                 "how": "; ".join(hows + ["arms combined (Cochrane Handbook Table 6.5.a)"]),
                 "arms": [r["arm"] for r in rows], "rows": [int(r.name) + 2 for r in rows]},
                f"arms {', '.join(r['arm'] for r in rows)} combined")
    best = max(rows, key=lambda r: (-1 if pd.isna(r["n"]) else r["n"]))
    se, sd, how = arm_spread(best)
    return ({"n": best["n"], "mean": best["mean"], "sd": sd, "se": se, "how": how, "arms": [best["arm"]],
             "rows": [int(best.name) + 2]},
            f"arms {', '.join(r['arm'] for r in rows)} could not be combined (SD or n missing); arm {best['arm']} kept")


def _on_100(md: float, se: float, instrument, lo, hi, config: AnalysisConfig) -> dict:
    """A difference and its SE in points on 0-100, from the printed range, or (range empty, instrument in doubt)
    from the first range of its rule (docs/methods.md section 3): then ``range_assumed`` says so and
    ``range_alternatives`` holds, per other range, the factor that rescales the 0-100 difference to it."""
    if not (pd.isna(lo) or pd.isna(hi)):
        return dict(md100=difference_to_100(md, lo, hi), md100_se=difference_to_100(se, lo, hi), range_assumed="",
                    range_alternatives="")
    rule = config.range_rule(instrument)
    if rule is None:
        return dict(md100=np.nan, md100_se=np.nan, range_assumed="", range_alternatives="")
    (a, b), others = rule.ranges[0], rule.ranges[1:]
    return dict(md100=difference_to_100(md, a, b), md100_se=difference_to_100(se, a, b),
                range_assumed=(f"range in doubt, {rule.label((a, b))} assumed ("
                               + ", ".join(rule.label(o) for o in others) + " in the sensitivity analysis)"),
                range_alternatives=";".join(f"{rule.label(o)}={(b - a) / (o[1] - o[0])!r}" for o in others))


def has_technique(value, token: str) -> bool:
    """Whether a ``technique`` cell (tokens separated by ';' or ',') names ``token``."""
    return isinstance(value, str) and token in [t.strip() for t in value.replace(",", ";").split(";")]


def comparisons_of(vocabulary=None) -> dict[str, tuple[str, tuple[str, ...]]]:
    """The comparisons of a vocabulary (docs/methods.md section 18); the package's own for the default."""
    return COMPARISONS if vocabulary is None or vocabulary.is_default else vocabulary.comparison_map()


def controls_of(vocabulary=None) -> tuple[str, ...]:
    return CONTROLS if vocabulary is None or vocabulary.is_default else vocabulary.controls


def comparison_order(vocabulary=None) -> tuple[str, ...]:
    """Every comparison in display order."""
    return ALL_COMPARISONS if vocabulary is None or vocabulary.is_default else tuple(comparisons_of(vocabulary))


def views_of(vocabulary=None) -> tuple[str, ...]:
    """The labelled "any control" views, never used for a verdict."""
    return ANY_CONTROL_VIEWS if vocabulary is None or vocabulary.is_default else vocabulary.views()


def labels_of(comparison: str, vocabulary=None) -> tuple[str, str]:
    """(first, second) labels of a comparison."""
    if vocabulary is not None and not vocabulary.is_default and vocabulary.comparison(comparison) is not None:
        return vocabulary.comparison_labels(comparison)
    return COMPARISON_LABELS.get(comparison, (comparison, ""))


def _sides(g: pd.DataFrame, vocabulary=None):
    """Yield (comparison, first rows, second rows, control types) for every comparison the arms support."""
    rows = [r for _, r in g.iterrows()]
    controls = set(controls_of(vocabulary))
    for comp, (first, seconds) in comparisons_of(vocabulary).items():
        a_rows = [r for r in rows if r["intervention"] == first]
        b_rows = [r for r in rows if r["intervention"] in seconds]
        if a_rows and b_rows:
            yield comp, a_rows, b_rows, (sorted({r["intervention"] for r in b_rows}) if set(seconds) <= controls
                                         else [])
    if vocabulary is not None and not vocabulary.is_default:
        return  # technique comparisons are manual therapy's own (section 1)
    for comp, (t1, t2) in TECHNIQUE_COMPARISONS.items():
        mt = [r for r in rows if r["intervention"] == "manual_therapy"]
        a_rows = [r for r in mt if has_technique(r["technique"], t1) and not has_technique(r["technique"], t2)]
        b_rows = [r for r in mt if has_technique(r["technique"], t2) and not has_technique(r["technique"], t1)]
        if a_rows and b_rows:
            yield comp, a_rows, b_rows, []


def _arm_effects(ev: Evidence, config: AnalysisConfig) -> list[dict]:
    arms = ev.arms.copy()
    arms = arms[(arms["role"].fillna("primary") == "primary") & arms["mean"].notna()]
    arms = arms[arms["timepoint_weeks"].notna() & (arms["timepoint_weeks"] > 0)]
    flip = arms["change_sign"] == "baseline_minus_followup"
    arms.loc[flip, "mean"] = -arms.loc[flip, "mean"]
    arms.loc[flip, ["ci_low", "ci_high"]] = -arms.loc[flip, ["ci_high", "ci_low"]].to_numpy()
    fname = Path(ev.files.get("arms", "arms.csv")).name
    out = []
    keys = ["study_id", "outcome", "instrument", "timepoint_weeks", "value_type", "adjusted"]
    for key, g in arms.groupby(keys, dropna=False, sort=True):
        for comp, a_rows, b_rows, controls in _sides(g, ev.vocabulary):
            a, note_a = _side_summary(a_rows)
            b, note_b = _side_summary(b_rows)
            hiw = bool(a_rows[0]["higher_is_worse"])
            md = orient(a["mean"] - b["mean"], hiw)
            md_se = float(np.sqrt(a["se"] ** 2 + b["se"] ** 2))
            smd = smd_var = np.nan
            adjusted = bool(key[5]) if not pd.isna(key[5]) else False
            sd_rebuilt = any("SD =" in h for h in (a["how"], b["how"]))
            smd_note = ""
            g = g_var = np.nan
            if adjusted and sd_rebuilt:
                smd_note = SMD_NOT_ADJUSTED
            elif not any(pd.isna(x) for x in (a["sd"], b["sd"], a["n"], b["n"])):
                es = effect_size("SMD", m1=[a["mean"]], sd1=[a["sd"]], n1=[a["n"]], m2=[b["mean"]], sd2=[b["sd"]],
                                 n2=[b["n"]])
                g, g_var = orient(float(es["yi"][0]), hiw), float(es["vi"][0])
            # final-value and change-score SMDs are kept apart (docs/methods.md section 3)
            smd_change = smd_change_var = np.nan
            if key[4] == "change":
                smd_change, smd_change_var = g, g_var
                smd_note = smd_note or SMD_NOT_CHANGE
            else:
                smd, smd_var = g, g_var
            r0 = a_rows[0]
            hows = [h for h in (a["how"], b["how"]) if h]
            out.append(dict(
                study_id=key[0], comparison=comp, outcome=key[1], instrument=key[2], timepoint_weeks=key[3],
                value_type=key[4], adjusted=bool(key[5]) if not pd.isna(key[5]) else False,
                control_type="+".join(controls) if controls else "",
                technique1=";".join(sorted({str(r["technique"]) for r in a_rows if r["technique"]})),
                technique2=";".join(sorted({str(r["technique"]) for r in b_rows if r["technique"]})),
                arm1="+".join(a["arms"]), arm2="+".join(b["arms"]), n1=a["n"], n2=b["n"],
                md=md, md_se=md_se, **_on_100(md, md_se, key[2], r0["scale_min"], r0["scale_max"], config),
                smd=smd, smd_var=smd_var, smd_note=smd_note, smd_change=smd_change, smd_change_var=smd_change_var,
                source_kind="arms",
                source_rows=";".join(f"{fname}:{x}" for x in a["rows"] + b["rows"]),
                derived=bool(hows) or any(bool(r["derivation"]) for r in a_rows + b_rows),
                derivation="; ".join(sorted(set(hows))), multiarm_note="; ".join(x for x in (note_a, note_b) if x),
            ))
    return out


SMD_NOT_CHANGE = ("change-from-baseline values: the SMD analyses use final values only (change and final SMDs are "
                  "not pooled together, Cochrane Handbook 10.5.2); they enter the separate change-score SMD analysis")
SMD_NOT_ADJUSTED = ("model-adjusted means without printed SDs: an SD rebuilt from the SE of an adjusted mean is not "
                    "the outcome's SD, so no SMD")
SMD_FROM_CONTRAST = ("SMD from the SE of the difference and the group sizes: SD = SE / sqrt(1/n1 + 1/n2) (Cochrane "
                     "Handbook 6.5.2.3); approximate if the difference was of change scores")


def _contrast_smd(md: float, se: float, n1, n2, adjusted: bool) -> tuple[float, float, str]:
    """Hedges' g of a printed between-group difference (unadjusted, with both group sizes), else NaN and why."""
    if adjusted:
        return np.nan, np.nan, ("a model-adjusted difference: its SE does not give the outcome's SD, so no SMD")
    if pd.isna(n1) or pd.isna(n2) or n1 < 2 or n2 < 2:
        return np.nan, np.nan, "an SMD from a printed difference needs both group sizes"
    sd = se / np.sqrt(1 / n1 + 1 / n2)
    es = effect_size("SMD", m1=[md], sd1=[sd], n1=[n1], m2=[0.0], sd2=[sd], n2=[n2])
    return float(es["yi"][0]), float(es["vi"][0]), SMD_FROM_CONTRAST


def _contrast_effects(ev: Evidence, config: AnalysisConfig) -> list[dict]:
    con = ev.contrasts
    con = con[(con["role"].fillna("primary") == "primary") & (con["estimate_type"] == "MD")
              & (con["direction_stored"] != "not_stated") & con["higher_is_worse"].notna()
              & con["timepoint_weeks"].notna()]
    fname = Path(ev.files.get("contrasts", "contrasts.csv")).name
    arms = ev.arms[ev.arms["n"].notna()]

    def arm_n(study, arm, outcome, week):
        """A contrast without group sizes: the arm's n from the arms table, at the nearest time point."""
        a = arms[(arms["study_id"] == study) & (arms["arm"] == arm)]
        if a.empty or pd.isna(arm):
            return np.nan
        same = a[a["outcome"] == outcome]
        a = same if len(same) else a
        t = a["timepoint_weeks"].fillna(0)
        return float(a.loc[(t - week).abs().idxmin(), "n"])

    out = []
    for i, r in con.iterrows():
        est = r["estimate"] if r["direction_stored"] == "arm1_minus_arm2" else -r["estimate"]
        i1, i2, a1, a2, n1, n2 = r["intervention1"], r["intervention2"], r["arm1"], r["arm2"], r["n1"], r["n2"]
        if pd.isna(n1):
            n1 = arm_n(r["study_id"], a1, r["outcome"], r["timepoint_weeks"])
        if pd.isna(n2):
            n2 = arm_n(r["study_id"], a2, r["outcome"], r["timepoint_weeks"])
        if intervention_rank(i1, ev.vocabulary) > intervention_rank(i2, ev.vocabulary):
            est, i1, i2, a1, a2, n1, n2 = -est, i2, i1, a2, a1, n2, n1
        for comp, (first, seconds) in comparisons_of(ev.vocabulary).items():
            if i1 != first or i2 not in seconds:
                continue
            hiw = bool(r["higher_is_worse"])
            md = orient(est, hiw)
            se, derivation = contrast_se(r)
            if not np.isfinite(se):
                continue
            adjusted = bool(r["adjusted"]) if not pd.isna(r["adjusted"]) else False
            smd, smd_var, smd_note = _contrast_smd(md, se, n1, n2, adjusted)
            out.append(dict(
                study_id=r["study_id"], comparison=comp, outcome=r["outcome"], instrument=r["instrument"],
                timepoint_weeks=r["timepoint_weeks"], value_type="contrast",
                adjusted=bool(r["adjusted"]) if not pd.isna(r["adjusted"]) else False,
                control_type=i2 if set(seconds) <= set(controls_of(ev.vocabulary)) else "", arm1=a1, arm2=a2, n1=n1, n2=n2,
                technique1=(r["technique1"] if i1 == r["intervention1"] else r["technique2"]) or "",
                technique2=(r["technique2"] if i1 == r["intervention1"] else r["technique1"]) or "",
                md=md, md_se=se, **_on_100(md, se, r["instrument"], r["scale_min"], r["scale_max"], config),
                smd=smd, smd_var=smd_var, smd_note=smd_note, smd_change=np.nan, smd_change_var=np.nan,
                source_kind="contrasts", source_rows=f"{fname}:{i + 2}", derived=bool(derivation or r["derivation"]),
                derivation=derivation, multiarm_note="",
            ))
    return out


FRAME_COLUMNS = ["study_id", "comparison", "outcome", "instrument", "timepoint_weeks", "value_type", "adjusted",
                 "control_type", "technique1", "technique2", "arm1", "arm2", "n1", "n2", "md", "md_se", "md100", "md100_se",
                 "range_assumed", "range_alternatives", "smd", "smd_var", "smd_note", "smd_change", "smd_change_var",
                 "source_kind", "source_rows", "derived", "derivation", "multiarm_note", "window", "yi", "vi", "used",
                 "why_not", "population", "rob_overall", "co_intervention_differs"]
MEASURES = ("md100", "smd", "smd_change")
SMD_CHANGE_ONLY = ("final values or a printed difference: the change-score SMD analysis uses change scores only "
                   "(docs/methods.md section 3)")


#: the effect rows and frames of comparison_frame already computed in a ``reuse_frames`` scope, by (evidence,
#: settings) and (evidence, settings, measure)
_FRAME_ROWS: ContextVar[dict | None] = ContextVar("frame_rows", default=None)


@contextmanager
def reuse_frames() -> Iterator[None]:
    """A scope in which ``comparison_frame`` computes the effect rows of one evidence and settings once, and each
    measure's frame once (every caller gets its own copy), however many are asked for: the report asks for them
    eight times, and neither the evidence nor the settings change while it is made. Outside such a scope every
    call computes afresh."""
    token = _FRAME_ROWS.set({})
    try:
        yield
    finally:
        _FRAME_ROWS.reset(token)


def _effect_rows(ev: Evidence, config: AnalysisConfig) -> list[dict]:
    """Every arm-based effect, and every contrast-based one for which no arm-based effect exists."""
    memo = _FRAME_ROWS.get()
    key = (id(ev), id(config))
    if memo is not None and key in memo:
        return list(memo[key][2])
    rows = _arm_effects(ev, config)
    arm_keys = {(r["study_id"], r["comparison"], r["outcome"], r["timepoint_weeks"]) for r in rows}
    for r in _contrast_effects(ev, config):
        if (r["study_id"], r["comparison"], r["outcome"], r["timepoint_weeks"]) not in arm_keys:
            rows.append(r)
    if memo is not None:
        memo[key] = (ev, config, rows)  # (the objects kept, so that their ids stay theirs during the scope)
    return list(rows)


def comparison_frame(ev: Evidence, config: AnalysisConfig | None = None, *, measure: str = "md100") -> pd.DataFrame:
    """One effect per trial x comparison x outcome x window, with every rule applied (see module docstring).

    Columns: study_id, comparison, outcome, window, timepoint_weeks, instrument, yi, vi (on ``measure``),
    md, md_se, md100, md100_se, smd, smd_var, n1, n2, arm1, arm2, control_type, source_kind, source_rows,
    derived, adjusted, population, rob_overall, used (bool) and why_not (reason when not used).
    """
    config = config or load_config()
    if measure not in MEASURES:
        raise ValueError(f"measure must be one of {', '.join(MEASURES)}; got {measure!r}")
    memo = _FRAME_ROWS.get()
    if memo is None:
        return _comparison_frame(ev, config, measure)
    key = ("frame", id(ev), id(config), measure)
    if key not in memo:
        memo[key] = (ev, config, _comparison_frame(ev, config, measure))
    frame = memo[key][2]
    out = frame.copy(deep=True)  # each caller may change its own copy
    out.attrs = copy.deepcopy(frame.attrs)
    return out


def _comparison_frame(ev: Evidence, config: AnalysisConfig, measure: str) -> pd.DataFrame:
    """``comparison_frame`` computed afresh."""
    df = pd.DataFrame(_effect_rows(ev, config))
    if df.empty:
        return pd.DataFrame(columns=FRAME_COLUMNS)
    df["window"] = [next((w.name for w in config.windows if w.contains(t)), None) for t in df["timepoint_weeks"]]
    if measure == "md100":
        df["yi"], df["vi"] = df["md100"], df["md100_se"] ** 2
        assumed = df["range_assumed"].astype(str).str.len().gt(0) & df["md100"].notna()
        df.loc[assumed, "derived"] = True
        df.loc[assumed, "derivation"] = ["; ".join(x for x in (d, a) if x) for d, a in
                                         zip(df.loc[assumed, "derivation"], df.loc[assumed, "range_assumed"])]
    elif measure == "smd":
        df["yi"], df["vi"] = df["smd"], df["smd_var"]
    else:
        df["yi"], df["vi"] = df["smd_change"], df["smd_change_var"]
    df["used"] = True
    df["why_not"] = ""
    missing = df["yi"].isna() | df["vi"].isna() | ~(df["vi"] > 0)
    df.loc[missing, "used"] = False
    df.loc[missing, "why_not"] = {"md100": "not on a 0-100 scale (instrument range unknown) or no SE",
                                  "smd": "SMD needs both arms' SD and n",
                                  "smd_change": "a change-score SMD needs both arms' SD of the change and n"}[measure]
    if measure == "smd_change":
        df.loc[missing & (df["value_type"] != "change"), "why_not"] = SMD_CHANGE_ONLY
        adj = missing & (df["value_type"] == "change") & (df["smd_note"] == SMD_NOT_ADJUSTED)
        df.loc[adj, "why_not"] = SMD_NOT_ADJUSTED
    if measure == "smd":
        noted = missing & df["smd_note"].astype(str).str.len().gt(0)
        df.loc[noted, "why_not"] = df.loc[noted, "smd_note"]
        contrast_smd = ~missing & (df["smd_note"] == SMD_FROM_CONTRAST)
        df.loc[contrast_smd, "derived"] = True
        df.loc[contrast_smd, "derivation"] = [
            "; ".join(x for x in (d, SMD_FROM_CONTRAST) if x) for d in df.loc[contrast_smd, "derivation"]]
    df.loc[df["window"].isna() & df["used"], ["used", "why_not"]] = [False, "time point outside every window"]
    # contrast-only multi-arm trials first: several contrasts of one trial, at the same time point and on the same
    # instrument, share an arm (arm-level multi-arm trials were combined above and never reach this). The shared
    # arm is split between the contrasts (Cochrane Handbook 23.3.4): each keeps its difference and enters with
    # the shared group's n divided by the number of contrasts, which widens its variance; no contrast is chosen
    # over another. Where the group sizes are not known, the contrasts cannot be split: the one with the largest
    # first group is kept and the others are listed as not used.
    key = ["study_id", "comparison", "outcome", "window"]
    df["_n1"] = df["n1"].fillna(-1)
    df = df.sort_values(key + ["instrument", "timepoint_weeks", "_n1"], ascending=[True] * 6 + [False],
                        kind="mergesort")
    same = key + ["instrument", "timepoint_weeks"]
    df["_split"] = ""
    used = df[df["used"]]
    for _, g in used[used.duplicated(same, keep=False)].groupby(same, dropna=False, sort=False):
        n1, n2 = g["n1"].to_numpy(float), g["n2"].to_numpy(float)
        if g["arm2"].nunique() == 1 and np.isfinite(n1).all() and np.isfinite(n2).all():
            k = len(g)
            n2s = n2 / k
            if measure == "md100":
                factor = (1 / n1 + 1 / n2s) / (1 / n1 + 1 / n2)
                df.loc[g.index, "vi"] = g["vi"].to_numpy(float) * factor
            else:
                y = g["yi"].to_numpy(float)
                df.loc[g.index, "vi"] = 1 / n1 + 1 / n2s + y**2 / (2 * (n1 + n2s))
            df.loc[g.index, "n2"] = n2s
            df.loc[g.index, "_split"] = g["arm1"].astype(str)
            df.loc[g.index, "multiarm_note"] = (f"shared arm {g['arm2'].iloc[0]} split between {k} contrasts "
                                                "(n divided by " + str(k) + "; Cochrane Handbook 23.3.4)")
        else:
            drop = g.index[1:]
            df.loc[drop, "used"] = False
            df.loc[drop, "why_not"] = ("multi-arm trial: another comparison sharing this trial's arm is used "
                                       "(group sizes unknown, so the shared arm cannot be split)")
    split = df["_split"] != ""
    df.loc[split, "study_id"] = df.loc[split, "study_id"] + " (" + df.loc[split, "_split"] + ")"
    df["_trial"] = df["study_id"].str.replace(r" \(.*\)$", "", regex=True)
    # then one instrument and one time point per trial x comparison x outcome x window: rows that give both the
    # MD on 0-100 and the SMD first (so that both versions of an analysis use the same row of each trial), then
    # the preferred instrument, then the time point closest to the window's target
    both = (np.isfinite(df["md100"].to_numpy(float)) & np.isfinite(df["md100_se"].to_numpy(float))
            & np.isfinite(df["smd"].to_numpy(float)) & np.isfinite(df["smd_var"].to_numpy(float)))
    df["_nboth"] = np.where(both, 0, 1)
    df["_irank"] = [_instrument_rank(o, i, config) for o, i in zip(df["outcome"], df["instrument"])]
    targets = {w.name: w.target for w in config.windows}
    df["_dist"] = [abs(t - targets.get(w, t)) if w else np.inf for t, w in zip(df["timepoint_weeks"], df["window"])]
    df = df.sort_values(key + ["_nboth", "_irank", "_dist", "timepoint_weeks"], ascending=[True] * 7 + [False],
                        kind="mergesort")
    dup = df["used"] & df[df["used"]].duplicated(key, keep="first").reindex(df.index, fill_value=False)
    df.loc[dup, "used"] = False
    df.loc[dup, "why_not"] = OTHER_POINT_USED
    st = ev.studies.set_index("study_id")
    df["population"] = [st["population"].get(s) for s in df["_trial"]]
    df["rob_overall"] = [st["rob_overall"].get(s) if st["rob_overall"].get(s) else "not assessed"
                         for s in df["_trial"]]
    df["co_intervention_differs"] = [_co_intervention(ev, s, a) for s, a in zip(df["_trial"], df["arm1"])]
    df = df.drop(columns=["_nboth", "_irank", "_dist", "_n1", "_split", "_trial"])
    df = df.sort_values(["comparison", "outcome", "window", "study_id"], kind="mergesort").reset_index(drop=True)
    if not ev.vocabulary.is_default:
        df.attrs["comparison_order"] = comparison_order(ev.vocabulary)
        df.attrs["views"] = views_of(ev.vocabulary)
    return df


def _co_intervention(ev: Evidence, study_id: str, arm) -> bool:
    """Whether the first-named arm (any of its combined parts) gets a co-intervention its comparator does not
    (``arm_details.csv``; docs/methods.md section 15)."""
    d = getattr(ev, "arm_details", None)
    if d is None or d.empty:
        return False
    flagged = d[(d["study_id"] == study_id) & (d["co_intervention_differs"] == True)]  # noqa: E712 (NA-safe)
    return bool(set(str(arm).split("+")) & set(flagged["arm"]))


# -------------------------------------------------------------------------------------------- pooling


@dataclass(frozen=True)
class WindowResult:
    comparison: str
    outcome: str
    window: str
    result: PoolResult | None
    studies: pd.DataFrame = field(repr=False)

    @property
    def k(self) -> int:
        return 0 if self.result is None else self.result.k


def pool_windows(frame: pd.DataFrame, config: AnalysisConfig | None = None, **pool_kw) -> list[WindowResult]:
    """Pool every comparison x outcome x window of a :func:`comparison_frame` (used rows only), by the rule for
    few trials (:func:`pool_analysis`)."""
    config = config or load_config()
    out = []
    used = frame.loc[frame["used"].astype(bool)]  # .loc: an empty frame must keep its columns
    order = {w.name: i for i, w in enumerate(config.windows)}
    comps = frame.attrs.get("comparison_order") or ALL_COMPARISONS
    rank = {c: i for i, c in enumerate(comps)}
    for (comp, outcome, window), g in sorted(used.groupby(["comparison", "outcome", "window"]),
                                             key=lambda t: (rank.get(t[0][0], len(rank)), t[0][0], t[0][1],
                                                            order.get(t[0][2], 9))):
        g = g.sort_values("study_id")
        r = pool_analysis(g["yi"].to_numpy(float), g["vi"].to_numpy(float), list(g["study_id"]), config, **pool_kw)
        out.append(WindowResult(comp, outcome, window, r, g))
    return out


def results_table(results: list[WindowResult], config: AnalysisConfig | None = None) -> pd.DataFrame:
    """One row per comparison x outcome x window with the pooled numbers (full precision)."""
    config = config or load_config()
    rows = []
    for w in results:
        r = w.result
        mid = config.thresholds.get(w.outcome)
        rows.append({
            "comparison": w.comparison, "outcome": w.outcome, "window": w.window, "k": r.k,
            "participants": float(np.nansum(w.studies["n1"].to_numpy(float)) + np.nansum(w.studies["n2"].to_numpy(float))),
            "estimate": r.estimate, "ci_low": r.ci_low, "ci_high": r.ci_high, "pi_low": r.pi_low,
            "pi_high": r.pi_high, "tau2": r.tau2, "i2": r.i2, "q": r.q, "q_p": r.q_p, "p": r.p,
            "mid": mid, "studies": ", ".join(w.studies["study_id"]),
        })
    return pd.DataFrame(rows)


# ------------------------------------------------------------------------------------- short vs long


@dataclass(frozen=True)
class ShortLongResult:
    """Change of the effect from short to long term, estimated within trials that report both windows."""

    comparison: str
    outcome: str
    correlation: float
    within: PoolResult | None  # pooled (long - short) within trials, at the assumed correlation
    sensitivity: pd.DataFrame  # one row per assumed correlation
    trials: pd.DataFrame  # per-trial short, long, difference
    naive_q: float  # the ordinary test for subgroup differences (NOT valid here: same trials in both)
    naive_p: float
    short: PoolResult | None
    long: PoolResult | None
    multilevel: object | None = None  # MultilevelResult: all trials of both windows, trial random intercept
    window_model: object | None = None  # WindowModelResult: all trials, heterogeneity by window, t (3+ trials)

    def summary(self) -> str:
        if self.within is None:
            return (f"{self.comparison}, {self.outcome}: no trial reports both short and long term; the change "
                    "over time cannot be estimated within trials")
        w = self.within
        ml = ""
        if self.multilevel is not None:
            c = self.multilevel.coefficients.loc["long"]
            ml = (f"; multilevel model with all {self.multilevel.n_groups} trials: {c['estimate']:.1f} "
                  f"(95% CI {c['ci_low']:.1f} to {c['ci_high']:.1f})")
        return (f"{self.comparison}, {self.outcome}: effect changes by {w.estimate:.1f} "
                f"(95% CI {w.ci_low:.1f} to {w.ci_high:.1f}) from short to long term within {w.k} trial(s) "
                f"(correlation assumed {self.correlation:g}){ml}; naive subgroup test (ignores that the same "
                f"trials are in both windows): Q = {self.naive_q:.2f}, p = {self.naive_p:.3f}")


def short_vs_long(frame: pd.DataFrame, comparison: str, outcome: str, config: AnalysisConfig | None = None,
                  *, short: str = "short", long: str = "long", **pool_kw) -> ShortLongResult:
    """Does the effect fade or grow? Within-trial change (long minus short), pooled across trials.

    For trials reporting both windows, d_i = y_long - y_short with variance v_s + v_l - 2 r sqrt(v_s v_l),
    r the assumed correlation between a trial's two estimates (same patients: not independent); pooled with
    the configured random-effects model, for the assumed r and for each r of the sensitivity range. The naive
    test for subgroup differences between the two windows is given too, labelled as such: it treats the
    windows as independent groups of trials, which they are not (Cochrane Handbook 10.11.3.1).
    A second estimate uses every trial of either window: a multilevel model with a random intercept per trial
    (REML, Wald z interval; :mod:`mt_evidence.stats.multilevel`, validated against metafor's ``rma.mv``), with the
    same assumed within-trial correlation.
    Negative change = the difference between the cares grows in favour of the first-named care over time
    (for ``md100`` and ``smd`` effects, where negative favours the first-named care).
    """
    config = config or load_config()
    f = frame[frame["used"] & (frame["comparison"] == comparison) & (frame["outcome"] == outcome)]
    s = f[f["window"] == short].set_index("study_id")
    lo = f[f["window"] == long].set_index("study_id")
    both = sorted(set(s.index) & set(lo.index))
    pooled_s = (pool_analysis(s["yi"].to_numpy(float), s["vi"].to_numpy(float), list(s.index), config, **pool_kw)
                if len(s) else None)
    pooled_l = (pool_analysis(lo["yi"].to_numpy(float), lo["vi"].to_numpy(float), list(lo.index), config, **pool_kw)
                if len(lo) else None)
    if pooled_s is not None and pooled_l is not None:
        w = 1 / np.array([pooled_s.se**2, pooled_l.se**2])
        est = np.array([pooled_s.estimate, pooled_l.estimate])
        mu = np.sum(w * est) / np.sum(w)
        q = float(np.sum(w * (est - mu) ** 2))
        from scipy import stats

        p = float(stats.chi2.sf(q, 1))
    else:
        q, p = float("nan"), float("nan")
    trials = pd.DataFrame({
        "study_id": both,
        "short": [s.loc[t, "yi"] for t in both], "short_var": [s.loc[t, "vi"] for t in both],
        "long": [lo.loc[t, "yi"] for t in both], "long_var": [lo.loc[t, "vi"] for t in both],
    })
    if not both:
        return ShortLongResult(comparison, outcome, config.correlation, None, pd.DataFrame(), trials, q, p,
                               pooled_s, pooled_l)
    d = trials["long"] - trials["short"]
    trials["change"] = d

    def fit(r: float) -> PoolResult:
        v = trials["short_var"] + trials["long_var"] - 2 * r * np.sqrt(trials["short_var"] * trials["long_var"])
        return pool_analysis(d.to_numpy(float), v.to_numpy(float), both, config, **pool_kw)

    main = fit(config.correlation)
    ml = _multilevel(s, lo, config.correlation)
    wm = _window_model(s, lo, config.correlation)
    sens = []
    for r in config.sensitivity:
        res = fit(r)
        sens.append({"correlation": r, "estimate": res.estimate, "se": res.se, "ci_low": res.ci_low,
                     "ci_high": res.ci_high, "p": res.p, "k": res.k})
    return ShortLongResult(comparison, outcome, config.correlation, main, pd.DataFrame(sens), trials, q, p,
                           pooled_s, pooled_l, ml, wm)


def difference_of_changes(a: ShortLongResult, b: ShortLongResult, level: float = 0.95) -> pd.DataFrame:
    """Does the first comparison's effect fade more than the second's? For each assumed correlation: the
    change from short to long term of ``a`` minus that of ``b`` (positive: ``a`` fades more), from independent
    sets of trials, so the variance is the sum; normal (z) interval. Empty when either change is not
    estimable. A trial in both comparisons (e.g. a three-arm trial) would make the two changes correlated: it is
    listed in ``shared`` and the interval is then too narrow."""
    from scipy import stats

    if a.within is None or b.within is None:
        return pd.DataFrame()
    z = stats.norm.ppf(1 - (1 - level) / 2)
    m = a.sensitivity.merge(b.sensitivity, on="correlation", suffixes=("_a", "_b"))
    est = m["estimate_a"] - m["estimate_b"]
    se = np.sqrt(m["se_a"] ** 2 + m["se_b"] ** 2)
    shared = sorted(set(a.trials["study_id"]) & set(b.trials["study_id"]))
    return pd.DataFrame({"correlation": m["correlation"], "estimate": est, "se": se, "ci_low": est - z * se,
                         "ci_high": est + z * se, "k_a": m["k_a"], "k_b": m["k_b"],
                         "shared": ", ".join(shared)})


def _window_model(short: pd.DataFrame, long: pd.DataFrame, r: float):
    """Every trial of either window, a between-trial variance per window, t-based inference (docs/methods.md
    section 10); None below 3 trials or when it cannot be fitted."""
    from ..stats.multilevel import fit_window_heterogeneity

    ids = list(short.index) + list(long.index)
    if len(set(ids)) < 3:
        return None
    y = np.concatenate([short["yi"].to_numpy(float), long["yi"].to_numpy(float)])
    v = np.concatenate([short["vi"].to_numpy(float), long["vi"].to_numpy(float)])
    x = np.r_[np.zeros(len(short)), np.ones(len(long))]
    V = np.diag(v)
    for t in set(short.index) & set(long.index):
        i, j = list(short.index).index(t), len(short) + list(long.index).index(t)
        V[i, j] = V[j, i] = r * np.sqrt(v[i] * v[j])
    try:
        return fit_window_heterogeneity(y, V, np.column_stack([np.ones_like(x), x]),
                                        np.where(x == 1, "long", "short"), ids, names=["intrcpt", "long"])
    except (ValueError, np.linalg.LinAlgError):
        return None


def _multilevel(short: pd.DataFrame, long: pd.DataFrame, r: float):
    """Random-intercept model over every trial of both windows (within-trial covariance r sqrt(v_s v_l))."""
    from ..stats.multilevel import fit_random_intercept

    ids = list(short.index) + list(long.index)
    y = np.concatenate([short["yi"].to_numpy(float), long["yi"].to_numpy(float)])
    v = np.concatenate([short["vi"].to_numpy(float), long["vi"].to_numpy(float)])
    x = np.r_[np.zeros(len(short)), np.ones(len(long))]
    if len(y) < 3 or len(set(ids)) < 2:
        return None
    V = np.diag(v)
    for t in set(short.index) & set(long.index):
        i, j = ids.index(t), len(short) + list(long.index).index(t)
        V[i, j] = V[j, i] = r * np.sqrt(v[i] * v[j])
    try:
        return fit_random_intercept(y, V, np.column_stack([np.ones_like(x), x]), ids, names=["intrcpt", "long"])
    except (ValueError, np.linalg.LinAlgError):
        return None


# ----------------------------------------------------------------------------------------- sensitivity


def sensitivity(frame: pd.DataFrame, comparison: str, outcome: str, window: str,
                config: AnalysisConfig | None = None) -> pd.DataFrame:
    """The pooled effect under each sensitivity analysis, one row each:

    * ``primary``: the plan's model (:func:`pool_analysis`: common effect below 3 trials, else the configured
      random-effects model);
    * ``common_effect``: the common-effect (FE) model;
    * ``random_z``: random effects with the Wald z interval instead of HKSJ (from 3 trials);
    * ``low_risk_of_bias``: trials whose overall risk-of-bias judgement is low (published, else the review's own
      RoB 2; docs/methods.md section 17; trials not assessed are left out, never guessed);
    * ``without_mckenzie``: where a trial's exercise side is the McKenzie method (technique ``mckenzie``, its own
      exercise subtype), the analysis without those trials;
    * ``no_derived_values``: trials whose effect needed no derived value (no SD from SE or CI, no SE from a CI);
    * ``unadjusted_only``: trials whose printed values are not model-adjusted;
    * ``final_values_only``: trials whose arms give final values (change from baseline left out);
    * where a row's instrument range is in doubt (docs/methods.md section 3), ``other_range <low-high>``: those rows
      rescaled to each other range of their rule, and ``printed_ranges_only``: those rows left out.
    """
    config = config or load_config()
    f = frame[frame["used"] & (frame["comparison"] == comparison) & (frame["outcome"] == outcome)
              & (frame["window"] == window)]
    base: dict = {}
    variants = [
        ("primary", f, base),
        ("common_effect", f, dict(method="FE", test="z")),
        ("random_z", f, dict(test="z")),
        ("low_risk_of_bias", f[f["rob_overall"] == "low"], base),
        ("no_derived_values", f[~f["derived"].astype(bool)], base),
        ("unadjusted_only", f[~f["adjusted"].astype(bool)], base),
        ("final_values_only", f[f["value_type"] != "change"], base),
    ]
    mck = np.array([has_technique(a, "mckenzie") or has_technique(b, "mckenzie")
                    for a, b in zip(f.get("technique1", pd.Series("", f.index)).fillna(""),
                                    f.get("technique2", pd.Series("", f.index)).fillna(""))], dtype=bool)
    if mck.any():
        variants.append(("without_mckenzie", f[~mck], base))
    assumed = f["range_assumed"].astype(str).str.len().gt(0) if "range_assumed" in f else pd.Series(False, f.index)
    if assumed.any():
        alts: dict[str, pd.Series] = {}
        for i, spec in f.loc[assumed, "range_alternatives"].items():
            for part in str(spec).split(";"):
                label, factor = part.split("=")
                alts.setdefault(label, pd.Series(1.0, index=f.index))[i] = float(factor)
        for label, factor in alts.items():
            variants.append((f"other_range {label}", f.assign(yi=f["yi"] * factor, vi=f["vi"] * factor**2), base))
        variants.append(("printed_ranges_only", f[~assumed], base))
    rows = []
    for name, sub, kw in variants:
        if len(sub) == 0:
            rows.append({"analysis": name, "k": 0, "estimate": np.nan, "ci_low": np.nan, "ci_high": np.nan,
                         "i2": np.nan, "studies": "", "note": "no trial qualifies"})
            continue
        if name == "common_effect":
            r = pool(sub["yi"].to_numpy(float), sub["vi"].to_numpy(float), labels=list(sub["study_id"]), **kw)
        else:
            r = pool_analysis(sub["yi"].to_numpy(float), sub["vi"].to_numpy(float), list(sub["study_id"]), config,
                              **kw)
        rows.append({"analysis": name, "k": r.k, "estimate": r.estimate, "ci_low": r.ci_low, "ci_high": r.ci_high,
                     "i2": r.i2, "studies": ", ".join(sub["study_id"]), "note": r.conventions.describe()})
    return pd.DataFrame(rows)


def subgroup_difference(results: dict[str, PoolResult]) -> dict:
    """Test for subgroup differences from each subgroup's pooled result (separate models, as RevMan's test):
    Q = sum of w_g (estimate_g - weighted mean)^2 with w_g = 1 / se_g^2, on (groups - 1) df."""
    from scipy import stats

    names = [g for g, r in results.items() if r is not None and np.isfinite(r.se) and r.se > 0]
    if len(names) < 2:
        return {"q": float("nan"), "df": 0, "p": float("nan"), "groups": names}
    est = np.array([results[g].estimate for g in names])
    w = 1 / np.array([results[g].se for g in names]) ** 2
    mu = float(np.sum(w * est) / np.sum(w))
    q = float(np.sum(w * (est - mu) ** 2))
    df = len(names) - 1
    return {"q": q, "df": df, "p": float(stats.chi2.sf(q, df)), "groups": names}


def control_subgroups(frame: pd.DataFrame, comparison: str, outcome: str, window: str,
                      config: AnalysisConfig | None = None):
    """Subgroup analysis by control type (usual care, advice, sham, wait-list) for a "... vs control" comparison.

    Returns a :class:`~mt_evidence.stats.subgroups.SubgroupResult` (test for subgroup differences with separate and
    with common tau^2), or None when the comparison has no control or fewer than two trials.
    """
    from ..stats.subgroups import subgroup

    config = config or load_config()
    f = frame[frame["used"] & (frame["comparison"] == comparison) & (frame["outcome"] == outcome)
              & (frame["window"] == window)]
    if not comparison.endswith("_vs_control") or len(f) < 2:
        return None
    return subgroup(f["yi"].to_numpy(float), f["vi"].to_numpy(float), list(f["control_type"]),
                    labels=list(f["study_id"]), method=config.method, test=config.test, pi_type=config.pi_type)

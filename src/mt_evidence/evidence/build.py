"""From validated evidence to analysis-ready effect sizes (``data/processed``).

Each processed row is one trial x comparison x outcome x instrument x time point, traceable to its raw rows
(``source_rows``). Effects are oriented so that **negative favours the first intervention** of the comparison
on every outcome (values are sign-flipped where higher scores are better), and given as:

* ``md``: mean difference on the instrument's own scale, with ``md_se``;
* ``md100``: the same on a 0-100 scale (when the instrument's range is known), with ``md100_se``;
* ``smd``: Hedges' g (metafor's default variance, ``smd_var``) when both arms' SDs are known or derivable.

Comparisons pair the arms of a trial in a fixed order of interventions (combined, manual therapy, exercise,
other, sham, advice, usual care, wait-list): the first named is the more active one. Arm-level rows are
preferred; a between-group contrast is used where the arms are not available. Rows with ``role`` other than
"primary" are kept out of the primary set and listed with the reason.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
from scipy import stats

from ..stats.effects import effect_size
from . import atomic
from .export import csv_bytes
from .io import Evidence
from .windows import default_windows

ORDER = ("combined", "manual_therapy", "exercise", "other", "sham", "advice", "usual_care", "wait_list")
CONTROL_LABEL = {"usual_care": "control", "advice": "control", "sham": "control", "wait_list": "control"}


PROCESSED_COLUMNS = [
    "row_id", "study_id", "comparison", "intervention1", "intervention2", "arm1", "arm2", "outcome", "instrument",
    "scale_min", "scale_max", "higher_is_worse", "timepoint_weeks", "window", "value_type", "adjusted", "n1", "n2",
    "md", "md_se", "md100", "md100_se", "smd", "smd_var", "source_kind", "source_rows", "derived", "derivation",
    "role", "note",
]


def intervention_rank(intervention: str, vocabulary=None) -> int:
    """Position of an intervention in the comparison order (the first named side is the more active one): the
    package's order, or the declaration order of a review's own vocabulary (docs/methods.md section 18)."""
    if vocabulary is not None and not vocabulary.is_default:
        return vocabulary.rank(intervention)
    return ORDER.index(intervention) if intervention in ORDER else len(ORDER)


def _ranks(values, vocabulary=None) -> np.ndarray:
    """``intervention_rank`` of each value in a vocabulary's order (computed once per distinct label)."""
    values = pd.Series(values, dtype=object)
    return values.map({v: intervention_rank(v, vocabulary) for v in values.unique()}).to_numpy(int)


def _numbers(frame: pd.DataFrame, column: str) -> np.ndarray:
    """A column as floats, NaN where missing (also for rows of mixed type, as ``iterrows`` gives them)."""
    return frame[column].to_numpy(dtype=float, na_value=np.nan)


def arm_spreads(arms: pd.DataFrame) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(se, sd, how) of each arm's mean from sd, se or CI (one row per arm, all at once); ``how`` is empty where
    sd and se are printed as such. :func:`arm_spread` gives the same for one row."""
    n, sd, se, lo, hi = (_numbers(arms, c) for c in ("n", "sd", "se", "ci_low", "ci_high"))
    out_se, out_sd = np.full(len(arms), np.nan), np.full(len(arms), np.nan)
    how = np.full(len(arms), "", dtype=object)
    with np.errstate(invalid="ignore"):
        has_sd = ~np.isnan(sd)  # SE = SD / sqrt(n) is the ordinary computation, not a derived value
        out_se[has_sd], out_sd[has_sd] = sd[has_sd] / np.sqrt(n[has_sd]), sd[has_sd]
        from_se = ~has_sd & ~np.isnan(se)
        out_se[from_se], out_sd[from_se] = se[from_se], se[from_se] * np.sqrt(n[from_se])
        how[from_se] = "SD = SE * sqrt(n) (Cochrane Handbook 6.5.2.2)"
        from_ci = ~has_sd & ~from_se & ~np.isnan(lo) & ~np.isnan(hi)
        z = stats.norm.ppf(0.975)
        no_n = from_ci & np.isnan(n)
        out_se[no_n] = (hi[no_n] - lo[no_n]) / (2 * z)
        how[no_n] = "SE = CI width / (2 x z 97.5% quantile) (n not known)"
        small, large = from_ci & (n < 60), from_ci & (n >= 60)
        q = np.full(len(arms), z)
        q[small] = stats.t.ppf(0.975, n[small] - 1)
        with_n = small | large
        out_se[with_n] = (hi[with_n] - lo[with_n]) / (2 * q[with_n])
        out_sd[with_n] = out_se[with_n] * np.sqrt(n[with_n])
    how[with_n] = [f"SE = CI width / (2 x {f't({k - 1:g})' if k < 60 else 'z'} 97.5% quantile); SD = SE * sqrt(n) "
                   "(Handbook 6.5.2.2)" for k in n[with_n].tolist()]
    return out_se, out_sd, how


def arm_spread(r: pd.Series) -> tuple[float, float, str]:
    """(se, sd, how) of an arm's mean from sd, se or CI; ``how`` is empty when sd and se are printed as such."""
    se, sd, how = arm_spreads(r.to_frame().T)
    return se[0], sd[0], how[0]


def _printed_p(p) -> float:
    """A two-sided p-value printed exactly ('0.03'); NaN for '<0.001', '>0.05', an empty cell or text."""
    text = str(p).strip() if p is not None else ""
    if text[:1] in ("<", ">", ""):
        return np.nan
    try:
        return float(text)
    except ValueError:
        return np.nan


def contrast_ses(con: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
    """(SE, how) of each printed between-group difference: printed SE; else from its CI (normal quantile at the
    CI's level); else from an exactly printed two-sided p-value (Cochrane Handbook 6.3.2; not from '<0.001').
    :func:`contrast_se` gives the same for one row."""
    se, lo, hi, level, est = (_numbers(con, c) for c in ("se", "ci_low", "ci_high", "ci_level", "estimate"))
    how = np.full(len(con), "", dtype=object)
    out = se.copy()
    from_ci = np.isnan(se) & ~np.isnan(lo) & ~np.isnan(hi)
    upper = 1 - (1 - np.where(np.isnan(level), 0.95, level)[from_ci]) / 2
    out[from_ci] = (hi[from_ci] - lo[from_ci]) / (2 * stats.norm.ppf(upper))
    how[from_ci] = [f"SE = CI width / (2 x z {u:.3f} quantile)" for u in upper.tolist()]
    rest = np.flatnonzero(np.isnan(se) & ~from_ci)
    printed = (con["p_value"].to_numpy(object) if "p_value" in con.columns else np.full(len(con), None))[rest]
    p = np.array([_printed_p(x) for x in printed], dtype=float)
    use = np.isfinite(p) & (p > 0) & (p < 1) & (est[rest] != 0)
    rest, printed, p = rest[use], printed[use], p[use]
    out[rest] = np.abs(est[rest]) / stats.norm.isf(p / 2)
    how[rest] = [f"SE = |estimate| / z(p/2) from the printed p = {x} (Cochrane Handbook 6.3.2; p is rounded, so the "
                 "SE is approximate)" for x in printed]
    return out, how


def contrast_se(r: pd.Series) -> tuple[float, str]:
    """(SE, how) of a printed between-group difference: printed SE; else from its CI (normal quantile at the CI's
    level); else from an exactly printed two-sided p-value (Cochrane Handbook 6.3.2; not from '<0.001')."""
    se, how = contrast_ses(r.to_frame().T)
    return float(se[0]), how[0]


def orient(diff: float, higher_is_worse: bool) -> float:
    """A difference oriented so that negative favours the first arm (sign flipped when higher is better)."""
    return diff if higher_is_worse else -diff


def difference_to_100(x: float, lo: float, hi: float) -> float:
    """A difference (or its SE) on an instrument scaled ``lo``-``hi`` in points on 0-100; NaN if the range is unknown."""
    if pd.isna(lo) or pd.isna(hi) or hi <= lo:
        return np.nan
    return x * 100.0 / (hi - lo)


def _to_100(x: np.ndarray, lo: np.ndarray, hi: np.ndarray) -> np.ndarray:
    """:func:`difference_to_100` of whole columns."""
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(~np.isnan(lo) & ~np.isnan(hi) & (hi > lo), x * 100.0 / (hi - lo), np.nan)


def _joined(sep: str, *columns: np.ndarray) -> np.ndarray:
    """Row by row, the non-empty texts of ``columns`` (object arrays, "" where empty) joined by ``sep``."""
    out = np.full(len(columns[0]), "", dtype=object)
    some = np.logical_or.reduce([c != "" for c in columns])
    out[some] = [sep.join(x for x in texts if x) for texts in zip(*(c[some] for c in columns))]
    return out


def _pair_positions(arms: pd.DataFrame, keys: list[str], vocabulary=None) -> tuple[np.ndarray, np.ndarray]:
    """Row positions (first, second) of every pair of arms that share ``keys``: groups in the sorted order of
    their keys, arms within a group in comparison order (intervention rank in ``vocabulary``'s order, then arm label,
    then row), pairs as
    ``itertools.combinations`` lists them."""
    group = arms.groupby(keys, dropna=False, sort=True).ngroup().to_numpy()
    order = pd.DataFrame({"g": group, "rank": _ranks(arms["intervention"], vocabulary), "arm": arms["arm"].to_numpy(object)}
                         ).sort_values(["g", "rank", "arm"], kind="stable").index.to_numpy()
    starts = np.flatnonzero(np.r_[True, np.diff(group[order]) != 0])
    sizes = np.diff(np.r_[starts, len(order)])
    firsts, seconds = [], []
    for size in np.unique(sizes[sizes > 1]):
        i, j = np.triu_indices(size, 1)  # (0, 1), (0, 2), ..., (1, 2), ...: the order of combinations
        s = starts[sizes == size][:, None]
        firsts.append((s + i).ravel())
        seconds.append((s + j).ravel())
    if not firsts:
        return np.array([], dtype=int), np.array([], dtype=int)
    first, second = np.concatenate(firsts), np.concatenate(seconds)
    keep = np.lexsort((second, first))  # groups are consecutive runs of ``order``: group by group, as combinations
    return order[first[keep]], order[second[keep]]


def _pairs_from_arms(ev: Evidence) -> pd.DataFrame:
    arms = ev.arms
    usable = (arms["mean"].notna() & (arms["timepoint_weeks"].isna() | (arms["timepoint_weeks"] > 0))).to_numpy()
    arms = arms[usable].assign(_row=arms.index[usable] + 2).reset_index(drop=True)
    arms["role"] = arms["role"].fillna("primary")
    # change scores printed as baseline minus follow-up are re-signed to follow-up minus baseline
    flip = arms["change_sign"] == "baseline_minus_followup"
    arms.loc[flip, "mean"] = -arms.loc[flip, "mean"]
    arms.loc[flip, ["ci_low", "ci_high"]] = -arms.loc[flip, ["ci_high", "ci_low"]].to_numpy()
    arms.loc[flip, "derivation"] = [
        "; ".join(x for x in (d, "change printed as baseline minus follow-up; re-signed") if x)
        for d in arms.loc[flip, "derivation"].fillna("")
    ]
    fname = Path(ev.files.get("arms", "arms.csv")).name
    keys = ["study_id", "outcome", "instrument", "timepoint_weeks", "value_type", "adjusted", "role"]
    a, b = _pair_positions(arms, keys, ev.vocabulary)
    se, sd, how = arm_spreads(arms)
    mean, n, lo, hi = (_numbers(arms, c) for c in ("mean", "n", "scale_min", "scale_max"))
    hiw = arms["higher_is_worse"].fillna(False).to_numpy(bool)[a]
    diff = mean[a] - mean[b]
    md = np.where(hiw, diff, -diff)
    # squared as C's pow() squares (numpy's x**2 on arrays is x*x, which can differ in the last bit)
    md_se = np.sqrt(np.float_power(se[a], 2) + np.float_power(se[b], 2))
    smd, smd_var = np.full(len(a), np.nan), np.full(len(a), np.nan)
    known = ~np.isnan(sd[a]) & ~np.isnan(sd[b]) & ~np.isnan(n[a]) & ~np.isnan(n[b])
    if known.any():
        ka, kb = a[known], b[known]
        es = effect_size("SMD", m1=mean[ka], sd1=sd[ka], n1=n[ka], m2=mean[kb], sd2=sd[kb], n2=n[kb])
        yi = es["yi"].to_numpy(float)
        smd[known], smd_var[known] = np.where(hiw[known], yi, -yi), es["vi"].to_numpy(float)
    text = {c: arms[c].to_numpy(object) for c in ("study_id", "intervention", "arm", "outcome", "instrument",
                                                  "value_type", "role")}
    derivation = arms["derivation"].fillna("").to_numpy(object)
    note = arms["note"].fillna("").to_numpy(object)
    rows = arms["_row"].to_numpy()
    # how the SEs were derived (each once, in sorted order), then the arms' own derivations
    in_order = how[a] <= how[b]
    how1, how2 = np.where(in_order, how[a], how[b]), np.where(in_order, how[b], how[a])
    how2[how2 == how1] = ""
    derivations = _joined("; ", how1, how2, derivation[a], derivation[b])
    return pd.DataFrame(dict(
        study_id=text["study_id"][a], intervention1=text["intervention"][a], intervention2=text["intervention"][b],
        arm1=text["arm"][a], arm2=text["arm"][b], outcome=text["outcome"][a], instrument=text["instrument"][a],
        scale_min=lo[a], scale_max=hi[a], higher_is_worse=hiw, timepoint_weeks=_numbers(arms, "timepoint_weeks")[a],
        value_type=text["value_type"][a], adjusted=arms["adjusted"].fillna(False).to_numpy(bool)[a],
        n1=n[a], n2=n[b], md=md, md_se=md_se, md100=_to_100(md, lo[a], hi[a]), md100_se=_to_100(md_se, lo[a], hi[a]),
        smd=smd, smd_var=smd_var, source_kind="arms",
        source_rows=[f"{fname}:{x};{fname}:{y}" for x, y in zip(rows[a].tolist(), rows[b].tolist())],
        derived=derivations != "", derivation=derivations, role=text["role"][a],
        note=_joined(" | ", note[a], note[b]),
    ))


def _from_contrasts(ev: Evidence) -> pd.DataFrame:
    con = ev.contrasts
    con = con[(con["estimate_type"] == "MD").to_numpy(bool)]  # SMD/ratio contrasts: not pooled yet, kept raw
    fname = Path(ev.files.get("contrasts", "contrasts.csv")).name
    text = {c: con[c].to_numpy(object) for c in ("study_id", "intervention1", "intervention2", "arm1", "arm2",
                                                 "outcome", "instrument", "direction_stored")}
    # put the more active intervention first
    first = _ranks(text["intervention1"], ev.vocabulary) <= _ranks(text["intervention2"], ev.vocabulary)
    estimate, n1, n2 = _numbers(con, "estimate"), _numbers(con, "n1"), _numbers(con, "n2")
    est = np.where(text["direction_stored"] == "arm1_minus_arm2", estimate, -estimate)
    est = np.where(first, est, -est)
    direction_known = con["higher_is_worse"].notna().to_numpy(bool)
    hiw = con["higher_is_worse"].fillna(True).to_numpy(bool)
    md = np.where(hiw, est, -est)
    role = con["role"].fillna("primary").to_numpy(object, copy=True)
    note = con["note"].fillna("").to_numpy(object, copy=True)
    for unknown, why in ((text["direction_stored"] == "not_stated", "the source does not say which way the "
                          "difference runs. "),
                         (~direction_known, "the instrument's direction (higher worse or better) is not known. ")):
        now = unknown & (role == "primary")
        role[now] = "excluded"
        note[now] = [why + x for x in note[now]]
    se, how = contrast_ses(con)
    lo, hi = _numbers(con, "scale_min"), _numbers(con, "scale_max")
    derivation = _joined("; ", how, con["derivation"].fillna("").to_numpy(object))
    return pd.DataFrame(dict(
        study_id=text["study_id"], intervention1=np.where(first, text["intervention1"], text["intervention2"]),
        intervention2=np.where(first, text["intervention2"], text["intervention1"]),
        arm1=np.where(first, text["arm1"], text["arm2"]), arm2=np.where(first, text["arm2"], text["arm1"]),
        outcome=text["outcome"], instrument=text["instrument"], scale_min=lo, scale_max=hi, higher_is_worse=hiw,
        timepoint_weeks=_numbers(con, "timepoint_weeks"), value_type="contrast",
        adjusted=con["adjusted"].fillna(False).to_numpy(bool), n1=np.where(first, n1, n2),
        n2=np.where(first, n2, n1), md=md, md_se=se, md100=_to_100(md, lo, hi), md100_se=_to_100(se, lo, hi),
        smd=np.nan, smd_var=np.nan, source_kind="contrasts", source_rows=[f"{fname}:{i + 2}" for i in con.index],
        derived=derivation != "", derivation=derivation, role=role, note=[x.strip() for x in note],
    ))


@dataclass(frozen=True)
class BuildResult:
    effects: pd.DataFrame  # every assembled row, with role
    exclusions: pd.DataFrame  # rows not usable in the primary analyses, and why

    def primary(self) -> pd.DataFrame:
        return self.effects[self.effects["role"] == "primary"]


def _windows(config):
    """The follow-up windows of ``config`` (any settings object with ``windows``), or the packaged default."""
    return config.windows if config is not None else default_windows()


def _window_names(weeks: pd.Series, windows) -> np.ndarray:
    """The name of the first window containing each time point (None where none does), once per distinct value."""
    codes, values = pd.factorize(weeks, use_na_sentinel=False)
    return np.array([next((w.name for w in windows if w.contains(t)), None) for t in values], dtype=object)[codes]


def _keys(frame: pd.DataFrame, columns: list[str]):
    """The rows of ``columns`` as tuples of plain values (iterating a text column of pandas is far slower)."""
    return zip(*(frame[c].to_numpy(object) for c in columns))


def _stacked(frames: list[pd.DataFrame], columns: list[str]) -> pd.DataFrame:
    """The frames with rows one below the other (types as if built from their rows: empty frames are left out);
    an empty frame with ``columns`` when all are empty."""
    frames = [f for f in frames if len(f)]
    return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame(columns=columns)


_ARM_KEY = ["study_id", "intervention1", "intervention2", "arm1", "arm2", "outcome", "instrument", "timepoint_weeks"]


def assemble(ev: Evidence, config=None) -> BuildResult:
    """Assemble every comparison the evidence supports (see module docstring for the rules); follow-up windows
    come from the analysis configuration (default: the Cochrane Back and Neck group's)."""
    windows = _windows(config)
    arms, con = _pairs_from_arms(ev), _from_contrasts(ev)
    # a contrast of a comparison that arm-level data also give (at a known time point) is an alternative analysis
    arm_keys = set(_keys(arms[(arms["role"] == "primary") & arms["timepoint_weeks"].notna()], _ARM_KEY))
    twin = np.array([k in arm_keys for k in _keys(con, _ARM_KEY)], dtype=bool) & (con["role"] == "primary").to_numpy(bool)
    con.loc[twin, "role"] = "alternative"
    con.loc[twin, "note"] = [("arm-level data of the same comparison are used instead; " + x).strip("; ")
                             for x in con.loc[twin, "note"]]
    df = _stacked([arms, con], PROCESSED_COLUMNS)
    df["window"] = list(_window_names(df["timepoint_weeks"], windows))
    df["comparison"] = [f"{a}_vs_{b}" for a, b in _keys(df, ["intervention1", "intervention2"])]
    df = df.sort_values(["study_id", "comparison", "outcome", "instrument", "timepoint_weeks", "source_kind",
                         "arm1", "arm2"], kind="mergesort").reset_index(drop=True)
    df["row_id"] = [f"E{i + 1:04d}" for i in range(len(df))]
    role = df["role"].to_numpy(object)
    reason = np.full(len(df), None, dtype=object)
    other = role != "primary"
    reason[other] = [{"alternative": "alternative analysis of data used elsewhere",
                      "excluded": "excluded in the raw data (see note)"}.get(r, r) for r in role[other]]
    no_time = ~other & df["timepoint_weeks"].isna().to_numpy(bool)
    reason[no_time] = "time point not known"
    no_se = ~other & ~no_time & df["md_se"].isna().to_numpy(bool)
    reason[no_se] = "no standard error or CI"
    listed = reason != None  # noqa: E711 - elementwise on an object array
    excl = df.loc[listed, ["row_id", "study_id", "comparison", "outcome", "timepoint_weeks", "source_rows",
                           "note"]].assign(reason=reason[listed])
    df.loc[no_time | no_se, "role"] = "excluded"
    ids = ev.studies["study_id"]
    excluded_studies = sorted(set(ids[~ids.isin(df.loc[df["role"] == "primary", "study_id"])]))
    studies = pd.DataFrame({"row_id": "", "study_id": excluded_studies, "comparison": "", "outcome": "",
                            "timepoint_weeks": np.nan, "reason": "no usable effect estimate in the raw data",
                            "source_rows": "", "note": ""})
    return BuildResult(effects=df[PROCESSED_COLUMNS], exclusions=_stacked([excl, studies], EXCLUSION_COLUMNS)[EXCLUSION_COLUMNS])


EXCLUSION_COLUMNS = ["row_id", "study_id", "comparison", "outcome", "timepoint_weeks", "reason", "source_rows",
                     "note"]


PROCESSED_FILES = ("effects.csv", "exclusions.csv", "manifest.json")
GENERATOR = "mt_evidence.build.build_processed"  # a stable identifier in manifest.json, not a module path


def _legacy_processed(folder: Path, entries: list[str]) -> bool:
    """A folder written by a build before output folders carried an owner marker."""
    if not set(entries) <= set(PROCESSED_FILES) or "manifest.json" not in entries:
        return False
    try:
        return json.loads((folder / "manifest.json").read_text(encoding="utf-8")).get("generator") == GENERATOR
    except (OSError, ValueError, AttributeError):
        return False


def protected_inputs(ev: Evidence | None = None, data: str | Path | None = None) -> list[Path]:
    """Folders no output may replace, lie in or contain: the bundled raw evidence and the evidence being read."""
    from .io import bundled_data_dir

    out = []
    try:
        out.append(bundled_data_dir())
    except FileNotFoundError:
        pass
    if ev is not None and ev.source:
        out.append(Path(ev.source))  # a folder, or a workbook (then only the file itself)
    if data is not None:
        out.append(Path(data))
    return out


def check_build_output(out_dir: str | Path, ev: Evidence | None = None, data: str | Path | None = None) -> Path:
    """Refuse an output folder ``build`` may not replace (raises ``OutputRefused`` with the reason)."""
    return atomic.check_output_folder(out_dir, "build", protected=protected_inputs(ev, data),
                                       legacy=_legacy_processed)


BUILD_STEPS = 3  # progress messages build_processed sends: pairing, writing, done


def build_processed(ev: Evidence, out_dir: str | Path, config=None, progress=None) -> BuildResult:
    """Write ``effects.csv``, ``exclusions.csv`` and ``manifest.json`` to ``out_dir`` atomically (all or nothing).

    The output depends only on the raw data: the same raw files give byte-identical processed files.
    ``out_dir`` must be a folder ``build`` created (it holds an owner marker), an empty folder or a new one:
    any other folder, a file, the raw evidence or a folder containing it is refused with ``OutputRefused``
    before anything is computed, and is left unchanged.
    """
    say = progress or (lambda _msg: None)
    check_build_output(out_dir, ev)
    say("pairing arms and contrasts into effects")
    res = assemble(ev, config)
    say("writing data/processed")
    windows = _windows(config)
    manifest = {
        "raw_source": Path(ev.source).name,
        "raw_sha256": ev.data_hash,
        "rows": int(len(res.effects)),
        "primary_rows": int((res.effects["role"] == "primary").sum()),
        "windows_weeks": [{"name": w.name, "lower": w.lower, "upper": w.upper, "include_lower": w.include_lower,
                           "include_upper": w.include_upper} for w in windows],
        "orientation": "negative favours intervention1 on every outcome",
        "generator": GENERATOR,
    }
    files = {
        "effects.csv": csv_bytes(res.effects, PROCESSED_COLUMNS),
        "exclusions.csv": csv_bytes(res.exclusions, EXCLUSION_COLUMNS),
        "manifest.json": (json.dumps(manifest, indent=2, sort_keys=True) + "\n").encode(),
    }
    atomic.replace_owned_folder(out_dir, files, "build", protected=protected_inputs(ev), legacy=_legacy_processed)
    say("done")
    return res


__all__ = ["assemble", "build_processed", "check_build_output", "BuildResult", "arm_spread", "arm_spreads",
           "contrast_se", "contrast_ses", "orient", "intervention_rank", "difference_to_100", "protected_inputs"]

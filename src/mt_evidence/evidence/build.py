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
from itertools import combinations
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


def arm_spread(r: pd.Series) -> tuple[float, float, str]:
    """(se, sd, how) of an arm's mean from sd, se or CI; ``how`` is empty when sd and se are printed as such."""
    n = r["n"]
    if not pd.isna(r["sd"]):
        se = r["sd"] / np.sqrt(n) if not pd.isna(n) else np.nan
        return se, r["sd"], ""  # SE = SD / sqrt(n) is the ordinary computation, not a derived value
    if not pd.isna(r["se"]):
        sd = r["se"] * np.sqrt(n) if not pd.isna(n) else np.nan
        return r["se"], sd, "SD = SE * sqrt(n) (Cochrane Handbook 6.5.2.2)"
    if not pd.isna(r["ci_low"]) and not pd.isna(r["ci_high"]):
        if pd.isna(n):
            se = (r["ci_high"] - r["ci_low"]) / (2 * stats.norm.ppf(0.975))
            return se, np.nan, "SE = CI width / (2 x z 97.5% quantile) (n not known)"
        q = stats.t.ppf(0.975, n - 1) if n < 60 else stats.norm.ppf(0.975)
        se = (r["ci_high"] - r["ci_low"]) / (2 * q)
        dist = f"t({n - 1:g})" if n < 60 else "z"
        return se, se * np.sqrt(n), f"SE = CI width / (2 x {dist} 97.5% quantile); SD = SE * sqrt(n) (Handbook 6.5.2.2)"
    return np.nan, np.nan, ""


def contrast_se(r: pd.Series) -> tuple[float, str]:
    """(SE, how) of a printed between-group difference: printed SE; else from its CI (normal quantile at the CI's
    level); else from an exactly printed two-sided p-value (Cochrane Handbook 6.3.2; not from '<0.001')."""
    if not pd.isna(r["se"]):
        return float(r["se"]), ""
    if not pd.isna(r["ci_low"]) and not pd.isna(r["ci_high"]):
        level = r["ci_level"] if not pd.isna(r["ci_level"]) else 0.95
        q = stats.norm.ppf(1 - (1 - level) / 2)
        return float((r["ci_high"] - r["ci_low"]) / (2 * q)), f"SE = CI width / (2 x z {1 - (1 - level) / 2:.3f} quantile)"
    p = r.get("p_value")
    try:
        pv = float(str(p).strip()) if p is not None and str(p).strip()[:1] not in ("<", ">", "") else np.nan
    except ValueError:
        pv = np.nan
    if np.isfinite(pv) and 0 < pv < 1 and r["estimate"] != 0:
        return float(abs(r["estimate"]) / stats.norm.isf(pv / 2)), (
            f"SE = |estimate| / z(p/2) from the printed p = {p} (Cochrane Handbook 6.3.2; p is rounded, so the SE is "
            "approximate)")
    return np.nan, ""


def orient(diff: float, higher_is_worse: bool) -> float:
    """A difference oriented so that negative favours the first arm (sign flipped when higher is better)."""
    return diff if higher_is_worse else -diff


def difference_to_100(x: float, lo: float, hi: float) -> float:
    """A difference (or its SE) on an instrument scaled ``lo``-``hi`` in points on 0-100; NaN if the range is unknown."""
    if pd.isna(lo) or pd.isna(hi) or hi <= lo:
        return np.nan
    return x * 100.0 / (hi - lo)


def _pairs_from_arms(ev: Evidence) -> list[dict]:
    arms = ev.arms.copy()
    arms["role"] = arms["role"].fillna("primary")
    # change scores printed as baseline minus follow-up are re-signed to follow-up minus baseline
    flip = arms["change_sign"] == "baseline_minus_followup"
    arms.loc[flip, "mean"] = -arms.loc[flip, "mean"]
    arms.loc[flip, ["ci_low", "ci_high"]] = -arms.loc[flip, ["ci_high", "ci_low"]].to_numpy()
    arms.loc[flip, "derivation"] = [
        "; ".join(x for x in (d, "change printed as baseline minus follow-up; re-signed") if x)
        for d in arms.loc[flip, "derivation"].fillna("")
    ]
    arms["_row"] = arms.index + 2
    fname = Path(ev.files.get("arms", "arms.csv")).name
    keys = ["study_id", "outcome", "instrument", "timepoint_weeks", "value_type", "adjusted", "role"]
    out = []
    smd_jobs: list[tuple[int, float, float, float, float, float, float, bool]] = []
    usable = arms["mean"].notna() & (arms["timepoint_weeks"].isna() | (arms["timepoint_weeks"] > 0))
    g_all = arms[usable].reset_index(drop=True)
    records = g_all.to_dict("records")  # plain dicts: far faster than rows of a DataFrame
    for positions in g_all.groupby(keys, dropna=False, sort=True).indices.values():
        rows = [records[i] for i in positions]
        rows.sort(key=lambda r: (intervention_rank(r["intervention"], ev.vocabulary), r["arm"]))
        for a, b in combinations(rows, 2):
            hiw = bool(a["higher_is_worse"])
            se1, sd1, how1 = arm_spread(a)
            se2, sd2, how2 = arm_spread(b)
            diff = orient(a["mean"] - b["mean"], hiw)
            md_se = np.sqrt(se1**2 + se2**2)
            derivs = sorted({h for h in (how1, how2) if h})
            smd = smd_var = np.nan
            if not any(pd.isna(x) for x in (sd1, sd2, a["n"], b["n"])):  # computed below, all pairs at once
                smd_jobs.append((len(out), a["mean"], sd1, a["n"], b["mean"], sd2, b["n"], hiw))
            notes = [x for x in (a["note"], b["note"]) if x and not pd.isna(x)]
            out.append(
                dict(
                    study_id=a["study_id"], intervention1=a["intervention"], intervention2=b["intervention"],
                    arm1=a["arm"], arm2=b["arm"], outcome=a["outcome"], instrument=a["instrument"],
                    scale_min=a["scale_min"], scale_max=a["scale_max"], higher_is_worse=hiw,
                    timepoint_weeks=a["timepoint_weeks"], value_type=a["value_type"],
                    adjusted=bool(a["adjusted"]) if not pd.isna(a["adjusted"]) else False,
                    n1=a["n"], n2=b["n"], md=diff, md_se=md_se,
                    md100=difference_to_100(diff, a["scale_min"], a["scale_max"]),
                    md100_se=difference_to_100(md_se, a["scale_min"], a["scale_max"]), smd=smd, smd_var=smd_var,
                    source_kind="arms", source_rows=f"{fname}:{a['_row']};{fname}:{b['_row']}",
                    derived=bool(derivs) or _text(a["derivation"]) != "" or _text(b["derivation"]) != "",
                    derivation="; ".join(derivs + [x for x in (_text(a["derivation"]), _text(b["derivation"])) if x]),
                    role=a["role"], note=" | ".join(notes),
                )
            )
    if smd_jobs:
        j = np.array([x[1:7] for x in smd_jobs], dtype=float)
        es = effect_size("SMD", m1=j[:, 0], sd1=j[:, 1], n1=j[:, 2], m2=j[:, 3], sd2=j[:, 4], n2=j[:, 5])
        for (pos, *_rest, hiw), yi, vi in zip(smd_jobs, es["yi"], es["vi"]):
            out[pos]["smd"], out[pos]["smd_var"] = orient(float(yi), hiw), float(vi)
    return out


def _text(x) -> str:
    return "" if x is None or (isinstance(x, float) and np.isnan(x)) else str(x)


def _from_contrasts(ev: Evidence) -> list[dict]:
    con = ev.contrasts.copy()
    fname = Path(ev.files.get("contrasts", "contrasts.csv")).name
    out = []
    for i, r in zip(con.index, con.to_dict("records")):  # plain dicts: far faster than DataFrame rows
        role = r["role"] or "primary"
        if r["estimate_type"] != "MD":
            continue  # SMD/ratio contrasts are kept in the raw data; pooling them is not supported yet
        # put the more active intervention first
        flip_order = (intervention_rank(r["intervention1"], ev.vocabulary)
                      > intervention_rank(r["intervention2"], ev.vocabulary))
        est = r["estimate"] if r["direction_stored"] == "arm1_minus_arm2" else -r["estimate"]
        i1, i2, a1, a2, n1, n2 = (r["intervention1"], r["intervention2"], r["arm1"], r["arm2"], r["n1"], r["n2"])
        if flip_order:
            est, i1, i2, a1, a2, n1, n2 = -est, i2, i1, a2, a1, n2, n1
        hiw = bool(r["higher_is_worse"]) if not pd.isna(r["higher_is_worse"]) else True
        md = orient(est, hiw)
        note = r["note"] or ""
        if r["direction_stored"] == "not_stated" and role == "primary":
            role, note = "excluded", "the source does not say which way the difference runs. " + note
        if pd.isna(r["higher_is_worse"]) and role == "primary":
            role, note = "excluded", "the instrument's direction (higher worse or better) is not known. " + note
        se, how = contrast_se(r)
        derivation = [how] if how else []
        if r["derivation"]:
            derivation.append(r["derivation"])
        out.append(
            dict(
                study_id=r["study_id"], intervention1=i1, intervention2=i2, arm1=a1, arm2=a2, outcome=r["outcome"],
                instrument=r["instrument"], scale_min=r["scale_min"], scale_max=r["scale_max"], higher_is_worse=hiw,
                timepoint_weeks=r["timepoint_weeks"], value_type="contrast",
                adjusted=bool(r["adjusted"]) if not pd.isna(r["adjusted"]) else False, n1=n1, n2=n2, md=md,
                md_se=se, md100=difference_to_100(md, r["scale_min"], r["scale_max"]),
                md100_se=difference_to_100(se, r["scale_min"], r["scale_max"]), smd=np.nan, smd_var=np.nan,
                source_kind="contrasts", source_rows=f"{fname}:{i + 2}", derived=bool(derivation),
                derivation="; ".join(derivation), role=role, note=note.strip(),
            )
        )
    return out


@dataclass(frozen=True)
class BuildResult:
    effects: pd.DataFrame  # every assembled row, with role
    exclusions: pd.DataFrame  # rows not usable in the primary analyses, and why

    def primary(self) -> pd.DataFrame:
        return self.effects[self.effects["role"] == "primary"]


def _windows(config):
    """The follow-up windows of ``config`` (any settings object with ``windows``), or the packaged default."""
    return config.windows if config is not None else default_windows()


def assemble(ev: Evidence, config=None) -> BuildResult:
    """Assemble every comparison the evidence supports (see module docstring for the rules); follow-up windows
    come from the analysis configuration (default: the Cochrane Back and Neck group's)."""
    windows = _windows(config)
    rows = _pairs_from_arms(ev)
    arm_keys = {(r["study_id"], r["intervention1"], r["intervention2"], r["arm1"], r["arm2"], r["outcome"],
                 r["instrument"], r["timepoint_weeks"]) for r in rows if r["role"] == "primary"}
    for r in _from_contrasts(ev):
        key = (r["study_id"], r["intervention1"], r["intervention2"], r["arm1"], r["arm2"], r["outcome"],
               r["instrument"], r["timepoint_weeks"])
        if r["role"] == "primary" and key in arm_keys:
            r["role"] = "alternative"
            r["note"] = ("arm-level data of the same comparison are used instead; " + r["note"]).strip("; ")
        rows.append(r)
    df = pd.DataFrame(rows)
    if df.empty:
        df = pd.DataFrame(columns=PROCESSED_COLUMNS)
    df["window"] = [next((w.name for w in windows if w.contains(t)), None) for t in df["timepoint_weeks"]]
    df["comparison"] = [f"{a}_vs_{b}" for a, b in zip(df["intervention1"], df["intervention2"])]
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
                           "note"]].assign(reason=reason[listed]).to_dict("records")
    df.loc[no_time | no_se, "role"] = "excluded"
    excluded_studies = sorted(set(ev.studies["study_id"]) - set(df.loc[df["role"] == "primary", "study_id"]))
    for sid in excluded_studies:
        excl.append({"row_id": "", "study_id": sid, "comparison": "", "outcome": "", "timepoint_weeks": np.nan,
                     "reason": "no usable effect estimate in the raw data", "source_rows": "", "note": ""})
    return BuildResult(effects=df[PROCESSED_COLUMNS], exclusions=pd.DataFrame(excl, columns=EXCLUSION_COLUMNS))


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


__all__ = ["assemble", "build_processed", "check_build_output", "BuildResult", "arm_spread", "contrast_se", "orient",
           "intervention_rank", "difference_to_100", "protected_inputs"]

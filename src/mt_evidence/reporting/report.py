"""The clinician report: all rounding and wording for people; HTML (one self-contained file) and PDF.

``build_report`` loads the evidence, runs the analyses (windows, pooling, certainty, claims), draws the
figures, renders ``index.html`` with jinja2 (every string from data is escaped, links only to http(s)) and prints it to
``report.pdf`` with headless Chromium. Both, with ``claims.json``, are swapped into the output folder at once.
"""

from __future__ import annotations

import base64
import datetime as _dt
import io as _io
import json
import os
import platform
import shutil
from collections.abc import Callable
from dataclasses import dataclass, replace
from importlib import metadata
from pathlib import Path

import numpy as np
import pandas as pd
from jinja2 import Environment, PackageLoader, select_autoescape

from ..evidence import atomic
from ..evidence.io import Evidence, load_evidence
from ..evidence.export import csv_bytes
from ..evidence.links import safe_href, split_sources
from ..synthesis import analysis as A
from ..synthesis import claims as C
from ..synthesis import dose as D
from ..synthesis import harms as H
from ..synthesis import network as SN
from ..synthesis import multiverse as MV
from ..synthesis import grade
from ..synthesis.settings import ReportSettings, load_settings

REPORT_STEPS = 8  # progress messages build_report sends: load, pool, networks, draw, multiverse, write HTML, print PDF, done
WINDOW_WORDS = {"short": "at up to 3 months", "intermediate": "at 3 to 12 months", "long": "at 12 months or more"}
OUTCOME_WORDS = {"pain": "pain", "disability": "function and disability"}


@dataclass(frozen=True)
class ReportOutput:
    html_path: Path
    pdf_path: Path | None
    n_pooled: int
    n_trials: int


# ------------------------------------------------------------------------------------------------ tables


def _f(x, digits: int = 1, signed: bool = False) -> str:
    if x is None or not np.isfinite(x):
        return ""
    return f"{x:+.{digits}f}" if signed else f"{x:.{digits}f}"


def _participants(df: pd.DataFrame) -> str:
    ns = np.concatenate([df["n1"].to_numpy(float), df["n2"].to_numpy(float)])
    n = float(np.nansum(ns))
    if n <= 0:
        return "not reported"
    return f"{n:.0f}" if np.isfinite(ns).all() else f"at least {n:.0f}"


def outcome_words(vocabulary=None) -> dict[str, str]:
    """How the report names each outcome: the package's words, or a review's declared labels."""
    return OUTCOME_WORDS if vocabulary is None or vocabulary.is_default else dict(vocabulary.outcomes)


def primary_outcomes(vocabulary=None) -> tuple[str, ...]:
    """The outcomes the tables, figures and networks show (docs/methods.md section 18)."""
    return ("pain", "disability") if vocabulary is None or vocabulary.is_default else vocabulary.primary_outcomes


def summary_of_findings(ev: Evidence, settings: ReportSettings) -> list[dict]:
    """One GRADE summary-of-findings row per comparison x outcome x window (pain and disability).

    The absolute effect (points on 0-100) is the primary analysis; where no trial's instrument range is known,
    the row still appears with the SMD analysis and the certainty judged on it (imprecision then asks whether the
    CI includes no effect, as no important difference is set on the SMD scale). Each row carries the GRADE
    statement (docs/methods.md section 8); rows of an "any control" pool are marked as views.
    """
    cfg = settings.analysis
    md = A.comparison_frame(ev, cfg, measure="md100")
    smd = A.comparison_frame(ev, cfg, measure="smd")
    by_md = {(w.comparison, w.outcome, w.window): w for w in A.pool_windows(md, cfg)}
    by_smd = {(w.comparison, w.outcome, w.window): w for w in A.pool_windows(smd, cfg)}
    by_change = {(w.comparison, w.outcome, w.window): w
                 for w in A.pool_windows(A.comparison_frame(ev, cfg, measure="smd_change"), cfg)}
    vocab = ev.vocabulary
    words, primary = outcome_words(vocab), primary_outcomes(vocab)
    order = {c: i for i, c in enumerate(A.comparison_order(vocab))}
    worder = {w.name: i for i, w in enumerate(cfg.windows)}
    keys = sorted(set(by_md) | set(by_smd), key=lambda k: (order.get(k[0], 999), k[0], primary.index(k[1])
                                                            if k[1] in primary else 99, worder.get(k[2], 9)))
    rows = []
    for key in keys:
        comp, outcome, window = key
        if outcome not in primary:
            continue
        w_md, w_smd = by_md.get(key), by_smd.get(key)
        mid = cfg.important_difference.get(outcome)
        main = w_md or w_smd
        threshold = mid if w_md else None  # no MID set for an outcome: judged on whether the CI excludes none
        cert = grade.certainty(grade.propose(main.studies, main.result, threshold), key, settings.overrides)
        rel = "not computable (no trial gives both arms' SD)"
        if w_smd is not None:
            sm = w_smd.studies
            if w_md is not None:  # the same trials as the MD, where they give an SMD
                sm = sm[sm["study_id"].isin(set(w_md.studies["study_id"]))]
            if len(sm):
                rs = A.pool_analysis(sm["yi"].to_numpy(float), sm["vi"].to_numpy(float), list(sm["study_id"]), cfg)
                of = f" of the {w_md.result.k}" if w_md is not None and rs.k < w_md.result.k else ""
                rel = (f"SMD {_f(rs.estimate, 2)} ({_f(rs.ci_low, 2)} to {_f(rs.ci_high, 2)}); {rs.k}{of} trial(s)"
                       + (" (the others give no final-value SDs)" if of else ""))
        change = ""
        if (wc := by_change.get(key)) is not None:  # a separate analysis, never pooled with final values
            rc = wc.result
            change = (f"change scores: SMD {_f(rc.estimate, 2)} ({_f(rc.ci_low, 2)} to {_f(rc.ci_high, 2)}); "
                      f"{rc.k} trial(s)")
            rel = change if rel.startswith("not computable") else f"{rel}; {change}"
        if w_md is not None:
            r = w_md.result
            absolute = f"{_f(r.estimate, 1, True)} points ({_f(r.ci_low)} to {_f(r.ci_high)})"
        else:
            absolute = "not computable: the instruments' ranges are not printed in the sources read"
        st = main.studies
        instruments = sorted(set(st["instrument"]))
        if len(instruments) == 1 and st["md"].notna().all() and st["md_se"].notna().all():
            ro = A.pool_analysis(st["md"].to_numpy(float), st["md_se"].to_numpy(float) ** 2, list(st["study_id"]),
                                 cfg)
            original = f"{_f(ro.estimate, 2, True)} ({_f(ro.ci_low, 2)} to {_f(ro.ci_high, 2)}) on {instruments[0]}"
        else:
            original = "several instruments: " + "; ".join(instruments)
        first, second = A.labels_of(comp, vocab)
        mr = main.result
        category = grade.size_category(mr.estimate, mr.ci_low, mr.ci_high, threshold)
        statement = grade.statement(category, cert.level, words[outcome], first, second,
                                    WINDOW_WORDS.get(window, ""))
        if threshold is None and category == "shown":
            statement += (" (no important difference is set for this outcome)" if w_md is not None else
                          " (its size against an important difference cannot be judged on the SMD scale)")
        rows.append({
            "comparison": f"{first} vs {second}", "comparison_id": comp, "outcome": outcome,
            "window": window, "window_label": cfg.window(window).label, "k": A.trial_count(st["study_id"]),
            "comparisons": mr.k,
            "participants": _participants(st), "relative": rel, "change_score_smd": change, "absolute": absolute,
            "has_absolute": w_md is not None, "view": comp in A.views_of(vocab),
            "estimate": mr.estimate, "ci_low": mr.ci_low, "ci_high": mr.ci_high,
            "measure": "MD on 0-100" if w_md is not None else "SMD",
            "mid": f"{mid:g}" if (mid is not None and w_md is not None) else "",
            "category": category, "statement": statement,
            "original": original, "certainty": cert.level, "symbol": cert.symbol, "reasons": cert.reasons(),
            "certainty_if_unassessed_low": cert.level_if_unassessed_low or "",
            "overridden": any(j.overridden for j in cert.judgements),
            "notes": list(mr.notes),
            "studies": ", ".join(st["study_id"]),
        })
    return rows


def _letters(i: int) -> str:
    out = ""
    i += 1
    while i:
        i, r = divmod(i - 1, 26)
        out = chr(97 + r) + out
    return out


def sof_tables(sof: list[dict]) -> list[dict]:
    """The summary-of-findings rows grouped by comparison, GRADE layout: the reasons for rating down become
    footnotes of each table (a letter per distinct reason, shown beside the certainty), not text in the cells."""
    tables = []
    for label in dict.fromkeys(r["comparison"] for r in sof):
        rows = [dict(r) for r in sof if r["comparison"] == label]
        notes: dict[str, str] = {}
        for r in rows:
            texts = list(r["reasons"])
            if r["certainty_if_unassessed_low"] and r["certainty_if_unassessed_low"] != r["certainty"]:
                texts.append(f"{r['certainty_if_unassessed_low']} certainty if the trials without a risk-of-bias "
                             "judgement were at low risk")
            r["foot"] = []
            for t in texts:
                if t not in notes:
                    notes[t] = _letters(len(notes))
                r["foot"].append(notes[t])
        tables.append({"comparison": label, "comparison_id": rows[0].get("comparison_id", ""), "rows": rows,
                       "view": all(r["view"] for r in rows),
                       "footnotes": [{"letter": v, "text": k} for k, v in notes.items()]})
    return tables


KEY_ORDER = ["combined_vs_exercise", "manual_therapy_vs_sham", "manual_therapy_vs_pragmatic",
             "manual_therapy_vs_exercise", "exercise_vs_sham", "exercise_vs_pragmatic", "combined_vs_sham",
             "combined_vs_pragmatic", "combined_vs_manual_therapy", "manipulation_vs_mobilisation"]


def claim_comparisons(claims: list[C.ClaimResult], window: str | None = None) -> set[str]:
    """The comparisons the claims' direct tests use (those of ``window`` only, when given), with the
    comparisons they are set against (``minus``)."""
    out: set[str] = set()
    for cr in claims:
        for t in cr.claim.tests:
            if t.context or (window is not None and t.window != window):
                continue
            out.add(t.comparison)
            if t.minus:
                out.add(t.minus)
    return out


def split_body(sof_groups: list[dict], figures: list[dict], claims: list[C.ClaimResult]) -> dict:
    """What the body shows and what goes to the appendix (docs/methods.md: the body answers the claims): the
    summary-of-findings tables of the comparisons the claims test, and the short-and-long forest plots of the
    comparisons the durability claims test; everything else after the body."""
    tested, durable = claim_comparisons(claims), claim_comparisons(claims, "short_vs_long")
    body_sof = [g for g in sof_groups if g["comparison_id"] in tested and not g["view"]]
    more_sof = [g for g in sof_groups if g not in body_sof]
    body_fig = [f for f in figures if f["kind"] == "short_vs_long" and any(f["name"].startswith(c) for c in durable)]
    more_fig = [f for f in figures if f not in body_fig]
    return {"sof_groups": body_sof, "sof_more": more_sof, "figures": body_fig, "figures_more": more_fig}


def key_messages(sof: list[dict], claims: list[C.ClaimResult], vocabulary=None) -> list[str]:
    """Plain-language GRADE statements with their numbers, most relevant first (no "any control" views)."""
    by = {(r["comparison_id"], r["outcome"], r["window"]): r for r in sof}
    msgs = []
    default = vocabulary is None or vocabulary.is_default
    if default and not any(k[0] == "combined_vs_exercise" and r["has_absolute"] for k, r in by.items()):
        msgs.append("What manual therapy adds to exercise cannot be measured yet: no trial in this evidence "
                    "compares manual therapy plus exercise with the same exercise alone on a 0-100 scale.")
    order = KEY_ORDER if default else [c for c in A.comparison_order(vocabulary) if c not in A.views_of(vocabulary)]
    for comp in order:
        for outcome in primary_outcomes(vocabulary):
            for window in ("short", "long"):
                r = by.get((comp, outcome, window))
                if r is None or not r["has_absolute"]:
                    continue
                people = (f"{r['participants']} participants" if r["participants"] != "not reported"
                          else "participants not reported")
                msgs.append(f"{r['statement']} {r['absolute']} on a 0-100 scale; important difference "
                            f"{r['mid']} points ({r['k']} trial(s), {people}; {r['certainty']} certainty).")
    counts = {v: sum(1 for c in claims if c.verdict == v) for v in C.VERDICTS}
    if not claims:
        msgs.append("No claims were set for this review: the tables give what the trials show, without verdicts.")
        return msgs
    msgs.append(f"Of the {len(claims)} clinic claims checked, {counts[C.SUPPORTED]} are supported, "
                f"{counts[C.PARTLY]} partly supported, {counts[C.NOT_SUPPORTED]} not supported, "
                f"{counts[C.UNCERTAIN]} remain uncertain and {counts[C.NOT_TESTABLE]} cannot be tested with this "
                "evidence.")
    return msgs


VERDICT_ICONS = {C.SUPPORTED: "✓", C.PARTLY: "◐", C.NOT_SUPPORTED: "✗", C.UNCERTAIN: "?", C.NOT_TESTABLE: "–"}


def _first_sentence(text: str) -> str:
    text = str(text).strip()
    if not text:
        return ""
    first = text.split(". ")[0].rstrip(".") + "."
    return first[0].upper() + first[1:]


def scoreboard(results: list[C.ClaimResult]) -> list[dict]:
    """Page one: per claim, the verdict (icon and word), the certainty of the analysis that decided it, and one
    line of why, taken from that analysis (its GRADE statement, or why it could not be run; when no direct
    analysis could be run but an indirect one was, that this is so and which)."""
    rows = []
    for cr in results:
        direct = [t for t in cr.tests if not t.test.context]
        ran = [t for t in direct if t.verdict != C.NOT_TESTABLE]
        decisive = None
        if cr.verdict in (C.SUPPORTED, C.NOT_SUPPORTED):
            decisive = next((t for t in ran if t.verdict == cr.verdict), None)
        elif cr.verdict == C.PARTLY:
            decisive = next((t for t in ran if t.verdict == C.SUPPORTED), None)
        elif ran:
            order = {"high": 0, "moderate": 1, "low": 2, "very low": 3}
            decisive = min(ran, key=lambda t: order.get(t.certainty.level if t.certainty else "", 9))
        indirect = [t for t in cr.tests if t.test.context and t.verdict != C.NOT_TESTABLE]
        if decisive is not None:
            why = _first_sentence(decisive.statement or decisive.explanation)
        elif direct and indirect:  # uncertain: only an indirect answer could be run, and it cannot decide
            names = "; ".join(t.test.describe() for t in indirect)
            one = len(indirect) == 1
            why = (f"No direct comparison could be run; the only {'one' if one else 'ones'} that could, {names}, "
                   f"{'is' if one else 'are'} indirect and cannot decide the claim.")
        elif direct:
            why = _first_sentence(direct[0].explanation)
        else:
            why = _first_sentence(cr.claim.not_testable or cr.explanation)
        n_ran = len(ran)
        rows.append({
            "id": cr.claim.id, "claim": cr.claim.text, "verdict": cr.verdict, "icon": VERDICT_ICONS[cr.verdict],
            "css": verdict_css(cr.verdict),
            "certainty": decisive.certainty.level if decisive is not None and decisive.certainty else "–",
            "why": why, "coverage": f"{n_ran} of {len(direct)} analyses could be run" if direct else "",
        })
    return rows


def _by_window(networks: dict, config: A.AnalysisConfig, outcome: str, over_time: dict | None) -> dict:
    """{window: results the network plots read}: the joint model over time where it was fitted (its effects in
    each window), else each window's own network."""
    na = (over_time or {}).get(outcome)
    if na is not None and na.fitted:
        r = na.result
        return {w.name: (r.at(w.name) if w.name in r.times else None) for w in config.windows}
    return {w.name: (networks[(outcome, w.name)].result if (outcome, w.name) in networks
                     and networks[(outcome, w.name)].fitted else None) for w in config.windows}


def glance_figure(networks: dict, config: A.AnalysisConfig, over_time: dict | None = None, vocabulary=None) -> str:
    """Page one's figure as a data URI ("" when no network has usual care): each care against usual care by
    window, from the joint model over time where it was fitted (docs/methods.md section 16)."""
    import matplotlib

    matplotlib.use("Agg")
    from . import plots as P

    if vocabulary is not None and not vocabulary.is_default:
        return ""  # each care against usual care: the package's own question
    by = {o: _by_window(networks, config, o, over_time) for o in ("pain", "disability")}
    if not any(r is not None and "usual_care" in r.treatments for d in by.values() for r in d.values()):
        return ""
    fig = P.plot_glance(by, [(w.name, w.label, w.target) for w in config.windows], mids=config.important_difference,
                        labels=SN.NODE_LABELS, outcome_titles=OUTCOME_WORDS)
    return _png(fig)


def verdict_css(verdict: str) -> str:
    return {C.SUPPORTED: "supported", C.PARTLY: "partly", C.NOT_SUPPORTED: "not", C.UNCERTAIN: "uncertain",
            C.NOT_TESTABLE: "untestable"}.get(verdict, "uncertain")


CATEGORY_WORDS = {"benefit": "an important benefit", "little": "little or no difference", "harm": "an important harm",
                  "shown": "an effect (CI excludes none)", "unclear": "no clear effect"}


def multiverse_texts(summary: pd.DataFrame, digits: int = 1) -> dict[tuple[str, str, str], dict]:
    """{(comparison, outcome, window): {"text", "flips"}}: how many combinations of analysis choices agree with
    the plan's size category (docs/methods.md section 19), in one short sentence."""
    out = {}
    for r in summary.itertuples():
        rng = f"estimates {_f(r.estimate_min, digits, True)} to {_f(r.estimate_max, digits, True)}"
        if r.flips:
            others = ", ".join(f"{CATEGORY_WORDS.get(c.rsplit(' (', 1)[0], c)} in {c.rsplit(' (', 1)[1].rstrip(')')}"
                               for c in r.other_categories.split("; "))
            text = (f"Multiverse: {r.n_same} of {r.n_specs} combinations of analysis choices agree; {others} "
                    f"(the conclusion changes under some reasonable choices; {rng}).")
        else:
            text = f"Multiverse: all {r.n_specs} combinations of analysis choices agree ({rng})."
        out[(r.comparison, r.outcome, r.window)] = {"text": text, "flips": bool(r.flips)}
    return out


def claim_multiverse(cr: C.ClaimResult, texts: dict) -> dict:
    """One line per claim (the one print shows): whether the conclusions of its direct analyses hold under every
    combination of analysis choices (docs/methods.md section 19)."""
    keys = [(t.test.comparison, t.test.outcome, t.test.window) for t in cr.tests if not t.test.context]
    found = [texts[k] for k in keys if k in texts]
    if not found:
        return {"multiverse": "", "multiverse_flips": False}
    flips = sum(f["flips"] for f in found)
    if not flips:
        return {"multiverse": f"Multiverse: the conclusions of its {len(found)} pooled analyses hold under every "
                              "combination of reasonable analysis choices.", "multiverse_flips": False}
    return {"multiverse": f"Multiverse: {flips} of its {len(found)} pooled conclusions change under some reasonable "
                          "analysis choices (appendix).", "multiverse_flips": True}


def claims_rows(results: list[C.ClaimResult], network: dict | None = None,
                multiverse: dict | None = None) -> list[dict]:
    rows = []
    for cr in results:
        rows.append({
            "id": cr.claim.id, "text": cr.claim.text, "verdict": cr.verdict, "explanation": cr.explanation,
            "css": verdict_css(cr.verdict),
            "subgroup_tests": [d["text"] for d in cr.subgroup_tests],
            "context": [d["text"] for d in cr.context],
            "tests": [{"analysis": t.test.describe() + (" [context: an indirect answer]" if t.test.context else ""),
                       "verdict": t.verdict, "detail": t.explanation,
                       "why": t.test.why, "css": verdict_css(t.verdict),
                       "network": (network or {}).get((t.test.comparison, t.test.outcome, t.test.window), ""),
                       "multiverse": (multiverse or {}).get((t.test.comparison, t.test.outcome, t.test.window)),
                       "reasons": t.certainty.reasons() if t.certainty else [],
                       "both_ways": (t.certainty.level_if_unassessed_low
                                     if t.certainty and t.certainty.level_if_unassessed_low != t.certainty.level
                                     else "")} for t in cr.tests],
            **claim_multiverse(cr, multiverse or {}),
        })
    return rows


def fade_table(frame: pd.DataFrame, config: A.AnalysisConfig, vocabulary=None) -> list[dict]:
    """Does the effect fade or grow? One row per comparison x outcome with trials in both windows: the change
    within trials, at the assumed correlation and over the sensitivity range, and the model over every trial of
    either window with a between-trial variance per window and t-based inference (3 or more trials). The naive
    subgroup test and the random-intercept model (the same heterogeneity in both windows, Wald z) are not shown
    to clinicians (docs/methods.md section 10); they stay in notebook 2."""
    rows = []
    for comp in A.comparison_order(vocabulary):
        if comp in A.views_of(vocabulary):
            continue
        for outcome in primary_outcomes(vocabulary):
            sl = A.short_vs_long(frame, comp, outcome, config)
            if sl.within is None:
                continue
            w = sl.within
            s = sl.sensitivity
            first, second = A.labels_of(comp, vocabulary)
            model = "fewer than 3 trials: not fitted"
            if sl.window_model is not None:
                c = sl.window_model.coefficients.loc["long"]
                model = (f"{_f(c['estimate'], 1, True)} ({_f(c['ci_low'])} to {_f(c['ci_high'])}); "
                         f"{sl.window_model.n_groups} trials")
            rows.append({
                "comparison": f"{first} vs {second}", "outcome": outcome,
                "within": f"{_f(w.estimate, 1, True)} ({_f(w.ci_low)} to {_f(w.ci_high)}); {w.k} trial(s)",
                "range": f"{_f(s['ci_low'].min())} to {_f(s['ci_high'].max())}",
                "notes": "; ".join(w.notes), "model": model,
            })
    return rows


SENSITIVITY_LABELS = {
    "primary": "as analysed", "common_effect": "common-effect model", "random_z": "random effects, z interval",
    "low_risk_of_bias": "trials at low risk of bias only", "without_mckenzie": "without McKenzie-method trials", "no_derived_values": "no derived values",
    "unadjusted_only": "unadjusted estimates only", "final_values_only": "final values only (no change scores)",
    "printed_ranges_only": "instrument ranges printed in the sources only",
}


def sensitivity_label(name: str) -> str:
    """The report's words for a sensitivity analysis of :func:`~mt_evidence.synthesis.analysis.sensitivity`."""
    if name.startswith("other_range "):
        return f"instruments whose range is in doubt taken as {name.split(' ', 1)[1]}"
    return SENSITIVITY_LABELS.get(name, name)


def sensitivity_rows(frame: pd.DataFrame, config: A.AnalysisConfig, vocabulary=None) -> list[dict]:
    """For every analysis with 2 or more trials (no "any control" views): the estimate under each sensitivity
    analysis, and whether the GRADE size category (important benefit, little or no difference, harm) changes."""
    out = []
    used = frame[frame["used"] & frame["outcome"].isin(list(primary_outcomes(vocabulary)))]
    for (comp, outcome, window), g in used.groupby(["comparison", "outcome", "window"], sort=True):
        if comp in A.views_of(vocabulary) or len(g) < 2:
            continue
        s = A.sensitivity(frame, comp, outcome, window, config)
        mid = config.important_difference.get(outcome)
        prim = s.iloc[0]
        cat0 = grade.size_category(prim["estimate"], prim["ci_low"], prim["ci_high"], mid)
        first, second = A.labels_of(comp, vocabulary)
        variants = []
        for r in s.itertuples():
            if r.analysis == "primary":
                continue
            if r.k == 0:
                variants.append({"name": sensitivity_label(r.analysis), "result": "no trial qualifies",
                                 "flips": False})
                continue
            cat = grade.size_category(r.estimate, r.ci_low, r.ci_high, mid)
            variants.append({"name": sensitivity_label(r.analysis),
                             "result": f"{_f(r.estimate, 1, True)} ({_f(r.ci_low)} to {_f(r.ci_high)}); {r.k} trial(s)",
                             "flips": cat != cat0})
        out.append({"analysis": f"{first} vs {second}, {outcome_words(vocabulary)[outcome]}, "
                                f"{config.window(window).label}",
                    "primary": f"{_f(prim['estimate'], 1, True)} ({_f(prim['ci_low'])} to {_f(prim['ci_high'])}); "
                               f"{int(prim['k'])} trial(s)", "variants": variants})
    return out


def multiverse_rows(summary: pd.DataFrame, config: A.AnalysisConfig, vocabulary=None) -> list[dict]:
    """The multiverse table of the sensitivity section: one row per analysis (docs/methods.md section 19)."""
    words = outcome_words(vocabulary)
    out = []
    for r in summary.itertuples():
        if r.outcome not in primary_outcomes(vocabulary):
            continue
        first, second = A.labels_of(r.comparison, vocabulary)
        out.append({"analysis": f"{first} vs {second}, {words.get(r.outcome, r.outcome)}, "
                                f"{config.window(r.window).label}",
                    "agree": f"{r.n_same} of {r.n_specs}", "range": f"{_f(r.estimate_min, 1, True)} to "
                                                                     f"{_f(r.estimate_max, 1, True)}",
                    "flips": bool(r.flips), "others": r.other_categories})
    return out


def limitations(ev: Evidence, frame: pd.DataFrame, sof: list[dict]) -> list[str]:
    used = frame.loc[frame["used"].astype(bool)]
    out = []
    ks = [r["k"] for r in sof]
    if ks:
        out.append(f"Few trials: each pooled result rests on {min(ks)} to {max(ks)} trial(s) "
                   f"({sum(1 for k in ks if k == 1)} of {len(ks)} results on a single trial).")
    n_abs = sum(1 for s in ev.studies.itertuples() if "abstract" in str(s.note).lower())
    if n_abs:
        out.append(f"{n_abs} of {len(ev.studies)} trial notes say only the abstract could be read, so those trials "
                   "give few numbers. Missing values were left missing, never guessed.")
    if used["adjusted"].any():
        out.append(f"{int(used['adjusted'].sum())} of the {len(used)} effects used are model-adjusted estimates "
                   "as printed, pooled with unadjusted ones (see the sensitivity analyses in notebook 3).")
    if used["derived"].any():
        out.append(f"{int(used['derived'].sum())} effects needed a derived value (an SD from an SE or CI, an SE "
                   "from a CI or p-value); each derivation is stated in data/processed.")
    out.append(rob_summary(ev))
    excl = ev.contrasts[ev.contrasts["direction_stored"] == "not_stated"]["study_id"].nunique()
    out.append(f"{excl} trial(s) report differences without saying which way they run; those results are left "
               "out rather than guessed.")
    harms = getattr(ev, "harms", None)
    n_harm = harms["study_id"].nunique() if harms is not None and len(harms) else 0
    if n_harm == 0:
        out.append("No trial in this evidence reports adverse events per arm, so safety cannot be judged from it.")
    else:
        defined = harms["definition"].astype(str).str.strip().replace("nan", "").str.len().gt(0) \
            if "definition" in harms else pd.Series(False, harms.index)
        out.append(f"Adverse events: {n_harm} of {len(ev.studies)} trials report them per arm in the sources read "
                   f"({int(defined.sum())} of {len(harms)} counts with a definition of what counted); trials of "
                   "this size cannot rule out rare serious harms.")
    arms_used = frame.loc[frame["used"].astype(bool)]
    in_doubt = arms_used[arms_used.get("range_assumed", pd.Series("", arms_used.index)).astype(str).str.len() > 0]
    if len(in_doubt):
        trials = sorted(set(in_doubt["study_id"].str.replace(r" [(].*$", "", regex=True)))
        out.append(f"{len(trials)} trial(s) ({', '.join(trials)}) do not say which version of their instrument they "
                   f"used ({'; '.join(sorted(set(in_doubt['range_assumed'])))}); the sensitivity analyses show the "
                   "result on the other range and without them.")
    return out


def rob_summary(ev: Evidence) -> str:
    """One sentence: how many trials have an overall risk-of-bias judgement, from which basis, and how they fall."""
    st = ev.studies
    judged = st["rob_overall"].map(lambda x: isinstance(x, str) and bool(x))
    basis = st.get("rob_basis", pd.Series("", st.index)).fillna("")
    n_pub, n_own = int((judged & basis.eq("published")).sum()), int((judged & basis.eq("review_own")).sum())
    counts = st.loc[judged, "rob_overall"].value_counts()
    fall = ", ".join(f"{int(counts[k])} {k.replace('_', ' ')}" for k in ("low", "some_concerns", "unclear", "high")
                     if k in counts)
    pub_dom = ev.rob[ev.rob["basis"].astype(object).ne("review_own")]["study_id"].nunique() if len(ev.rob) else 0
    text = (f"Risk of bias: {int(judged.sum())} of {len(st)} trials have an overall judgement ({fall}): "
            f"{n_pub} published, {n_own} from this review's own RoB 2 assessment by two independent readers from "
            "the trials' stored pages (mostly abstracts, so many domains rest on no information)")
    if pub_dom:
        text += f"; {pub_dom} trials also have published judgements of some domains"
    rest = len(st) - int(judged.sum())
    text += "." if not rest else (f"; {rest} not assessed, counted as at risk (where that changes the certainty, "
                                  "the certainty they would give at low risk is shown beside it).")
    return text


def _readers(r) -> str:
    """The two readers' judgements of one domain of the review's own RoB 2, and the consensus note if they differ."""
    if r.domain == "overall":
        return ""
    a, b = (str(x).replace("_", " ") if isinstance(x, str) else "" for x in (r.reader1, r.reader2))
    if a == b:
        return f"both readers: {a}"
    note = r.consensus_note if isinstance(r.consensus_note, str) else ""
    return f"readers: {a} / {b}; consensus: {note}"


def _not_assessed_reason(rob: pd.DataFrame) -> str:
    notes = [n for j, n in zip(rob.get("judgement", []), rob.get("note", [])) if j == "not_assessed" and isinstance(n, str)]
    return notes[0] if notes else "no published judgement was found and the review's own assessment has not been made"


def safety_section(ev: Evidence, harms: H.HarmsResult) -> dict:
    """The safety section: what the trials counted, the pooled comparisons (Mantel-Haenszel risk ratio and risk
    difference, Peto's odds ratio as a sensitivity analysis), how common each event was with manual therapy
    (Freeman-Tukey, REML), the plain sentence on rare serious harms, and every trial's counts with its definition
    (docs/methods.md section 13)."""
    def ci(r, ratio=True):
        if r is None or not np.isfinite(r.estimate):
            return "not estimable (too few events)"
        if ratio:
            return f"{r.ratio:.2f} ({r.ratio_ci_low:.2f} to {r.ratio_ci_high:.2f})"
        return f"{100 * r.estimate:+.1f} ({100 * r.ci_low:.1f} to {100 * r.ci_high:.1f})"

    pooled = []
    for a in harms.analyses:
        t = a.tables
        pooled.append({"what": a.label, "k": a.k,
                       "with": f"{int(t['events1'].sum())} / {int(t['n1'].sum())}",
                       "without": f"{int(t['events2'].sum())} / {int(t['n2'].sum())}",
                       "rr": ci(a.rr), "rd": ci(a.rd, ratio=False), "peto": ci(a.peto),
                       "trials": ", ".join(t["study_id"])})
    props = []
    for etype, p in harms.proportions.items():
        props.append({"what": H.EVENT_LABELS.get(etype, etype), "k": p.fit.k,
                      "estimate": f"{100 * p.proportion:.1f}% ({100 * p.ci_low:.1f} to {100 * p.ci_high:.1f})"})
    rows = []
    h = ev.harms if ev.harms is not None else pd.DataFrame()
    for r in h.sort_values(["study_id", "event_type", "arm"]).itertuples() if len(h) else []:
        count = ("not counted" if pd.isna(r.events) else
                 f"{r.events:.0f}" + ("" if pd.isna(r.n) else f" of {r.n:.0f}") + f" {r.unit}")
        rows.append({"study_id": r.study_id, "arm": f"{r.arm} ({r.intervention})",
                     "event": H.EVENT_LABELS.get(r.event_type, r.event_type), "count": count,
                     "definition": r.definition if isinstance(r.definition, str) and r.definition else "not stated",
                     "href": safe_href(r.source_url), "url": r.source_url})
    n_trials = int(h["study_id"].nunique()) if len(h) else 0
    counted = int(H.usable(h)["study_id"].nunique()) if len(h) else 0
    return {"pooled": pooled, "proportions": props, "rows": rows, "serious": H.serious_sentence(harms.serious),
            "n_trials": n_trials, "n_counted": counted, "n_all": len(ev.studies)}


def provenance(ev: Evidence) -> list[dict]:
    """Per trial: citation, links, and every number's source (for the 'where every number came from' list)."""
    out = []
    for s in ev.studies.sort_values("study_id").itertuples():
        rows = []
        for t, df in (("arm", ev.arms), ("contrast", ev.contrasts)):
            for _, r in df[df["study_id"] == s.study_id].iterrows():
                if t == "arm":
                    what = f"{r['arm']} ({r['intervention']}), {r['outcome']}, {r['instrument']}"
                    vals = ", ".join(f"{k} {r[k]:g}" for k in ("n", "mean", "sd", "se", "ci_low", "ci_high", "median")
                                     if not pd.isna(r[k]))
                else:
                    what = f"{r['arm1']} vs {r['arm2']}, {r['outcome']}, {r['instrument']}"
                    vals = ", ".join(f"{k} {r[k]:g}" for k in ("estimate", "se", "ci_low", "ci_high", "n1", "n2")
                                     if not pd.isna(r[k]))
                wk = "" if pd.isna(r["timepoint_weeks"]) else f"week {r['timepoint_weeks']:g}"
                rows.append({"what": what, "when": wk, "numbers": vals, "url": r["source_url"],
                             "href": safe_href(r["source_url"]),
                             "where": r["source_location"], "role": r["role"] or "primary"})
        mine = ev.rob[ev.rob["study_id"] == s.study_id] if len(ev.rob) else ev.rob
        own = mine["basis"].astype(object).eq("review_own").to_numpy(bool) if len(mine) else np.zeros(0, bool)
        rob = [{"domain": r.domain, "judgement": r.judgement_printed or r.judgement, "tool": r.tool,
                "url": r.source_url, "href": safe_href(r.source_url), "review": r.review_citation}
               for r in mine[~own].itertuples()]
        rob_own = [{"domain": r.domain, "judgement": r.judgement.replace("_", " "), "readers": _readers(r),
                    "url": r.source_url, "href": safe_href(r.source_url)}
                   for r in mine[own].itertuples()]
        basis = getattr(s, "rob_basis", "") or ""
        overall = s.rob_overall if isinstance(s.rob_overall, str) and s.rob_overall else ""
        out.append({"study_id": s.study_id, "citation": s.citation, "rob": rob, "rob_own": rob_own,
                    "rob_overall": overall.replace("_", " "), "rob_basis": basis,
                    "rob_reason": "" if overall else _not_assessed_reason(mine), "doi": s.doi, "pmid": s.pmid,
                    "population": s.population, "n": "" if pd.isna(s.n_randomised) else f"{s.n_randomised:.0f}",
                    "sources": [{"text": u, "href": safe_href(u)} for u in split_sources(s.sources)], "rows": rows})
    return out


# ----------------------------------------------------------------------------------------------- figures


def embedded_figures(ev: Evidence, config: A.AnalysisConfig, kinds=("short_vs_long", "forest_subgroups", "rob"),
                     dpi: int = 110, measure: str = "md100") -> list[dict]:
    """The report's figures as base64 PNG data URIs with titles and alt texts (no network requests). An "any
    control" pool appears only as its forest plot by control type, with the test for subgroup differences."""
    import matplotlib

    matplotlib.use("Agg")

    from .figures import figure_specs

    out = []
    for name, kind, title, alt, draw in figure_specs(ev, config, measure):
        if kind not in kinds:
            continue
        if kind == "short_vs_long" and any(name.startswith(v) for v in A.views_of(ev.vocabulary)):
            continue
        out.append({"name": name, "kind": kind, "title": title, "alt": alt, "src": _png(draw(), dpi)})
    return out


# ------------------------------------------------------------------------------------------------ network


def _png(fig, dpi: int = 110) -> str:
    """``fig`` as a base64 PNG data URI (closed after; no date or software in the file, so the bytes repeat)."""
    import matplotlib.pyplot as plt

    buf = _io.BytesIO()
    fig.savefig(buf, format="png", dpi=dpi, bbox_inches="tight", metadata={"Software": None})
    plt.close(fig)
    return "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode("ascii")


def analyse_networks(ev: Evidence, config: A.AnalysisConfig, frame: pd.DataFrame) -> dict:
    """{(outcome, window): NetworkAnalysis} for the primary outcomes in every window (docs/methods.md 16)."""
    return {(o, w.name): SN.analyse_network(ev, o, w.name, config, frame)
            for o in primary_outcomes(ev.vocabulary) for w in config.windows}


def _ci(e: float, lo: float, hi: float, digits: int = 1) -> str:
    return f"{_f(e, digits, True)} ({_f(lo, digits)} to {_f(hi, digits)})"


def network_rows(networks: dict, config: A.AnalysisConfig, figures: bool = True,
                 over_time: dict | None = None, vocabulary=None) -> list[dict]:
    """One block per outcome: the effect-over-time figure, and per window the network's numbers, consistency,
    additive component model, P-scores with their caveat, figures and what was left out."""
    import matplotlib

    matplotlib.use("Agg")
    from . import plots as P

    L = SN.node_labels(vocabulary)
    words = outcome_words(vocabulary)
    out = []
    for outcome in primary_outcomes(vocabulary):
        mid = config.important_difference.get(outcome)
        block = {"outcome": words[outcome], "windows": [], "over_time": None}
        by_window = {}
        for w in config.windows:
            na = networks.get((outcome, w.name))
            if na is None:
                continue
            by_window[w.name] = na.result if na.fitted and na.result.k >= 2 else None
            row = {"window": w.label, "left_out": [f"{d['study'] or d['what']}: {d['why']}" for d in na.left_out]}
            if not na.fitted or na.result.k < 2:
                row["reason"] = (na.reason or f"{0 if na.result is None else na.result.k} trial: no network")
                block["windows"].append(row)
                continue
            r = na.result
            eff = r.relative_effects
            row.update(
                reference=L.get(r.reference, r.reference), k=r.k, tau2=f"{r.tau2:.2f}",
                q=f"Q = {r.q:.2f} on {r.df} df" + (f" (p = {r.q_p:.3f})" if r.df > 0 else ""),
                effects=[{"treatment": L.get(e.treatment, e.treatment),
                          "estimate": _ci(e.estimate, e.ci_low, e.ci_high)} for e in eff.itertuples()
                         if e.treatment != r.reference],
                notes=[])
            nodes, _ = r.graph()
            single = [L.get(t, t) for t in nodes.loc[nodes["studies"] == 1, "treatment"]]
            if single:
                row["notes"].append(f"Resting on a single trial: {', '.join(single)}")
            d = r.design_by_treatment()
            row["consistency"] = (
                f"design-by-treatment interaction: Q = {d['q_inconsistency']:.2f} on {d['df_inconsistency']} df"
                + (f" (p = {d['p_inconsistency']:.3f}); random effects Wald {d['q_inconsistency_random']:.2f} "
                   f"(p = {d['p_inconsistency_random']:.3f})" if d["df_inconsistency"] > 0
                   else " (no loop of evidence: consistency cannot be checked)"))
            ns = r.node_split()
            ns = ns[ns["difference"].notna()]
            row["splits"] = [f"{L.get(x.treat1, x.treat1)} vs {L.get(x.treat2, x.treat2)}: direct "
                             f"{_ci(x.direct, x.direct_ci_low, x.direct_ci_high)}, indirect "
                             f"{_ci(x.indirect, x.indirect_ci_low, x.indirect_ci_high)}, p = {x.p:.3f}"
                             for x in ns.itertuples()]
            if na.component is not None:
                c = na.component
                add = c.additivity
                ce = c.component_effects
                row["component"] = ("; ".join(f"{L.get(x.component, x.component)} "
                                              f"{_ci(x.estimate, x.ci_low, x.ci_high)}" for x in ce.itertuples())
                                    + (f". Additive against standard model: Q difference {add['q_diff']:.2f} on "
                                       f"{add['df_diff']} df (p = {add['p']:.3f})" if add["df_diff"] > 0 else
                                       ". Additivity cannot be tested here (no degrees of freedom: no trial "
                                       "compares combined care with both of its parts' evidence)"))
            ps = r.p_scores(small_values="good")
            row["p_scores"] = ", ".join(f"{L.get(t, t)} {v:.2f}" for t, v in ps.items())
            if figures:
                title = f"{words[outcome].capitalize()}, {w.label}"
                row["graph"] = _png(P.plot_network_graph(r, labels=L, title=title).figure)
                row["forest"] = _png(P.plot_network_forest(
                    r, labels=L, xlabel="Difference (points on 0-100)", mid=mid, title=title).figure)
                row["graph_alt"] = (f"Network graph, {outcome}, {w.label}: {r.k} trials, treatments "
                                    + ", ".join(L.get(t, t) for t in r.treatments) + ".")
                row["forest_alt"] = (f"Network estimates against {L.get(r.reference, r.reference)}: "
                                     + "; ".join(f"{x['treatment']} {x['estimate']}" for x in row["effects"]) + ".")
            block["windows"].append(row)
        na = (over_time or {}).get(outcome)
        joint = na is not None and na.fitted
        if joint:
            by_window = _by_window(networks, config, outcome, over_time)
            block["durability"] = SN.durability_context(na)["text"]
            block["durability_model"] = na.result.describe()
        if figures and any(v is not None and "usual_care" in v.treatments for v in by_window.values()):
            fig = P.plot_effects_over_time(by_window, labels=L, window_labels={w.name: w.label for w in config.windows},
                                           mid=mid, title=f"{words[outcome].capitalize()}: each care against "
                                           "usual care, by time since randomisation"
                                           + (" (one model of every window)" if joint else "")).figure
            block["over_time"] = _png(fig)
            block["over_time_joint"] = joint
        out.append(block)
    return out


def network_text(networks: dict, comparison: str, outcome: str, window: str, vocabulary=None) -> str:
    """The network estimate(s) for a pairwise analysis (its first care against each node of its second side),
    marked as network estimates; empty when the network has no such pair."""
    na = networks.get((outcome, window))
    comparisons = A.comparisons_of(vocabulary)
    if comparison not in comparisons or comparison in A.views_of(vocabulary) or na is None or not na.fitted:
        return ""
    r = na.result
    first, seconds = comparisons[comparison]
    if first not in r.treatments:
        return ""
    z = r._crit()
    parts = []
    for b in seconds:
        if b in r.treatments:
            e, se = r._effect(first, b)
            parts.append(f"against {SN.node_labels(vocabulary).get(b, b)} {_ci(e, e - z * se, e + z * se)}")
    trials = f"{r.k} trial" + ("s" if r.k != 1 else "")
    return (f"Network estimate ({trials}, certainty not rated): " + "; ".join(parts)) if parts else ""


def network_json(networks: dict) -> list[dict]:
    """The network estimates for claims.json (marked as network estimates; certainty not rated)."""
    def num(x):
        return None if x is None or not np.isfinite(x) else float(x)

    out = []
    for (outcome, window), na in networks.items():
        if not na.fitted:
            continue
        r = na.result
        item = {"outcome": outcome, "window": window, "kind": "network estimate (certainty not rated)",
                "reference": r.reference, "method": r.method, "k": r.k, "tau2": num(r.tau2),
                "effects": [{"treatment": e.treatment, "estimate": num(e.estimate), "ci_low": num(e.ci_low),
                             "ci_high": num(e.ci_high)} for e in r.relative_effects.itertuples()
                            if e.treatment != r.reference],
                "left_out": list(na.left_out)}
        if na.component is not None:
            item["components"] = [{"component": x.component, "estimate": num(x.estimate), "ci_low": num(x.ci_low),
                                   "ci_high": num(x.ci_high)} for x in na.component.component_effects.itertuples()]
            item["additivity"] = {k: (num(v) if isinstance(v, float) else v)
                                  for k, v in na.component.additivity.items()}
        out.append(item)
    return out


# ------------------------------------------------------------------------------------------------ render


def _software() -> str:
    parts = [f"Python {platform.python_version()}"]
    for pkg in ("mt_evidence", "numpy", "scipy", "pandas", "matplotlib", "pandera", "jinja2"):
        try:
            parts.append(f"{pkg} {metadata.version(pkg)}")
        except metadata.PackageNotFoundError:
            pass
    return ", ".join(parts)


def _reference_info() -> tuple[str, int]:
    ref = Path(__file__).resolve().parents[3] / "tests" / "reference" / "metafor_reference.json"
    try:
        data = json.loads(ref.read_text())
        return data["meta"]["metafor_version"], len(data["pool"]) + len(data["metareg"]) + len(data["escalc"])
    except (OSError, KeyError, ValueError):
        return "3.8", 0


def render_html(ev: Evidence, settings: ReportSettings | None = None, *, generated: str | None = None,
                progress: Callable[[str], None] | None = None) -> str:
    """The report as one self-contained HTML page (every string from data escaped, no script, links only to
    http(s) addresses)."""
    return _render(ev, settings, generated=generated, progress=progress)[0]


def _render(ev: Evidence, settings: ReportSettings | None = None, *, generated: str | None = None,
            progress: Callable[[str], None] | None = None) -> tuple[str, list, list[dict]]:
    say = progress or (lambda _m: None)
    settings = settings or load_settings(vocabulary=ev.vocabulary)
    own = not ev.vocabulary.is_default
    if own and settings.claims_source == "default":
        settings = replace(settings, claims=[])  # the clinic claims are the package's question, not this review's
    cfg = settings.analysis
    env = Environment(loader=PackageLoader("mt_evidence.reporting", "templates"), autoescape=select_autoescape(["html", "j2"]))
    tpl = env.get_template("report.html.j2")
    say("pooling and rating certainty")
    frame = A.comparison_frame(ev, cfg)
    dose_rows = D.dose_frame(ev, cfg)
    if len(dose_rows):
        frame = pd.concat([frame, dose_rows], ignore_index=True) if len(frame) else dose_rows.copy()
    frame["used"] = frame["used"].astype(bool)
    harms = H.analyse_harms(ev)
    sof = summary_of_findings(ev, settings)
    primary = primary_outcomes(ev.vocabulary)
    dose_context = [] if own else [D.dose_regression(frame, ev, o, "short", config=cfg) for o in primary]
    say("fitting the networks")
    plain = A.comparison_frame(ev, cfg)
    networks = analyse_networks(ev, cfg, plain)
    over_time = {o: SN.analyse_network_over_time(ev, o, cfg, plain) for o in primary}
    claim_results = C.evaluate_claims(frame, cfg, settings.claims, settings.overrides, harms, dose_context,
                                      [SN.durability_context(over_time[o]) for o in primary])
    say("drawing the figures")
    measure = "md100" if own is False or frame["md100"].notna().any() else "smd"
    figures = embedded_figures(ev, cfg, measure=measure)
    network = network_rows(networks, cfg, over_time=over_time, vocabulary=ev.vocabulary)
    for r in sof:
        r["network"] = network_text(networks, r["comparison_id"], r["outcome"], r["window"], ev.vocabulary)
    net_by_test = {(r["comparison_id"], r["outcome"], r["window"]): r["network"] for r in sof}
    say("running the multiverse")
    mv_summary = MV.multiverse(plain, cfg).summary()
    mv_texts = multiverse_texts(mv_summary)
    not_used = frame.loc[~frame["used"].astype(bool)][["study_id", "comparison", "outcome", "window", "why_not"]].fillna("")
    excluded_rows = []
    for df, kind in ((ev.arms, "arm"), (ev.contrasts, "contrast")):
        for r in df[df["role"].isin(["excluded", "alternative"])].itertuples():
            excluded_rows.append({"study_id": r.study_id, "what": kind, "outcome": r.outcome,
                                  "why": f"{r.role}: {r.note or ''}"})
    ns = ev.contrasts[(ev.contrasts["direction_stored"] == "not_stated")
                      & ~ev.contrasts["role"].isin(["excluded", "alternative"])]
    for r in ns.itertuples():
        excluded_rows.append({"study_id": r.study_id, "what": "contrast", "outcome": r.outcome,
                              "why": "the source does not say which way the difference runs"})
    mf_version, n_ref = _reference_info()
    test_name = {"hksj": "Hartung-Knapp-Sidik-Jonkman (t on k - 1 df)", "z": "Wald z", "t": "t on k - 1 df"}.get(
        cfg.test, cfg.test) + (" with the ad hoc variance floor" if cfg.adhoc and cfg.test == "hksj" else "")
    pi_name = {"riley": "t on k - 2 df (Higgins 2009)", "t": "t on k - 1 df", "default": "the CI's quantile",
               "simple": "normal"}.get(cfg.pi_type, cfg.pi_type)
    pooling_conv = (f"one trial: its own result; two trials: common-effect model with a z interval (between-trial "
                    f"variation cannot be estimated from two); {cfg.min_k_random} or more: random effects, tau² "
                    f"estimator {cfg.method}, confidence interval {test_name}, prediction interval {pi_name}; I² "
                    "from tau² (from Q for the common-effect model); Q-profile interval for tau²")
    say("writing the HTML")
    html = tpl.render(
        title=ev.vocabulary.title,
        generated=generated or _dt.datetime.now(_dt.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        version=_version(),
        data_source=_display_source(ev.source),
        data_hash=ev.data_hash,
        n_trials=len(ev.studies),
        key_messages=key_messages(sof, claim_results, ev.vocabulary),
        scoreboard=scoreboard(claim_results), glance=glance_figure(networks, cfg, over_time, ev.vocabulary),
        claims=claims_rows(claim_results, net_by_test, mv_texts),
        multiverse=multiverse_rows(mv_summary, cfg, ev.vocabulary),
        **split_body(sof_tables(sof), figures, claim_results),
        fade=fade_table(frame, cfg, ev.vocabulary),
        sensitivity_rows=sensitivity_rows(frame, cfg, ev.vocabulary),
        network=network, p_score_caveat=SN.N.P_SCORE_CAVEAT,
        safety=safety_section(ev, harms),
        studies=provenance(ev),
        not_used=not_used.to_dict("records"),
        excluded=excluded_rows,
        limitations=limitations(ev, frame, sof),
        windows=[{"label": w.label, "target": w.target} for w in cfg.windows],
        thresholds=cfg.important_difference, threshold_source=cfg.important_difference_source,
        mic=cfg.mic, mic_source=cfg.mic_source,
        correlation=cfg.correlation, sensitivity=", ".join(f"{x:g}" for x in cfg.sensitivity),
        pooling=pooling_conv,
        grade_rules=grade.RULES,
        claim_rules=C.RULES,
        overrides_source=settings.overrides.source or "none",
        settings_source=settings.source,
        metafor_version=mf_version,
        n_reference=n_ref,
        software=_software(),
    )
    return html, claim_results, sof, networks


def _display_source(source: str) -> str:
    """The evidence's location as a reader knows it: relative to the working folder when inside it."""
    p = Path(source).resolve()
    try:
        return str(p.relative_to(Path.cwd().resolve()))
    except ValueError:
        return p.name


def _version() -> str:
    try:
        return metadata.version("mt_evidence")
    except metadata.PackageNotFoundError:
        return "unknown"


# ---------------------------------------------------------------------------------------------------- PDF


CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync"]


def chromium_path() -> str:
    """Debian's Chromium (``MT_EVIDENCE_CHROMIUM`` overrides)."""
    for cand in (os.environ.get("MT_EVIDENCE_CHROMIUM"), "/usr/bin/chromium", shutil.which("chromium"),
                 shutil.which("chromium-browser")):
        if cand and Path(cand).exists():
            return cand
    raise FileNotFoundError("Chromium was not found: install it (Debian: apt-get install chromium; `make setup` does "
                            "this) or set MT_EVIDENCE_CHROMIUM to its path")


class ReportError(RuntimeError):
    """The report could not be written (e.g. Chromium failed); the previous report is unchanged."""


def print_pdf(html_path: Path) -> bytes:
    """Print an HTML file to PDF bytes with headless Chromium (A4, backgrounds, CSS page breaks)."""
    from playwright.sync_api import Error as PlaywrightError
    from playwright.sync_api import sync_playwright

    try:
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path=chromium_path(), args=CHROMIUM_ARGS)
            try:
                page = browser.new_page()
                page.route("**/*", lambda route: route.continue_()
                           if route.request.url.startswith(("file:", "data:")) else route.abort())
                page.goto(html_path.resolve().as_uri(), wait_until="load")
                # the PDF shows everything the HTML hides behind <details> (where every number came from)
                page.evaluate("document.querySelectorAll('details').forEach(d => d.open = true)")
                return page.pdf(format="A4", print_background=True,
                                margin={"top": "14mm", "bottom": "14mm", "left": "12mm", "right": "12mm"})
            finally:
                browser.close()
    except (PlaywrightError, FileNotFoundError, OSError) as err:
        first = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        raise ReportError(f"the PDF could not be printed with Chromium ({first}); check that Chromium runs "
                          "(`chromium --headless --version`) or set MT_EVIDENCE_CHROMIUM to its path") from err


def _legacy_report(folder: Path, entries: list[str]) -> bool:
    """A folder holding only a report written before report folders carried an owner marker."""
    if not set(entries) <= {"index.html", "report.pdf"} or "index.html" not in entries:
        return False
    try:
        head = (folder / "index.html").read_text(encoding="utf-8", errors="replace")
    except OSError:
        return False
    return "what the trials show" in head and "mt_evidence" in head


def check_report_output(out: str | Path, ev: Evidence | None = None, data: str | Path | None = None) -> Path:
    """Refuse an output folder the report may not replace (``OutputRefused`` with the reason)."""
    from ..evidence.build import protected_inputs

    return atomic.check_output_folder(out, "report", protected=protected_inputs(ev, data), legacy=_legacy_report)


def claims_json(results: list[C.ClaimResult], networks: dict | None = None) -> dict:
    """The claims and their verdicts, as in the report, for other programs."""
    def num(x):
        return None if x is None or not np.isfinite(x) else float(x)

    out = []
    for cr in results:
        tests = []
        for t in cr.tests:
            r = t.result
            tests.append({
                "analysis": t.test.describe(), "comparison": t.test.comparison, "outcome": t.test.outcome,
                "window": t.test.window, "population": list(t.test.population), "technique": list(t.test.technique),
                "expect": t.test.expect, "why": t.test.why, "context": t.test.context, "verdict": t.verdict,
                "k": None if r is None else A.trial_count(t.studies) if t.studies else int(r.k),
                "comparisons": None if r is None else int(r.k),
                "participants": num(t.participants) if t.participants else None,
                "measure": "change from short to long term, MD on 0-100" if t.test.window == "short_vs_long"
                else "MD on 0-100",
                "estimate": None if r is None else num(r.estimate),
                "ci_low": None if r is None else num(r.ci_low), "ci_high": None if r is None else num(r.ci_high),
                "important_difference": num(t.mid) if t.mid is not None else None,
                "pooling": None if r is None else r.conventions.describe(),
                "notes": [] if r is None else list(r.notes),
                "certainty": None if t.certainty is None else t.certainty.level,
                "certainty_if_unassessed_low": None if t.certainty is None else t.certainty.level_if_unassessed_low,
                "certainty_reasons": [] if t.certainty is None else list(t.certainty.reasons()),
                "statement": t.statement or None, "explanation": t.explanation,
                "studies": list(t.studies),
            })
        out.append({"id": cr.claim.id, "claim": cr.claim.text, "verdict": cr.verdict, "explanation": cr.explanation,
                    "not_testable_because": cr.claim.not_testable or None, "analyses": tests,
                    "subgroup_tests": [{k: (num(v) if isinstance(v, float) else v) for k, v in d.items()}
                                       for d in cr.subgroup_tests],
                    "context": [{k: (num(v) if isinstance(v, float) else v) for k, v in d.items()} for d in cr.context]})
    doc = {"generator": f"mt_evidence {_version()}", "rule": list(C.RULES), "verdicts": list(C.VERDICTS),
           "claims": out}
    if networks is not None:
        doc["network"] = network_json(networks)
    return doc


SOF_CSV_COLUMNS = ["comparison_id", "comparison", "outcome", "window", "k", "participants", "measure", "estimate",
                   "ci_low", "ci_high", "mid", "statement", "certainty", "certainty_if_unassessed_low", "reasons",
                   "notes", "view", "studies", "original", "relative", "change_score_smd", "network"]


def sof_csv(sof: list[dict]) -> bytes:
    """The summary-of-findings rows as CSV (full precision; list cells joined with ' | ')."""
    rows = []
    for r in sof:
        row = {c: r.get(c, "") for c in SOF_CSV_COLUMNS}
        row["reasons"] = " | ".join(r["reasons"])
        row["notes"] = " | ".join(r["notes"])
        row["important_difference"] = row.pop("mid")
        rows.append(row)
    return csv_bytes(pd.DataFrame(rows), [c if c != "mid" else "important_difference" for c in SOF_CSV_COLUMNS])


def build_report(data: str | Path | None = None, out: str | Path = "reports", config: str | Path | None = None,
                 progress: Callable[[str], None] | None = None, pdf: bool = True,
                 vocabulary=None) -> ReportOutput:
    """Load the evidence (bundled when ``data`` is None) and write ``out/index.html``, ``out/report.pdf`` and
    ``out/claims.json`` as one: all are made in a staging folder and swapped in together, so a failure or a
    kill at any point leaves the previous report as it was. ``out`` must be a folder the report created (or a
    new or empty one); anything else is refused with ``OutputRefused``. Other files in a report folder (e.g.
    ``figures/``) are kept."""
    import tempfile

    say = progress or (lambda _msg: None)
    check_report_output(out, data=data)
    say("loading and validating the evidence")
    ev = load_evidence(data, vocabulary)
    check_report_output(out, ev)
    settings = load_settings(config, vocabulary=ev.vocabulary)
    with A.reuse_frames():
        html, claim_results, sof, networks = _render(ev, settings, progress=say)
        n_pooled = len(A.pool_windows(A.comparison_frame(ev, settings.analysis), settings.analysis))
    out = Path(out)
    files = {"index.html": html.encode("utf-8"),
             "claims.json": (json.dumps(claims_json(claim_results, networks), indent=1, ensure_ascii=False) + "\n").encode(),
             "summary_of_findings.csv": sof_csv(sof)}
    if pdf:
        say("printing the PDF")
        with tempfile.TemporaryDirectory(prefix="mt-evidence-pdf-") as td:
            page = Path(td) / "index.html"
            page.write_bytes(files["index.html"])
            files["report.pdf"] = print_pdf(page)
    from ..evidence.build import protected_inputs

    atomic.replace_owned_folder(out, files, "report", protected=protected_inputs(ev), legacy=_legacy_report)
    say("done")
    return ReportOutput(html_path=out / "index.html", pdf_path=(out / "report.pdf") if pdf else None,
                        n_pooled=n_pooled, n_trials=len(ev.studies))

"""A whole RevMan 5 review: every analysis, the evidence folder it makes, and RevMan's results re-run.

:func:`read_revman_review` reads every analysis of a RevMan 5 file (``.rm5``): continuous (``CONT_OUTCOME`` /
``CONT_DATA``: MEAN, SD, TOTAL per group), dichotomous (``DICH_OUTCOME`` / ``DICH_DATA``: EVENTS, TOTAL per
group) and generic inverse variance (``IV_OUTCOME`` / ``IV_DATA``: ESTIMATE, SE), rows inside subgroups
(``*_SUBGROUP``) included, with each outcome's settings (``EFFECT_MEASURE``, ``METHOD``, ``RANDOM``, ``TOTALS``,
``CI_TOTAL``, ``LOG_DATA``, group labels) and the results RevMan stored on each outcome and subgroup element
(``EFFECT_SIZE``, ``CI_START``, ``CI_END``, ``TAU2``, ``I2``, ``CHI2``, ``DF``, ``Z``, ``P_Z``, ...).

The result (:class:`RevManReview`) gives

* the evidence tables of the data contract (``studies``, ``arms``, ``contrasts``) and a ``review.toml`` declaring
  the review's own vocabulary (docs/methods.md section 18), which :func:`write_revman_folder` writes as an evidence
  folder that ``mt-evidence validate`` accepts;
* :meth:`RevManReview.concordance`: every pooled analysis (each outcome's total and each subgroup) re-run under
  RevMan 5's settings, beside RevMan's stored results.

Rules (README.md, "Bring your own review"):

* **Studies**: ``study_id`` from the study's name (``"Møller 2010"`` becomes ``Møller_2010``; letters of any
  alphabet kept, NFC-composed), ``citation`` the name, ``year`` from the file (its ``YEAR``, else the name),
  ``population`` ``mixed``, ``sources`` the RevMan file (``file:`` and its absolute path).
* **Arms** are named by their group label (``"Usual care"`` becomes arm ``usual_care``), so a multi-arm trial
  in several comparisons keeps one row per arm and outcome: a group with the same numbers in several analyses is
  written once (its note lists the other analyses); a group label with different numbers in another analysis
  (a control group split between comparisons, or two arms under one label) is written again under the label and
  the analysis number (``usual_care_2_1``), with a warning.
* **Outcomes**: one per RevMan outcome name and data type (the same name in several comparisons is one outcome);
  the instrument is RevMan's outcome name; the direction (``higher_is_worse``) is read from the forest plot's
  labels ("Favours ..." left of no effect); ``value_type`` is ``final`` (RevMan does not say).
* **Dichotomous** groups go to arms.csv as ``events`` of ``n``; **generic inverse-variance** rows go to
  contrasts.csv (group 1 against group 2; a ratio entered on the log scale is stored as the ratio with its 95% CI,
  the entered log estimate and SE in ``x_revman_estimate`` / ``x_revman_se``).
* **Treatments**: one per group label, active unless the label reads as a control (:data:`CONTROL_WORDS`);
  ``treatment_map`` (``--map LABEL=name:role``) overrides names and roles. Comparisons mirror RevMan's.
* **Rows never entered** (RevMan writes TOTAL = 0 and empty SDs), and rows with a missing value, are kept as
  missing values with a warning naming comparison, outcome, subgroup and study, and are not pooled or written;
  a row with SD 0 in both groups is kept (arms.csv, ``role = excluded``) but not pooled, as RevMan marks it not
  estimable. Malformed values (text, negative SDs, events above the total) raise :class:`RevManError` listing
  every one.
"""

from __future__ import annotations

import json
import math
import os
import re
import unicodedata
import xml.etree.ElementTree as ET
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from . import schema
from .revman import RevManError, decode_study_id, element_text, read_review_root, study_names

__all__ = ["RevManReview", "read_revman_review", "write_revman_folder", "check_revman_output",
           "parse_treatment_map", "read_treatment_map_file", "CONTROL_WORDS", "CONCORDANCE_COLUMNS", "TOLERANCE",
           "WRITER"]

#: the command that owns the folders written here (atomic.replace_owned_folder)
WRITER = "revman"
#: absolute difference under which our result counts as RevMan's (estimates and CIs of ratios on the log scale)
TOLERANCE = 1e-6
#: a group label containing one of these words (case-insensitive, whole words) makes a control treatment
CONTROL_WORDS = ("control", "controls", "placebo", "sham", "usual care", "standard care", "standard treatment",
                 "routine care", "treatment as usual", "no treatment", "no intervention", "waiting list",
                 "wait list", "waitlist", "wait-list", "vehicle", "attention control")
DATA_TYPES = {"CONT": "continuous", "DICH": "dichotomous", "IV": "generic inverse variance"}
_TYPE_SUFFIX = {"CONT": "continuous", "DICH": "dichotomous", "IV": "generic"}
_RATIO_DICH = {"RR", "OR", "PETO_OR"}
# a generic inverse-variance outcome's measure, as RevMan names it, to the contract's estimate types
_GIV_TYPES = {"mean difference": "MD", "std. mean difference": "SMD", "standardised mean difference": "SMD",
              "standardized mean difference": "SMD", "risk ratio": "RR", "odds ratio": "OR", "risk difference": "RD",
              "hazard ratio": "HR", "ratio of means": "ROM"}
_NAME_MAX = 48

CONCORDANCE_COLUMNS = [
    "comparison_no", "comparison_name", "outcome_no", "outcome_name", "subgroup_no", "subgroup_name", "analysis",
    "data_type", "measure", "method", "model", "scale", "totals", "revman_shows", "status", "k", "revman_studies",
    "revman_df", "ours_df",
    "revman_estimate", "ours_estimate", "diff_estimate", "revman_ci_low", "ours_ci_low", "diff_ci_low",
    "revman_ci_high", "ours_ci_high", "diff_ci_high", "revman_z", "ours_z", "diff_z", "revman_tau2", "ours_tau2",
    "diff_tau2", "revman_i2", "ours_i2", "diff_i2", "revman_q", "ours_q", "diff_q", "max_abs_diff",
    "within_tolerance", "note",
]
_COMPARED = ("estimate", "ci_low", "ci_high", "z", "tau2", "i2", "q")


# ------------------------------------------------------------------------------------------- names


def _plain(text: str) -> str:
    """NFC-composed text without invisible or control characters (the contract refuses them), spaces collapsed."""
    return " ".join(schema.HIDDEN_CHARS.sub("", unicodedata.normalize("NFC", text or "")).split())


def _text(element: ET.Element | None) -> str:
    return _plain(element_text(element))


def _key(label: str) -> str:
    """How labels and outcome names are matched: case-insensitive, whitespace collapsed."""
    return _plain(label).casefold()


def vocabulary_name(text: str, fallback: str) -> str:
    """An ASCII name of letters, digits and ``_`` starting with a letter (a vocabulary name) made from ``text``:
    accents dropped, lower case, other characters ``_``, at most 48 characters (cut at a ``_``)."""
    ascii_text = unicodedata.normalize("NFKD", text or "").encode("ascii", "ignore").decode()
    name = re.sub(r"[^a-z0-9]+", "_", ascii_text.lower()).strip("_")
    if len(name) > _NAME_MAX:
        cut = name[:_NAME_MAX]
        name = cut.rsplit("_", 1)[0] if "_" in cut[_NAME_MAX // 2:] else cut
        name = name.strip("_")
    if not name:
        name = fallback
    if not name[0].isalpha():
        name = f"{fallback}_{name}"
    return name


def study_identifier(name: str) -> str:
    """A study name as a ``study_id`` of the contract: NFC-composed, runs of spaces ``_``, only letters (of any
    alphabet), digits, ``_`` and ``-`` kept, a letter first (``study_`` put before a name that has none)."""
    ident = re.sub(r"\s+", "_", _plain(name))
    ident = re.sub(r"[^\w\-]", "", ident)
    ident = re.sub(r"_+", "_", ident).strip("_-")
    if not ident or not schema.is_study_id(ident):
        ident = "study_" + ident if ident else "study"
    return ident


def _unique(name: str, used: set[str]) -> str:
    out, i = name, 1
    while out in used:
        i += 1
        out = f"{name}_{i}"
    used.add(out)
    return out


def _is_name(x: str) -> bool:
    return bool(x) and x[0].isalpha() and x.replace("_", "").isalnum() and x.isascii()


# -------------------------------------------------------------------------------------- treatment map


def parse_treatment_map(items: Iterable[str] | Mapping[str, str], source: str = "--map") -> dict[str, tuple[str, str | None]]:
    """Overrides of the treatments made from group labels: ``LABEL=name`` or ``LABEL=name:role`` (role ``active`` or
    ``control``), or a dict ``{LABEL: "name:role"}``. Labels match case-insensitively. Raises ValueError naming
    every bad entry."""
    pairs: list[tuple[str, str]] = []
    if isinstance(items, Mapping):
        pairs = [(str(k), str(v)) for k, v in items.items()]
    else:
        for item in items:
            if "=" not in item:
                raise ValueError(f"{source}: {item!r} is not LABEL=name or LABEL=name:role")
            label, value = item.rsplit("=", 1)
            pairs.append((label, value))
    out: dict[str, tuple[str, str | None]] = {}
    problems = []
    for label, value in pairs:
        name, _, role = value.strip().partition(":")
        name, role = name.strip(), role.strip() or None
        where = f"{source}: {label.strip()!r}={value.strip()!r}"
        if not _key(label):
            problems.append(f"{where}: the group label is empty")
        elif not _is_name(name):
            problems.append(f"{where}: the name must be ASCII letters, digits and '_', starting with a letter")
        elif role not in (None, "active", "control"):
            problems.append(f"{where}: the role must be 'active' or 'control'")
        elif _key(label) in out and out[_key(label)] != (name, role):
            problems.append(f"{where}: the label is mapped twice")
        else:
            out[_key(label)] = (name, role)
    if problems:
        raise ValueError("\n".join(problems))
    return out


def read_treatment_map_file(path: str | os.PathLike) -> dict[str, tuple[str, str | None]]:
    """A mapping file: one ``LABEL=name:role`` per line; empty lines and lines starting with ``#`` are skipped."""
    from .files import MAX_SETTINGS_BYTES, read_bytes

    try:
        text = read_bytes(path, MAX_SETTINGS_BYTES, "a mapping file (text)").decode("utf-8")
    except UnicodeDecodeError:
        raise ValueError(f"{path}: not UTF-8 text; save the mapping file as UTF-8") from None
    items = []
    for i, line in enumerate(text.splitlines(), 1):
        line = line.strip()
        if line and not line.startswith("#"):
            if "=" not in line:
                raise ValueError(f"{path}, line {i}: {line!r} is not LABEL=name or LABEL=name:role")
            items.append(line)
    return parse_treatment_map(items, source=str(path))


def _looks_like_control(label: str) -> bool:
    text = " " + re.sub(r"[^\w\-]+", " ", _key(label)) + " "
    return any(f" {w} " in text for w in CONTROL_WORDS)


# ---------------------------------------------------------------------------------------------- parsing


def _num(raw: str | None) -> tuple[float, str]:
    """(value, problem): NaN for a missing or empty value; a problem for text or a non-finite number."""
    if raw is None or not raw.strip():
        return math.nan, ""
    try:
        v = float(raw)
    except ValueError:
        return math.nan, f"{raw!r} is not a number"
    if not math.isfinite(v):
        return math.nan, f"{raw!r} is not a finite number"
    return v, ""


def _year(study: ET.Element | None, name: str, ident: str) -> int | None:
    for text in ((study.get("YEAR") if study is not None else None), name, ident):
        for m in re.findall(r"(?<!\d)(1[89]\d\d|20\d\d)(?!\d)", text or ""):
            y = int(m)
            if schema.YEAR_MIN <= y <= schema.YEAR_MAX:
                return y
    return None


@dataclass
class _Unit:
    """An outcome (sub_no "") or one of its subgroups: what RevMan pools, with its stored results."""

    comp_no: str
    comp_name: str
    out_no: str
    out_name: str
    sub_no: str
    sub_name: str
    attrs: dict
    rows: list = field(default_factory=list)


def _direction(label1: str, label2: str, graph1: str, graph2: str) -> tuple[bool, str]:
    """higher_is_worse from the forest plot's labels: the left label (GRAPH_LABEL_1, below no effect) favouring
    group 1 means lower is better for it."""
    g1, g2, l1, l2 = (_key(x) for x in (graph1, graph2, label1, label2))

    def says(graph: str, label: str, words: tuple[str, ...]) -> bool:
        return bool(graph) and ((bool(label) and label in graph) or any(w in graph for w in words))

    group1_words, group2_words = ("experimental", "intervention", "treatment"), ("control",)
    left1, left2 = says(g1, l1, group1_words), says(g1, l2, group2_words)
    right1, right2 = says(g2, l1, group1_words), says(g2, l2, group2_words)
    how = f"from RevMan's forest-plot labels ('{graph1}' left of no effect, '{graph2}' right)"
    if (left1 and not left2) or (right2 and not right1 and not left2):
        return True, "higher_is_worse " + how
    if (left2 and not left1) or (right1 and not right2 and not left1):
        return False, "higher_is_worse " + how
    return True, ("higher_is_worse assumed true: RevMan's forest-plot labels do not say which group lower values "
                  "favour (RevMan's default puts 'Favours experimental' left)")


@dataclass(frozen=True, eq=False)
class RevManReview:
    """A RevMan 5 review read whole (:func:`read_revman_review`).

    Attributes
    ----------
    source : str
        The file as given; ``path`` its absolute path.
    title : str
        The review's title.
    studies, arms, contrasts : pandas.DataFrame
        The evidence tables (columns of the data contract plus ``x_revman_*`` columns saying where each row was
        read).
    rows : pandas.DataFrame
        One row per RevMan data row of every analysis (``analysis`` "2.1.3": comparison, outcome, subgroup),
        with both groups' numbers, whether the row was entered and whether it is pooled.
    analyses : pandas.DataFrame
        One row per pooled analysis (each outcome's total and each subgroup) with its settings and RevMan's stored
        results.
    treatments : pandas.DataFrame
        One row per group label: the treatment name and role it was given, and whether ``treatment_map`` set it.
    vocabulary : dict
        The review.toml content (``review_toml()`` writes it).
    warnings : tuple of str
        Rows not entered or not poolable, split groups, assumptions; each names comparison, outcome, subgroup
        and study.
    """

    source: str
    path: Path
    title: str
    studies: pd.DataFrame
    arms: pd.DataFrame
    contrasts: pd.DataFrame
    rows: pd.DataFrame
    analyses: pd.DataFrame
    treatments: pd.DataFrame
    vocabulary: dict
    warnings: tuple[str, ...] = ()
    _units: tuple = field(default=(), repr=False, compare=False)

    def summary(self) -> str:
        kinds = self.analyses.drop_duplicates(["comparison_no", "outcome_no"])["data_type"].value_counts()
        what = ", ".join(f"{kinds[k]} {DATA_TYPES[k]}" for k in ("CONT", "DICH", "IV") if k in kinds)
        return (f"RevMan review {Path(self.source).name}: {len(self.studies)} studies, "
                f"{self.analyses['comparison_no'].nunique()} comparisons, {int(kinds.sum())} outcomes "
                f"({what or 'none'}), {len(self.analyses)} pooled analyses; {len(self.arms)} arm rows, "
                f"{len(self.contrasts)} contrast rows; {len(self.warnings)} warnings")

    def __repr__(self) -> str:
        return f"RevManReview({self.summary()})"

    def _repr_html_(self) -> str:
        import html

        return f"<p><b>RevManReview</b>: {html.escape(self.summary())}</p>"

    def evidence_tables(self) -> dict[str, pd.DataFrame]:
        return {"studies": self.studies, "arms": self.arms, "contrasts": self.contrasts}

    def review_toml(self) -> str:
        """The vocabulary as a review.toml (docs/methods.md section 18)."""
        return _toml(self.vocabulary)

    def concordance(self, tolerance: float = TOLERANCE) -> pd.DataFrame:
        """Every pooled analysis re-run under RevMan 5's settings beside RevMan's stored results.

        One row per outcome total and per subgroup (:data:`CONCORDANCE_COLUMNS`): RevMan's stored estimate, CI,
        z, tau^2 (random effects only; RevMan shows none for a fixed effect), I^2 and Q (heterogeneity chi^2),
        ours, and their absolute differences. Ratio measures (RR, OR, Peto OR, generic ones entered as logs) are
        compared as natural logarithms of RevMan's ratios (``scale = log``). ``status``: ``compared``;
        ``not_estimable`` (RevMan and we both find none); ``differs_in_estimability``; ``not_pooled`` (RevMan
        pools no total: ``TOTALS = NO``, or subtotals only without subgroups); ``not_stored`` (the file was saved
        without calculated results). ``within_tolerance``: every compared quantity within ``tolerance``.
        ``revman_shows`` is false for an outcome's total that RevMan hides (``TOTALS = SUB``; RevMan still
        stores one: for random effects it weights each study with its own subgroup's tau^2, and so do we).
        Heterogeneity of a single study is not compared (RevMan shows none; its stored I^2 can be 100 from a Q
        of 1e-30).
        """
        return _concordance(self, tolerance)


# ------------------------------------------------------------------------------------------ the reader


def read_revman_review(path: str | os.PathLike, *,
                       treatment_map: Mapping[str, tuple[str, str | None]] | Mapping[str, str] | None = None
                       ) -> RevManReview:
    """Read every analysis of a RevMan 5 review (see the module docstring for the rules).

    Parameters
    ----------
    path : str or os.PathLike
        The ``.rm5`` file.
    treatment_map : dict, optional
        Group label -> ``"name:role"`` (or ``(name, role)``; role ``active``/``control`` or None to keep the
        guess), from :func:`parse_treatment_map` or :func:`read_treatment_map_file`. Labels match
        case-insensitively.

    Returns
    -------
    RevManReview

    Raises
    ------
    FileNotFoundError
        ``path`` is not a file.
    RevManError
        Not XML, not a RevMan review, or malformed data (every problem listed, each naming comparison, outcome,
        subgroup and study); a study without a year anywhere (``YEAR``, name or ID).
    ValueError
        A bad ``treatment_map``.
    """
    tmap = _normalise_treatment_map(treatment_map)
    root, file, source = read_review_root(path)
    title = _text(root.find("COVER_SHEET/TITLE")) or file.stem
    names = study_names(root)
    study_elements = {(s.get("ID") or "").strip(): s for s in root.iter("STUDY")}
    problems: list[str] = []
    warnings: list[str] = []

    units: list[tuple[_Unit, dict]] = []  # (unit, outcome info)
    analyses = root.find("ANALYSES_AND_DATA")
    comparisons = analyses.findall("COMPARISON") if analyses is not None else []
    data_rows: list[dict] = []
    for ci, comp in enumerate(comparisons, start=1):
        comp_no = (comp.get("NO") or str(ci)).strip()
        comp_name = _text(comp.find("NAME"))
        oi = 0
        for outcome in comp:
            dtype = outcome.tag.split("_", 1)[0]
            if outcome.tag not in ("CONT_OUTCOME", "DICH_OUTCOME", "IV_OUTCOME"):
                if outcome.tag.endswith("_OUTCOME"):
                    warnings.append(f"comparison {comp_no} '{comp_name}', outcome {outcome.get('NO') or '?'} "
                                    f"'{_text(outcome.find('NAME'))}': a {outcome.tag} outcome, which is not read "
                                    "(continuous, dichotomous and generic inverse-variance outcomes are)")
                continue
            oi += 1
            info = _outcome_info(outcome, dtype, comp_no, comp_name, str(oi), warnings)
            where = f"comparison {comp_no} '{comp_name}', outcome {info['out_no']} '{info['out_name']}'"
            if not info["out_name"]:
                problems.append(f"{where}: the outcome has no NAME")
            total = _Unit(comp_no, comp_name, info["out_no"], info["out_name"], "", "", dict(outcome.attrib))
            subs = []
            blocks = [("", "", outcome.findall(f"{dtype}_DATA"))]
            for si, sub in enumerate(outcome.findall(f"{dtype}_SUBGROUP"), start=1):
                sub_no = (sub.get("NO") or str(si)).strip()
                sub_name = _text(sub.find("NAME")) or f"subgroup {sub_no}"
                unit = _Unit(comp_no, comp_name, info["out_no"], info["out_name"], sub_no, sub_name, dict(sub.attrib))
                subs.append(unit)
                blocks.append((sub_no, sub_name, sub.findall(f"{dtype}_DATA")))
            for sub_no, sub_name, elements in blocks:
                for di, data in enumerate(elements, start=1):
                    row = _data_row(data, di, dtype, info, sub_no, sub_name, names, study_elements, file,
                                    problems, warnings)
                    data_rows.append(row)
                    total.rows.append(row)
                    for u in subs:
                        if u.sub_no == sub_no and sub_no:
                            u.rows.append(row)
            info["has_subgroups"] = bool(subs)
            units.append((total, info))
            units.extend((u, info) for u in subs)
    if not problems and not data_rows:
        problems.append("no study data in any continuous, dichotomous or generic inverse-variance analysis: nothing "
                        "to import (a protocol, or a review without analyses)")
    if problems:
        raise RevManError(source, problems)

    treatments, label_info = _treatments(data_rows, [i for _, i in units], tmap)
    outcome_names = _outcome_names([i for _, i in units])
    studies, idents = _studies(data_rows, study_elements, names, file, source)
    for r in data_rows:
        r["study_id"] = idents[r["revman_study_id"]]
        for k in (1, 2):
            lab = label_info[_key(r[f"group_label_{k}"])]
            r[f"treatment_{k}"] = lab["name"]
        r["outcome"] = outcome_names[(r["_outcome_key"])]
    arms, contrasts = _evidence_rows(data_rows, label_info, file, warnings)
    vocab = _vocabulary(title, file, treatments, outcome_names, [i for _, i in units], label_info, warnings)
    rows = pd.DataFrame([{k: v for k, v in r.items() if not k.startswith("_")} for r in data_rows],
                        columns=_ROW_COLUMNS)
    analyses_df = pd.DataFrame([_analysis_record(u, i) for u, i in units], columns=_ANALYSIS_COLUMNS)
    return RevManReview(source=source, path=file.resolve(), title=title, studies=studies, arms=arms,
                        contrasts=contrasts, rows=rows, analyses=analyses_df, treatments=treatments,
                        vocabulary=vocab, warnings=tuple(warnings), _units=tuple(units))


def _normalise_treatment_map(tmap) -> dict[str, tuple[str, str | None]]:
    if tmap is None:
        return {}
    if not isinstance(tmap, Mapping):
        raise TypeError(f"treatment_map must be a dict from group labels to 'name:role'; got {type(tmap).__name__}")
    if all(isinstance(v, tuple) for v in tmap.values()):
        out = {}
        for k, (name, role) in tmap.items():
            out.update(parse_treatment_map({k: f"{name}:{role}" if role else name}, source="treatment_map"))
        return out
    return parse_treatment_map({k: str(v) for k, v in tmap.items()}, source="treatment_map")


def _outcome_info(outcome: ET.Element, dtype: str, comp_no: str, comp_name: str, default_no: str,
                  warnings: list[str]) -> dict:
    a = outcome.attrib
    out_no = (a.get("NO") or default_no).strip()
    out_name = _text(outcome.find("NAME"))
    labels = [_text(outcome.find(f"GROUP_LABEL_{k}")) for k in (1, 2)]
    for k, default in ((0, "Experimental"), (1, "Control")):
        if not labels[k]:
            labels[k] = default
    graphs = [_text(outcome.find(f"GRAPH_LABEL_{k}")) for k in (1, 2)]
    if dtype == "IV":
        measure_text = _text(outcome.find("EFFECT_MEASURE")) or "Generic"
        measure = measure_text
        method = "IV"
        log = (a.get("LOG_DATA") or "NO").upper() == "YES"
    else:
        measure = (a.get("EFFECT_MEASURE") or ("MD" if dtype == "CONT" else "RR")).upper()
        measure_text = measure
        method = (a.get("METHOD") or "IV").upper() if dtype == "DICH" else "IV"
        log = measure in _RATIO_DICH
    level, _ = _num(a.get("CI_TOTAL"))
    hiw, derivation = _direction(labels[0], labels[1], graphs[0], graphs[1])
    return {"data_type": dtype, "comp_no": comp_no, "comp_name": comp_name, "out_no": out_no, "out_name": out_name,
            "measure": measure, "measure_text": measure_text, "method": method,
            "model": "random" if (a.get("RANDOM") or "NO").upper() == "YES" else "fixed",
            "totals": (a.get("TOTALS") or "YES").upper(), "log": log, "level": level / 100 if level > 0 else 0.95,
            "swap": (a.get("SWAP_EVENTS") or "NO").upper() == "YES", "label_1": labels[0], "label_2": labels[1],
            "graph_1": graphs[0], "graph_2": graphs[1], "higher_is_worse": hiw, "direction": derivation,
            "outcome_key": (_key(out_name), dtype)}


_ROW_COLUMNS = ["analysis", "comparison_no", "comparison_name", "outcome_no", "outcome_name", "subgroup_no",
                "subgroup_name", "data_type", "measure", "method", "model", "study_id", "study_name",
                "revman_study_id", "group_label_1", "group_label_2", "treatment_1", "treatment_2", "arm_1", "arm_2",
                "outcome", "n1", "mean1", "sd1", "events1", "n2", "mean2", "sd2", "events2", "estimate", "se",
                "entered", "poolable", "note", "source_location"]


def _data_row(data: ET.Element, di: int, dtype: str, info: dict, sub_no: str, sub_name: str, names: dict,
              study_elements: dict, file: Path, problems: list[str], warnings: list[str]) -> dict:
    raw_id = (data.get("STUDY_ID") or "").strip()
    display = _plain(names.get(raw_id) or (decode_study_id(raw_id) if raw_id else ""))
    sub_where = f", subgroup {sub_no} '{sub_name}'" if sub_no else ""
    where = (f"comparison {info['comp_no']} '{info['comp_name']}', outcome {info['out_no']} '{info['out_name']}'"
             f"{sub_where}, " + (f"study '{display}'" if raw_id else f"data row {di} (no STUDY_ID)"))
    if not raw_id:
        problems.append(f"{where}: STUDY_ID is missing")
    v: dict[str, float] = {}
    fields_ = {"CONT": ("MEAN_1", "SD_1", "TOTAL_1", "MEAN_2", "SD_2", "TOTAL_2"),
               "DICH": ("EVENTS_1", "TOTAL_1", "EVENTS_2", "TOTAL_2"),
               "IV": ("ESTIMATE", "SE", "TOTAL_1", "TOTAL_2")}[dtype]
    for attr in fields_:
        v[attr], p = _num(data.get(attr))
        if p:
            problems.append(f"{where}: {attr}={p}")
    for attr in fields_:
        x = v[attr]
        if np.isnan(x):
            continue
        if attr.startswith(("SD", "SE", "TOTAL", "EVENTS")) and x < 0:
            problems.append(f"{where}: {attr}={data.get(attr)!r} is negative")
        elif attr.startswith(("TOTAL", "EVENTS")) and x != int(x):
            problems.append(f"{where}: {attr}={data.get(attr)!r} is not a whole number")
    if dtype == "DICH":
        for k in (1, 2):
            e, n = v[f"EVENTS_{k}"], v[f"TOTAL_{k}"]
            if not np.isnan(e) and not np.isnan(n) and n > 0 and e > n:
                problems.append(f"{where}: EVENTS_{k}={data.get(f'EVENTS_{k}')!r} is above TOTAL_{k}="
                                f"{data.get(f'TOTAL_{k}')!r}")
    analysis = ".".join(x for x in (info["comp_no"], info["out_no"], sub_no) if x)
    row = {"analysis": analysis, "comparison_no": info["comp_no"], "comparison_name": info["comp_name"],
           "outcome_no": info["out_no"], "outcome_name": info["out_name"], "subgroup_no": sub_no,
           "subgroup_name": sub_name if sub_no else "", "data_type": dtype, "measure": info["measure"],
           "method": info["method"], "model": info["model"], "study_name": display, "revman_study_id": raw_id,
           "group_label_1": info["label_1"], "group_label_2": info["label_2"],
           "n1": np.nan, "mean1": np.nan, "sd1": np.nan, "events1": np.nan, "n2": np.nan, "mean2": np.nan,
           "sd2": np.nan, "events2": np.nan, "estimate": np.nan, "se": np.nan, "entered": True, "poolable": True,
           "note": "", "_outcome_key": info["outcome_key"], "_info": info, "_where": where,
           "source_location": (f"RevMan file {file.name}, comparison {info['comp_no']} '{info['comp_name']}', "
                               f"outcome {info['out_no']} '{info['out_name']}'"
                               + (f", subgroup {sub_no} '{sub_name}'" if sub_no else "") + f", row '{display}'")}
    if dtype == "IV":
        n1, n2 = v["TOTAL_1"], v["TOTAL_2"]
        row.update(estimate=v["ESTIMATE"], se=v["SE"], n1=n1 if n1 > 0 else np.nan, n2=n2 if n2 > 0 else np.nan)
        if np.isnan(v["ESTIMATE"]) or np.isnan(v["SE"]) or v["SE"] == 0:
            row.update(entered=False, poolable=False, note="estimate or SE not entered")
            given = ", ".join(f"{a}={data.get(a)!r}" for a in ("ESTIMATE", "SE"))
            warnings.append(f"{where}: no estimate with a standard error ({given}): data never entered; kept as "
                            "missing values, not pooled, not written to contrasts.csv")
        return row
    for k in (1, 2):
        n = v[f"TOTAL_{k}"]
        row[f"n{k}"] = n if n > 0 else np.nan
        if dtype == "CONT":
            row[f"mean{k}"], row[f"sd{k}"] = v[f"MEAN_{k}"], v[f"SD_{k}"]
        else:
            row[f"events{k}"] = v[f"EVENTS_{k}"]
    if any(not (v[f"TOTAL_{k}"] > 0) for k in (1, 2)):
        for k in (1, 2):
            if not (v[f"TOTAL_{k}"] > 0):
                for c in ("n", "mean", "sd", "events"):
                    row[f"{c}{k}"] = np.nan
        missing = [f"TOTAL_{k}" for k in (1, 2) if not (v[f"TOTAL_{k}"] > 0)]
        row.update(entered=False, poolable=False, note="data never entered (" + ", ".join(
            f"{m} = {data.get(m) or 'empty'}" for m in missing) + ")")
        warnings.append(f"{where}: data never entered ({', '.join(f'{m}={data.get(m)!r}' for m in missing)}): kept "
                        "as missing values, not pooled; the groups without participants are not written to arms.csv")
        return row
    needed = ("mean1", "sd1", "mean2", "sd2") if dtype == "CONT" else ("events1", "events2")
    empty = [c for c in needed if np.isnan(row[c])]
    if empty:
        attrs = ", ".join({"mean1": "MEAN_1", "sd1": "SD_1", "mean2": "MEAN_2", "sd2": "SD_2", "events1": "EVENTS_1",
                           "events2": "EVENTS_2"}[c] for c in empty)
        row.update(poolable=False, note=f"{attrs} empty")
        warnings.append(f"{where}: {attrs} empty: kept as missing values, not pooled")
        return row
    if dtype == "CONT" and row["sd1"] == 0 and row["sd2"] == 0:
        row.update(poolable=False, note="SD 0 in both groups: not estimable (RevMan marks it so), not pooled")
        warnings.append(f"{where}: SD_1 and SD_2 are 0: not estimable (RevMan marks it so); the row is kept "
                        "(arms.csv, role excluded) but not pooled")
    return row


def _treatments(rows: list[dict], infos: list[dict], tmap: dict) -> tuple[pd.DataFrame, dict]:
    order: list[tuple[str, str, int]] = []
    seen: set[str] = set()
    for info in infos:
        for k in (1, 2):
            label = info[f"label_{k}"]
            if _key(label) not in seen:
                seen.add(_key(label))
                order.append((_key(label), _plain(label), k))
    unused = set(tmap) - seen
    if unused:
        raise ValueError("the treatment map names group labels the review does not have: "
                         + ", ".join(sorted(unused)) + "; labels in the review: "
                         + ", ".join(lab for _, lab, _ in order))
    info: dict[str, dict] = {}
    used_names: dict[str, dict] = {}
    used_arms: set[str] = set()
    for key, label, k in order:
        mapped = tmap.get(key)
        guessed_role = "control" if _looks_like_control(label) else "active"
        name = mapped[0] if mapped else vocabulary_name(label, "treatment")
        role = (mapped[1] if mapped and mapped[1] else (used_names[name]["role"] if name in used_names
                                                          else guessed_role))
        if name not in used_names:
            used_names[name] = {"name": name, "label": label, "role": role, "first_group": k}
        arm = vocabulary_name(label, "arm")
        arm = arm if arm not in used_arms else _unique(arm, used_arms)
        used_arms.add(arm)
        info[key] = {"label": label, "name": name, "role": used_names[name]["role"], "arm": arm,
                     "mapped": bool(mapped)}
    table = pd.DataFrame([{"group_label": v["label"], "treatment": v["name"], "role": v["role"], "arm": v["arm"],
                           "from_map": v["mapped"]} for v in info.values()],
                         columns=["group_label", "treatment", "role", "arm", "from_map"])
    return table, info


def _outcome_names(infos: list[dict]) -> dict[tuple, str]:
    out: dict[tuple, str] = {}
    by_name: dict[str, list[tuple]] = {}
    for info in infos:
        key = info["outcome_key"]
        if key not in out:
            out[key] = ""
            by_name.setdefault(key[0], []).append(key)
    used: set[str] = set()
    for info in infos:
        key = info["outcome_key"]
        if out[key]:
            continue
        base = vocabulary_name(info["out_name"], "outcome")
        if len(by_name[key[0]]) > 1:  # one name, several data types
            base = f"{base}_{_TYPE_SUFFIX[key[1]]}"
        out[key] = _unique(base, used)
    return out


def _studies(rows: list[dict], study_elements: dict, names: dict, file: Path, source: str
             ) -> tuple[pd.DataFrame, dict[str, str]]:
    order = list(dict.fromkeys(r["revman_study_id"] for r in rows))
    display = {sid: _plain(names.get(sid) or decode_study_id(sid)) for sid in order}
    idents: dict[str, str] = {}
    groups: dict[str, list[str]] = {}
    for sid in order:
        groups.setdefault(study_identifier(display[sid]), []).append(sid)
    used = set(groups)
    for ident, sids in groups.items():
        if len(sids) == 1:
            idents[sids[0]] = ident
            continue
        number = 0
        for sid in sids:  # names that collapse to one identifier are numbered in file order
            cand = ident
            while cand in used:
                number += 1
                cand = f"{ident}_{number}"
            idents[sid] = cand
            used.add(cand)
    records, no_year = [], []
    for sid in order:
        el = study_elements.get(sid)
        year = _year(el, display[sid], decode_study_id(sid))
        if year is None:
            no_year.append(f"study '{display[sid]}' (RevMan ID {sid}): no year in its YEAR "
                           f"({(el.get('YEAR') if el is not None else None)!r}), name or ID; give the study a year "
                           "in RevMan (Characteristics of studies) and save the file again")
        records.append({"study_id": idents[sid], "citation": display[sid], "year": year, "population": "mixed",
                        "sources": "file:" + str(file.resolve()),
                        "note": f"imported from RevMan; RevMan study ID {sid}",
                        "x_revman_study_id": sid})
    if no_year:
        raise RevManError(source, no_year)
    return pd.DataFrame(records, columns=["study_id", "citation", "year", "population", "sources", "note",
                                          "x_revman_study_id"]), idents


_ARM_COLUMNS = list(schema.ARM_COLUMNS) + ["x_revman_analysis", "x_revman_group", "x_revman_group_label"]
_CONTRAST_COLUMNS = list(schema.CONTRAST_COLUMNS) + ["x_revman_analysis", "x_revman_measure", "x_revman_log_data",
                                                      "x_revman_estimate", "x_revman_se"]


def _evidence_rows(rows: list[dict], label_info: dict, file: Path, warnings: list[str]
                   ) -> tuple[pd.DataFrame, pd.DataFrame]:
    source_url = "file:" + str(file.resolve())
    arms: list[dict] = []
    first: dict[tuple, int] = {}  # (study, arm, outcome) -> index in arms of the plain-named row
    placed: dict[tuple, int] = {}  # (study, arm name, outcome, data) -> index
    contrasts: list[dict] = []
    seen_contrasts: dict[tuple, int] = {}
    for r in rows:
        info = r["_info"]
        arm_names = [label_info[_key(r[f"group_label_{k}"])]["arm"] for k in (1, 2)]
        if arm_names[0] == arm_names[1]:
            arm_names[1] = arm_names[1] + "_group_2"
        sub_note = f"subgroup: {r['subgroup_name']}" if r["subgroup_no"] else ""
        if r["data_type"] == "IV":
            r["arm_1"], r["arm_2"] = arm_names
            if not r["entered"]:
                continue
            contrasts.append(_contrast_row(r, info, arm_names, source_url, sub_note, seen_contrasts, contrasts))
            continue
        split = []
        for k in (1, 2):
            n = r[f"n{k}"]
            if np.isnan(n):
                r[f"arm_{k}"] = arm_names[k - 1]
                continue  # never entered: not written
            data = (n, r[f"mean{k}"], r[f"sd{k}"], r[f"events{k}"])
            base = (r["study_id"], arm_names[k - 1], r["outcome"])
            arm = arm_names[k - 1]
            where_now = f"{r['analysis']} group {k}"
            if base in first:
                i = first[base]
                if _same(arms[i]["_data"], data):
                    arms[i]["_also"].append(where_now)
                    r[f"arm_{k}"] = arm
                    continue
                arm = f"{arm_names[k - 1]}_{r['analysis'].replace('.', '_')}"
                key = (r["study_id"], arm, r["outcome"])
                if key in placed:  # the same analysis twice: cannot happen in RevMan, but stay unique
                    arm = f"{arm}_{k}"
                split.append((k, r[f"group_label_{k}"], arms[i]["x_revman_analysis"], arm))
            r[f"arm_{k}"] = arm
            row = _arm_row(r, info, k, arm, label_info, source_url, sub_note, data, where_now)
            if base not in first:
                first[base] = len(arms)
            placed[(r["study_id"], arm, r["outcome"])] = len(arms)
            arms.append(row)
        if split:
            groups = " and ".join(f"group {k} '{lab}' (as in analysis {first_in})" for k, lab, first_in, _ in split)
            written = ", ".join(f"'{arm}'" for *_, arm in split)
            warnings.append(f"{r['_where']}: other numbers for {groups} than the same study, outcome and group "
                            "label elsewhere (participants split into subgroups, a control group split between "
                            f"comparisons, or two arms under one label): written as arm {written}; check before "
                            "pooling across analyses")
    for row in arms:
        if row["_also"]:
            also = "also in analyses " + ", ".join(row.pop("_also"))
            row["note"] = "; ".join(x for x in (row["note"], also) if x)
        row.pop("_also", None)
        row.pop("_data", None)
    arm_df = pd.DataFrame(arms, columns=_ARM_COLUMNS)
    con_df = pd.DataFrame(contrasts, columns=_CONTRAST_COLUMNS)
    for row in contrasts:
        row.pop("_key", None)
    return arm_df, con_df


def _same(a: tuple, b: tuple) -> bool:
    return all((np.isnan(x) and np.isnan(y)) or x == y for x, y in zip(a, b))


def _arm_row(r: dict, info: dict, k: int, arm: str, label_info: dict, source_url: str, sub_note: str,
             data: tuple, where_now: str) -> dict:
    n, mean, sd, events = data
    notes, role = [sub_note] if sub_note else [], None
    if info["data_type"] == "CONT":
        cols = f"MEAN_{k}, SD_{k}, TOTAL_{k}"
        if not r["poolable"] and r["sd1"] == 0 and r["sd2"] == 0:
            role = "excluded"
            notes.insert(0, "SD 0 in both groups in RevMan: not estimable there, never pooled (the SD is left "
                            "empty: the contract needs SD > 0)")
            sd = np.nan
        elif sd == 0:
            notes.insert(0, "SD 0 in RevMan (the SD is left empty: the contract needs SD > 0)")
            sd = np.nan
        elif np.isnan(sd) or np.isnan(mean):
            notes.insert(0, f"{r['note']} in RevMan")
            role = "excluded" if np.isnan(mean) else None
    else:
        cols = f"EVENTS_{k}, TOTAL_{k}"
        if np.isnan(events):
            notes.insert(0, f"{r['note']} in RevMan")
        if info["swap"]:
            notes.append("RevMan analyses the non-events of this outcome (SWAP_EVENTS)")
    if n < 2:
        notes.insert(0, f"{n:g} participant in RevMan (the contract counts arms of at least 2; n left empty)")
        role, n = "excluded", np.nan
    label = r[f"group_label_{k}"]
    return {
        "study_id": r["study_id"], "arm": arm, "intervention": r[f"treatment_{k}"], "technique": None,
        "outcome": r["outcome"], "instrument": info["out_name"], "scale_min": np.nan, "scale_max": np.nan,
        "higher_is_worse": info["higher_is_worse"], "timepoint_weeks": np.nan, "value_type": "final",
        "change_sign": None, "n": n, "events": events, "mean": mean, "sd": sd, "se": np.nan, "ci_low": np.nan,
        "ci_high": np.nan, "median": np.nan, "q1": np.nan, "q3": np.nan, "min": np.nan, "max": np.nan,
        "adjusted": False, "role": role, "source_url": source_url,
        "source_location": f"{r['source_location']}, group {k} '{label}' ({cols})",
        "derivation": info["direction"], "note": "; ".join(notes), "x_revman_analysis": r["analysis"],
        "x_revman_group": k, "x_revman_group_label": label, "_also": [], "_data": data,
    }


def _contrast_row(r: dict, info: dict, arm_names: list[str], source_url: str, sub_note: str,
                  seen: dict, contrasts: list[dict]) -> dict:
    from scipy import stats

    est, se = r["estimate"], r["se"]
    etype = _GIV_TYPES.get(_key(info["measure_text"]), "GEN")
    notes = [sub_note] if sub_note else []
    if etype == "GEN":
        notes.append(f"measure: {info['measure_text']}")
    z = float(stats.norm.ppf(0.975))
    if info["log"]:
        estimate, lo, hi, se_out = math.exp(est), math.exp(est - z * se), math.exp(est + z * se), np.nan
        derivation = (f"ratio and 95% CI from RevMan's log estimate and SE (x_revman_estimate, x_revman_se): "
                      f"exp(ESTIMATE), exp(ESTIMATE -/+ {z:.6f} SE); {info['direction']}")
    else:
        estimate, lo, hi, se_out = est, np.nan, np.nan, se
        derivation = info["direction"]
    n1 = r["n1"] if r["n1"] >= 2 else np.nan
    n2 = r["n2"] if r["n2"] >= 2 else np.nan
    return {
        "study_id": r["study_id"], "arm1": arm_names[0], "arm2": arm_names[1], "intervention1": r["treatment_1"],
        "intervention2": r["treatment_2"], "technique1": None, "technique2": None, "outcome": r["outcome"],
        "instrument": info["out_name"], "scale_min": np.nan, "scale_max": np.nan,
        "higher_is_worse": info["higher_is_worse"], "timepoint_weeks": np.nan, "estimate_type": etype,
        "estimate": estimate, "se": se_out, "ci_low": lo, "ci_high": hi, "ci_level": 0.95 if info["log"] else np.nan,
        "p_value": None, "direction_printed": f"{r['group_label_1']} vs {r['group_label_2']}",
        "direction_stored": "arm1_minus_arm2", "n1": n1, "n2": n2, "adjusted": None, "role": None,
        "source_url": source_url, "source_location": f"{r['source_location']} (ESTIMATE, SE)",
        "derivation": derivation, "note": "; ".join(notes), "x_revman_analysis": r["analysis"],
        "x_revman_measure": info["measure_text"], "x_revman_log_data": "YES" if info["log"] else "NO",
        "x_revman_estimate": est, "x_revman_se": se,
    }


def _vocabulary(title: str, file: Path, treatments: pd.DataFrame, outcome_names: dict, infos: list[dict],
                label_info: dict, warnings: list[str]) -> dict:
    decl = treatments.drop_duplicates("treatment")
    actives = [r for r in decl.itertuples() if r.role == "active"]
    controls = [r for r in decl.itertuples() if r.role == "control"]
    spec_t = {r.treatment: {"label": r.group_label, "role": r.role} for r in actives + controls}
    outcomes: dict[str, str] = {}
    for info in infos:
        name = outcome_names[info["outcome_key"]]
        outcomes.setdefault(name, info["out_name"] + ("" if len({k for k in outcome_names if k[0] ==
                                                                  info["outcome_key"][0]}) == 1
                                                      else f" ({DATA_TYPES[info['data_type']]})"))
    comparisons, seen = [], set()
    for info in infos:
        first = label_info[_key(info["label_1"])]["name"]
        second = label_info[_key(info["label_2"])]["name"]
        key = (info["comp_no"], first, second)
        if key in seen:
            continue
        seen.add(key)
        if first == second:
            warnings.append(f"comparison {info['comp_no']} '{info['comp_name']}': both groups are the treatment "
                            f"'{first}'; review.toml declares no comparison for it")
            continue
        comparisons.append({"key": key, "first": first, "second": [second],
                            "labels": [info["label_1"], info["label_2"]], "comp_name": info["comp_name"]})
    per_comp: dict[str, int] = {}
    for c in comparisons:
        per_comp[c["key"][0]] = per_comp.get(c["key"][0], 0) + 1
    counter: dict[str, int] = {}
    out_comps = []
    for c in comparisons:
        no = c["key"][0]
        counter[no] = counter.get(no, 0) + 1
        suffix = f"_{counter[no]}" if per_comp[no] > 1 else ""
        name = vocabulary_name(f"comparison_{no}{suffix}", "comparison")
        out_comps.append({"name": name, "first": c["first"], "second": c["second"], "labels": c["labels"]})
    return {"review": {"title": title, "primary_outcomes": list(outcomes),
                       "source": f"RevMan 5 file {file.name}, imported by mt-evidence revman"},
            "treatments": spec_t, "outcomes": outcomes,
            "populations": {"mixed": "participants as the review defines them"}, "comparisons": out_comps}


def _toml_str(s: str) -> str:
    return json.dumps(s, ensure_ascii=False)  # a JSON string is a valid TOML basic string


def _toml(spec: dict) -> str:
    lines = ["# The review's vocabulary (docs/methods.md section 18), written by mt-evidence revman from the group",
             "# labels, outcomes and comparisons of a RevMan file. Edit names, labels and roles as needed.", "",
             "[review]", f"title = {_toml_str(spec['review']['title'])}",
             "primary_outcomes = [" + ", ".join(_toml_str(o) for o in spec["review"]["primary_outcomes"]) + "]",
             f"source = {_toml_str(spec['review']['source'])}", "", "[treatments]"]
    for name, t in spec["treatments"].items():
        lines.append(f"{name} = {{ label = {_toml_str(t['label'])}, role = {_toml_str(t['role'])} }}")
    lines += ["", "[outcomes]"]
    lines += [f"{name} = {_toml_str(label)}" for name, label in spec["outcomes"].items()]
    lines += ["", "[populations]"]
    lines += [f"{name} = {_toml_str(label)}" for name, label in spec["populations"].items()]
    for c in spec["comparisons"]:
        lines += ["", "[[comparisons]]", f"name = {_toml_str(c['name'])}", f"first = {_toml_str(c['first'])}",
                  "second = [" + ", ".join(_toml_str(s) for s in c["second"]) + "]",
                  "labels = [" + ", ".join(_toml_str(x) for x in c["labels"]) + "]"]
    return "\n".join(lines) + "\n"


_ANALYSIS_COLUMNS = ["analysis", "comparison_no", "comparison_name", "outcome_no", "outcome_name", "subgroup_no",
                     "subgroup_name", "data_type", "measure", "method", "model", "totals", "level", "log_scale",
                     "rows", "revman_estimable", "revman_studies", "revman_effect_size", "revman_ci_start",
                     "revman_ci_end", "revman_z", "revman_p_z", "revman_tau2", "revman_i2", "revman_chi2",
                     "revman_df", "revman_p_chi2"]


def _analysis_record(u: _Unit, info: dict) -> dict:
    a = u.attrs

    def f(name):
        return _num(a.get(name))[0]

    return {"analysis": ".".join(x for x in (u.comp_no, u.out_no, u.sub_no) if x), "comparison_no": u.comp_no,
            "comparison_name": u.comp_name, "outcome_no": u.out_no, "outcome_name": u.out_name,
            "subgroup_no": u.sub_no, "subgroup_name": u.sub_name, "data_type": info["data_type"],
            "measure": info["measure"], "method": info["method"], "model": info["model"], "totals": info["totals"],
            "level": info["level"], "log_scale": info["log"], "rows": len(u.rows),
            "revman_estimable": (a.get("ESTIMABLE") or "YES").upper() == "YES", "revman_studies": f("STUDIES"),
            "revman_effect_size": f("EFFECT_SIZE"), "revman_ci_start": f("CI_START"), "revman_ci_end": f("CI_END"),
            "revman_z": f("Z"), "revman_p_z": f("P_Z"), "revman_tau2": f("TAU2"), "revman_i2": f("I2"),
            "revman_chi2": f("CHI2"), "revman_df": f("DF"), "revman_p_chi2": f("P_CHI2")}


# ------------------------------------------------------------------------------------------ re-running


def _pool_unit(unit: _Unit, info: dict, sub_tau2: dict[str, float] | None = None) -> dict:
    """Our result for one analysis under RevMan 5's settings: estimate, ci_low, ci_high, z, tau2, i2, q, df, k
    (NaN where not estimable), and per-study (yi, vi) for a hidden total's weights."""
    from ..stats.binary import pool_binary
    from ..stats.effects import effect_size
    from ..stats.pooling import pool

    rows = [r for r in unit.rows if r["poolable"]]
    random = info["model"] == "random"
    level = info["level"]
    nan = {k: np.nan for k in ("estimate", "ci_low", "ci_high", "z", "tau2", "i2", "q", "df")}
    out = dict(nan, k=0, yi=np.array([]), vi=np.array([]), subs=np.array([], dtype=object))
    if not rows:
        return out
    subs = np.array([r["subgroup_no"] for r in rows], dtype=object)
    dtype = info["data_type"]
    if dtype == "DICH":
        e1 = np.array([r["events1"] for r in rows])
        n1 = np.array([r["n1"] for r in rows])
        e2 = np.array([r["events2"] for r in rows])
        n2 = np.array([r["n2"] for r in rows])
        if info["swap"]:
            e1, e2 = n1 - e1, n2 - e2
        measure = {"PETO_OR": "OR"}.get(info["measure"], info["measure"])
        method = "PETO" if info["measure"] == "PETO_OR" or info["method"] == "PETO" else info["method"]
        try:
            res = pool_binary(measure, e1, n1, e2, n2, method=method, preset="revman5", random=random, level=level)
        except ValueError:
            return out
        yi, vi = res.studies["yi"].to_numpy(), res.studies["vi"].to_numpy()
        ok = np.isfinite(yi) & np.isfinite(vi)
        fit = res.random if random and res.random is not None else res
        if not np.isfinite(fit.estimate) or ok.sum() == 0:
            return out
        est, se = fit.estimate, fit.se
        q, df, i2 = res.q, res.q_df, res.i2
        tau2 = res.random.tau2 if random and res.random is not None else np.nan
        k = int(ok.sum())
        yi, vi, subs = yi[ok], vi[ok], subs[ok]
    else:
        if dtype == "CONT":
            m1, s1, n1, m2, s2, n2 = (np.array([r[c] for r in rows]) for c in ("mean1", "sd1", "n1", "mean2", "sd2",
                                                                                 "n2"))
            sdp2 = ((n1 - 1) * s1**2 + (n2 - 1) * s2**2) / (n1 + n2 - 2)
            ok = (sdp2 > 0) if info["measure"] == "SMD" else ((s1 > 0) | (s2 > 0))
            if info["measure"] == "SMD":
                ok &= n1 + n2 > 2
            if not ok.any():
                return out
            es = effect_size("SMD" if info["measure"] == "SMD" else "MD", m1=m1[ok], sd1=s1[ok], n1=n1[ok],
                             m2=m2[ok], sd2=s2[ok], n2=n2[ok], preset="revman5")
            yi, vi = es["yi"].to_numpy(), es["vi"].to_numpy()
            subs = subs[ok]
        else:
            yi = np.array([r["estimate"] for r in rows])
            vi = np.array([r["se"] for r in rows]) ** 2
        fit = pool(yi, vi, preset="revman5", method="DL" if random else "FE", level=level)
        est, se, q, df, i2 = fit.estimate, fit.se, fit.q, fit.q_df, fit.i2
        tau2 = fit.tau2 if random else np.nan
        k = len(yi)
    if sub_tau2 is not None and random:
        # a hidden total (TOTALS = SUB): each study weighted with its own subgroup's tau^2, as RevMan stores it
        extra = np.array([sub_tau2.get(s, 0.0) for s in subs])
        hidden = pool(yi, vi + extra, method="FE", level=level)
        est, se = hidden.estimate, hidden.se
    from scipy import stats

    crit = float(stats.norm.ppf(1 - (1 - level) / 2))
    return {"estimate": est, "ci_low": est - crit * se, "ci_high": est + crit * se, "z": est / se if se > 0 else np.nan,
            "tau2": tau2, "i2": i2, "q": q, "df": df, "k": k, "yi": yi, "vi": vi, "subs": subs}


def _concordance(review: RevManReview, tolerance: float) -> pd.DataFrame:
    records = []
    units = list(review._units)
    sub_tau2: dict[tuple, dict] = {}
    ours: dict[int, dict] = {}
    for i, (u, info) in enumerate(units):
        if u.sub_no:
            ours[i] = _pool_unit(u, info)
            sub_tau2.setdefault((u.comp_no, u.out_no), {})[u.sub_no] = (ours[i]["tau2"] if info["model"] == "random"
                                                                        else 0.0)
    for i, (u, info) in enumerate(units):
        if not u.sub_no:
            hidden = info["totals"] == "SUB" and any(v.sub_no for v, _ in units if (v.comp_no, v.out_no) ==
                                                     (u.comp_no, u.out_no))
            taus = {k: (0.0 if not np.isfinite(v) else v) for k, v in sub_tau2.get((u.comp_no, u.out_no), {}).items()}
            ours[i] = _pool_unit(u, info, taus if hidden else None)
    for i, (u, info) in enumerate(units):
        records.append(_concordance_row(u, info, ours[i], tolerance))
    return pd.DataFrame(records, columns=CONCORDANCE_COLUMNS)


def _concordance_row(u: _Unit, info: dict, ours: dict, tolerance: float) -> dict:
    a = u.attrs
    stored = {k: _num(a.get(attr))[0] for k, attr in (("estimate", "EFFECT_SIZE"), ("ci_low", "CI_START"),
                                                      ("ci_high", "CI_END"), ("z", "Z"), ("tau2", "TAU2"),
                                                      ("i2", "I2"), ("q", "CHI2"), ("df", "DF"))}
    log = info["log"]
    if log:
        for k in ("estimate", "ci_low", "ci_high"):
            v = stored[k]
            stored[k] = math.log(v) if v > 0 else np.nan
    if np.isfinite(stored["z"]) and np.isfinite(ours["estimate"]) and ours["estimate"] < 0:
        stored["z"] = -abs(stored["z"])  # RevMan stores |Z|
    revman_estimable = (a.get("ESTIMABLE") or "YES").upper() == "YES"
    total = not u.sub_no
    has_subgroups = info["has_subgroups"]
    hidden = total and info["totals"] == "SUB"
    rec = {"comparison_no": u.comp_no, "comparison_name": u.comp_name, "outcome_no": u.out_no,
           "outcome_name": u.out_name, "subgroup_no": u.sub_no, "subgroup_name": u.sub_name,
           "analysis": ".".join(x for x in (u.comp_no, u.out_no, u.sub_no) if x), "data_type": info["data_type"],
           "measure": info["measure"], "method": info["method"], "model": info["model"],
           "scale": "log" if log else "identity", "totals": info["totals"],
           "revman_shows": info["totals"] == "YES" or (info["totals"] == "SUB" and not total), "k": ours["k"],
           "revman_studies": _num(a.get("STUDIES"))[0], "revman_df": stored["df"], "ours_df": ours["df"]}
    if info["totals"] == "NO" or (hidden and (not has_subgroups or not revman_estimable)):
        rec.update(status="not_pooled", within_tolerance=None,
                   note="RevMan pools no total here (TOTALS = NO)" if info["totals"] == "NO" else
                   "RevMan shows subtotals only (TOTALS = SUB) and stores no total for this outcome")
        return rec
    ours_estimable = bool(np.isfinite(ours["estimate"]))
    if revman_estimable and not np.isfinite(stored["estimate"]) and a.get("EFFECT_SIZE", "").strip() == "":
        rec.update(status="not_stored", within_tolerance=None,
                   note="RevMan stored no result (the file was saved without calculated data); ours shown alone")
        for k in _COMPARED:
            rec[f"ours_{k}"] = ours[k]
        return rec
    if not revman_estimable and not ours_estimable:
        rec.update(status="not_estimable", within_tolerance=None, note="not estimable in RevMan nor here")
        return rec
    if revman_estimable != ours_estimable:
        rec.update(status="differs_in_estimability", within_tolerance=False,
                   note=("RevMan gives no estimate, we do" if ours_estimable else "RevMan gives an estimate, we none"))
        for k in _COMPARED:
            rec[f"revman_{k}"], rec[f"ours_{k}"] = stored[k], ours[k]
        return rec
    notes, diffs = [], []
    single = ours["k"] <= 1 or ours["df"] == 0
    for k in _COMPARED:
        r_v, o_v = stored[k], ours[k]
        compare = True
        if k == "tau2" and info["model"] != "random":
            r_v = o_v = np.nan  # RevMan shows no tau^2 for a fixed effect (it stores one anyway)
            compare = False
        if k == "i2" and single:
            compare = False  # one study: RevMan shows no heterogeneity (its stored I^2 may come from a Q of 1e-30)
            if np.isfinite(r_v) and abs(r_v - o_v) > tolerance:
                notes.append(f"one study: heterogeneity not applicable (RevMan stores I^2 = {r_v:g} from "
                             f"Q = {stored['q']:g}; not compared)")
        if not np.isfinite(r_v) and not np.isfinite(o_v):
            d = np.nan
        elif np.isfinite(r_v) and np.isfinite(o_v):
            d = abs(r_v - o_v)
        else:
            d = np.inf
        rec.update({f"revman_{k}": r_v, f"ours_{k}": o_v, f"diff_{k}": d if compare else np.nan})
        if compare and not np.isnan(d):
            diffs.append(d)
    if hidden:
        notes.append("RevMan shows subtotals only; the total it stores" + (
            " weights each study with its own subgroup's tau^2 (so do we)" if info["model"] == "random" else
            " is compared with ours pooling every row"))
    mx = max(diffs) if diffs else np.nan
    rec.update(status="compared", max_abs_diff=mx, within_tolerance=bool(mx <= tolerance), note="; ".join(notes))
    return rec


# ------------------------------------------------------------------------------------------ the folder


def check_revman_output(out_dir: str | Path, review_file: str | Path | None = None) -> Path:
    """Refuse an output folder ``mt-evidence revman`` may not replace (``OutputRefused`` with the reason): a file,
    a folder it did not write, the bundled evidence or the folder holding the RevMan file."""
    from . import atomic
    from .build import protected_inputs

    protected = protected_inputs()
    if review_file is not None:
        protected.append(Path(review_file))
    return atomic.check_output_folder(out_dir, WRITER, protected=protected)


@dataclass(frozen=True)
class RevManFolder:
    """What :func:`write_revman_folder` wrote."""

    path: Path
    files: tuple[str, ...]
    concordance: pd.DataFrame
    within: int
    compared: int
    not_estimable: int
    not_pooled: int
    not_stored: int
    tolerance: float

    def summary_line(self) -> str:
        differ = self.compared - self.within
        extra = []
        if self.not_stored:
            extra.append(f"{self.not_stored} without stored results in RevMan")
        if self.not_estimable:
            extra.append(f"{self.not_estimable} not estimable in RevMan nor here")
        if self.not_pooled:
            extra.append(f"{self.not_pooled} without totals in RevMan")
        tail = f" ({'; '.join(extra)})" if extra else ""
        where = self.path / "revman_concordance.csv"
        if differ:
            return (f"{self.within} of {self.compared} analyses within {self.tolerance:g} of RevMan; {differ} differ: "
                    f"see {where}{tail}")
        return f"{self.within} of {self.compared} analyses within {self.tolerance:g} of RevMan{tail}; see {where}"


def _whole(df: pd.DataFrame, columns: tuple[str, ...]) -> pd.DataFrame:
    """Counts written as whole numbers (``20``, not ``20.0``)."""
    out = df.copy()
    for c in columns:
        out[c] = pd.array([None if pd.isna(v) else int(v) for v in out[c]], dtype="Int64")
    return out


def write_revman_folder(review: RevManReview, out_dir: str | Path, *, tolerance: float = TOLERANCE) -> RevManFolder:
    """Write ``review`` as an evidence folder, all or nothing: studies.csv, arms.csv, contrasts.csv, review.toml,
    revman_concordance.csv and (when there are any) revman_warnings.txt.

    The folder must be new, empty, or one this command wrote (:func:`check_revman_output`); anything else is
    refused before anything is written. The tables are checked against the data contract and the vocabulary
    before writing (an internal error, not the user's, if they fail).
    """
    from . import atomic
    from .export import csv_bytes
    from .io import validate_tables
    from .vocabulary import vocabulary_from_spec

    out = check_revman_output(out_dir, review.path)
    import tomllib

    toml_text = review.review_toml()
    vocab = vocabulary_from_spec(tomllib.loads(toml_text), "review.toml")
    tables = {"studies": review.studies, "arms": review.arms, "contrasts": review.contrasts}
    files = {"studies.csv": csv_bytes(_whole(review.studies, ("year",)), None, float_format=None),
             "arms.csv": csv_bytes(_whole(review.arms, ("n", "events")), None, float_format=None),
             "contrasts.csv": csv_bytes(_whole(review.contrasts, ("n1", "n2")), None, float_format=None)}
    import io as _io

    raw = {t: pd.read_csv(_io.BytesIO(files[f"{t}.csv"]), dtype=str, keep_default_na=False, na_values=[""])
           for t in tables}
    raw["rob"] = pd.DataFrame(columns=list(schema.ROB_COLUMNS))
    _, problems = validate_tables(raw, {t: f"{t}.csv" for t in raw}, vocab)
    if problems:  # pragma: no cover - the reader makes valid tables; this guards the folder
        raise RuntimeError("mt-evidence revman made tables the data contract refuses (please report this):\n"
                           + "\n".join(f"  - {p}" for p in problems[:20]))
    conc = review.concordance(tolerance)
    files["review.toml"] = toml_text.encode("utf-8")
    files["revman_concordance.csv"] = csv_bytes(conc, CONCORDANCE_COLUMNS, float_format=None)
    if review.warnings:
        files["revman_warnings.txt"] = ("\n".join(review.warnings) + "\n").encode("utf-8")
    atomic.replace_owned_folder(out, files, WRITER, protected=[review.path])
    compared = conc["status"].isin(["compared", "differs_in_estimability"])
    return RevManFolder(path=out, files=tuple(files), concordance=conc,
                        within=int((conc["within_tolerance"] == True).sum()),  # noqa: E712 - object column
                        compared=int(compared.sum()), not_estimable=int((conc["status"] == "not_estimable").sum()),
                        not_pooled=int((conc["status"] == "not_pooled").sum()),
                        not_stored=int((conc["status"] == "not_stored").sum()), tolerance=tolerance)

"""The data contract: columns, types, allowed values, and validation that reports *every* problem.

Three tables (see ``data/raw/README.md`` for the full dictionary):

* ``studies``: one row per trial;
* ``arms``: one row per trial x arm x outcome x time point (arm-level summaries);
* ``contrasts``: between-group results for trials that report only those.

Column-level rules (types, allowed labels, ranges) are pandera schemas validated lazily, so every failing
cell is reported; rules that span columns or files (a CI that must contain its estimate, a value inside the
instrument's range, an arm whose study is missing, duplicate rows) are checked here. Each problem names the
file, the row as a spreadsheet shows it (header = row 1), the column, what was found and what is expected.
"""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass

import numpy as np
import pandas as pd
import pandera.pandas as pa

INTERVENTIONS = ("manual_therapy", "exercise", "combined", "usual_care", "advice", "sham", "wait_list", "other")
CONTROLS = ("usual_care", "advice", "sham", "wait_list")
OUTCOMES = ("pain", "disability", "leg_pain", "global_improvement", "function", "quality_of_life", "clinical_status",
            "adverse_events", "medication_use", "work_absence")
POPULATIONS = ("acute", "subacute", "chronic", "mixed")
VALUE_TYPES = ("final", "change")
ROB_VALUES = ("low", "some_concerns", "high", "unclear")
ROB_TOOLS = ("RoB2", "RoB1")
# HR hazard ratio, ROM ratio of means, GEN any other measure (named in the note), e.g. a RevMan generic
# inverse-variance outcome
ESTIMATE_TYPES = ("MD", "SMD", "RR", "OR", "RD", "HR", "ROM", "GEN")
# role of a row in the analyses: "primary" (default when empty), "alternative" (another analysis of the same
# data, e.g. an abstract's figure beside a table's; kept for sensitivity analyses), "excluded" (kept for the
# record, never pooled; the note says why)
ROLES = ("primary", "alternative", "excluded")
# how a change score is signed as printed: follow-up minus baseline (the default), or baseline minus
# follow-up (a reduction printed as a positive number). Values are stored as printed; the build re-signs them.
CHANGE_SIGNS = ("followup_minus_baseline", "baseline_minus_followup")

STUDY_COLUMNS = {
    "study_id": "str", "citation": "str", "year": "int", "doi": "str", "pmid": "str", "population": "str",
    "setting": "str", "country": "str", "n_randomised": "num", "rob_randomisation": "str", "rob_deviations": "str",
    "rob_missing": "str", "rob_measurement": "str", "rob_selection": "str", "rob_overall": "str", "rob_tool": "str",
    "rob_source": "str", "sources": "str", "note": "str",
}
STUDY_REQUIRED = ("study_id", "citation", "year", "population", "sources")

ARM_COLUMNS = {
    "study_id": "str", "arm": "str", "intervention": "str", "technique": "str", "outcome": "str",
    "instrument": "str", "scale_min": "num", "scale_max": "num", "higher_is_worse": "bool",
    "timepoint_weeks": "num", "value_type": "str", "change_sign": "str", "n": "num", "events": "num", "mean": "num",
    "sd": "num", "se": "num",
    "ci_low": "num", "ci_high": "num", "median": "num", "q1": "num", "q3": "num", "min": "num", "max": "num",
    "adjusted": "bool", "role": "str", "source_url": "str", "source_location": "str", "derivation": "str",
    "note": "str",
}
ARM_REQUIRED = ("study_id", "arm", "intervention", "outcome", "instrument", "higher_is_worse", "value_type", "n",
                "source_url", "source_location")

CONTRAST_COLUMNS = {
    "study_id": "str", "arm1": "str", "arm2": "str", "intervention1": "str", "intervention2": "str",
    "technique1": "str", "technique2": "str", "outcome": "str", "instrument": "str", "scale_min": "num", "scale_max": "num", "higher_is_worse": "bool",
    "timepoint_weeks": "num", "estimate_type": "str", "estimate": "num", "se": "num", "ci_low": "num",
    "ci_high": "num", "ci_level": "num", "p_value": "str", "direction_printed": "str", "direction_stored": "str",
    "n1": "num", "n2": "num", "adjusted": "bool", "role": "str", "source_url": "str", "source_location": "str",
    "derivation": "str", "note": "str",
}
CONTRAST_REQUIRED = ("study_id", "arm1", "arm2", "intervention1", "intervention2", "outcome", "instrument",
                     "higher_is_worse", "estimate_type", "estimate", "direction_stored", "source_url",
                     "source_location")

# risk of bias, one row per trial x tool x domain (optional table; docs/methods.md section 17): as published by
# a review or guideline (basis "published", the default), or the review's own RoB 2 assessment by two
# independent readers with a consensus (basis "review_own": the readers' judgements and the consensus note kept)
ROB_COLUMNS = {
    "study_id": "str", "tool": "str", "domain": "str", "judgement": "str", "judgement_printed": "str",
    "source_url": "str", "source_location": "str", "review_citation": "str", "note": "str", "basis": "str",
    "signalling": "str", "reader1": "str", "reader2": "str", "consensus_note": "str",
}
ROB_REQUIRED = ("study_id", "tool", "domain", "judgement", "source_url", "source_location", "review_citation")
ROB_JUDGEMENTS = ("low", "unclear", "some_concerns", "high", "not_assessed")
ROB_BASES = ("published", "review_own")
# the review's own RoB 2 assessment: five domains and the overall judgement, which is the least favourable
# domain (Sterne 2019, BMJ 366:l4898)
ROB2_DOMAINS = ("randomisation", "deviations", "missing", "measurement", "selection")
ROB2_ORDER = {"low": 0, "some_concerns": 1, "high": 2}

# adverse events per arm (optional table; docs/methods.md section 13)
EVENT_TYPES = ("any_adverse_event", "serious_adverse_event", "increased_pain_or_soreness", "other")
EVENT_UNITS = ("participants", "events")
HARM_COLUMNS = {
    "study_id": "str", "arm": "str", "intervention": "str", "technique": "str", "event_type": "str",
    "event_label": "str", "events": "num", "n": "num", "unit": "str", "definition": "str", "timepoint_weeks": "num",
    "source_url": "str", "source_location": "str", "derivation": "str", "note": "str",
}
HARM_REQUIRED = ("study_id", "arm", "intervention", "event_type", "unit", "source_url", "source_location")

# dose and co-interventions per arm (optional table; docs/methods.md sections 14 and 15)
ARM_DETAIL_COLUMNS = {
    "study_id": "str", "arm": "str", "intervention": "str", "technique": "str", "sessions": "num",
    "sessions_printed": "str", "weeks_of_care": "num", "provider": "str", "co_intervention": "str",
    "co_intervention_differs": "bool", "source_url": "str", "source_location": "str", "derivation": "str",
    "note": "str",
}
ARM_DETAIL_REQUIRED = ("study_id", "arm", "intervention", "source_url", "source_location")

TABLES = {
    "studies": (STUDY_COLUMNS, STUDY_REQUIRED),
    "arms": (ARM_COLUMNS, ARM_REQUIRED),
    "contrasts": (CONTRAST_COLUMNS, CONTRAST_REQUIRED),
    "rob": (ROB_COLUMNS, ROB_REQUIRED),
    "harms": (HARM_COLUMNS, HARM_REQUIRED),
    "arm_details": (ARM_DETAIL_COLUMNS, ARM_DETAIL_REQUIRED),
}
OPTIONAL_TABLES = ("contrasts", "rob", "harms", "arm_details")
# direction_stored: how the stored estimate is signed
# ("not_stated": the source does not say which way the difference runs; such a row is never pooled)
DIRECTIONS = ("arm1_minus_arm2", "arm2_minus_arm1", "not_stated")


@dataclass(frozen=True)
class Problem:
    """One problem in an input file."""

    file: str
    row: int | None  # as a spreadsheet shows it: the header is row 1, the first data row is row 2
    column: str | None
    found: str
    expected: str

    def __str__(self) -> str:
        where = self.file
        if self.row is not None:
            where += f", row {self.row}"
        if self.column:
            where += f", {'key' if self.file.endswith('.toml') else 'column'} '{self.column}'"
        return f"{where}: found {self.found}; expected {self.expected}"


class EvidenceError(ValueError):
    """Raised when input files have problems; ``problems`` lists every one of them."""

    def __init__(self, problems: list[Problem]):
        self.problems = list(problems)
        head = f"{len(self.problems)} problem(s) in the evidence files:\n"
        super().__init__(head + "\n".join(f"  - {p}" for p in self.problems))


# ----------------------------------------------------------------------------------------- coercion

_TRUE = {"true", "t", "yes", "y", "1"}
_FALSE = {"false", "f", "no", "n", "0"}


def _blank(v) -> bool:
    return v is None or (isinstance(v, float) and np.isnan(v)) or (isinstance(v, str) and v.strip() == "") or v is pd.NA


#: counts: whole numbers (a group of 29.5 people is a typing error, and would be summed as participants)
COUNT_COLUMNS = frozenset({"n", "n1", "n2", "n_randomised"})
MAX_COUNT = 10_000_000
#: characters that hide or reorder text (NUL, controls, bidirectional overrides, zero-width): never in evidence
HIDDEN_CHARS = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f\u200b-\u200f\u202a-\u202e\u2060-\u2069\ufeff]")


def _hidden_char_name(text: str) -> str | None:
    m = HIDDEN_CHARS.search(text)
    if m is None:
        return None
    c = m.group(0)
    return {"\x00": "a NUL byte", "\u202e": "a right-to-left override (U+202E)",
            "\u202d": "a left-to-right override (U+202D)", "\ufeff": "a zero-width no-break space (U+FEFF)",
            "\u200b": "a zero-width space (U+200B)"}.get(c, f"an invisible or control character (U+{ord(c):04X})")


_EDGE_SPACE = re.compile(r"\n[ \t\r\f\v]|[ \t\r\f\v]\n")


def _joined(values: np.ndarray) -> str:
    try:
        return "\n".join(values)  # all text: one C-level join
    except TypeError:
        return "\n".join(v if isinstance(v, str) else str(v) for v in values)


def _edge_space(joined: str) -> bool:
    """Whether texts joined by newlines (with one before and after) hold one that starts or ends with whitespace:
    two substring searches, and the regex only when a tab, CR, FF or VT occurs at all."""
    if "\n " in joined or " \n" in joined:
        return True
    return any(c in joined for c in "\t\r\f\v") and _EDGE_SPACE.search(joined) is not None


def _has_hidden(joined: str) -> bool:
    """Whether texts joined by newlines hold a HIDDEN_CHARS character; none of them is printable, so printable
    text (the usual case) is cleared in one fast pass."""
    return not joined.replace("\n", " ").isprintable() and HIDDEN_CHARS.search(joined) is not None


def _needs_strip(values: np.ndarray) -> bool:
    """Whether any text value starts or ends with whitespace (one search over the joined column)."""
    if not len(values):
        return False
    return _edge_space("\n" + _joined(values) + "\n")


def _blank_mask(series: pd.Series) -> np.ndarray:
    """Vectorised ``_blank``: missing, or text that is empty after stripping."""
    vals = series.astype(object).to_numpy(object)
    na = pd.isna(vals)
    out = na.copy()
    present = vals[~na]
    if len(present):
        if _needs_strip(present):
            present = np.array([str(v).strip() for v in present], dtype=object)
        out[~na] = present == ""
    return out


def _text_values(series: pd.Series) -> tuple[np.ndarray, str]:
    """Text cells stripped of surrounding whitespace, None where blank (strips only when some cell needs it), and
    the distinct non-blank cells joined by newlines (for searches over the whole column). Each distinct text is
    handled once; cells that are not all text (numbers from Excel) are handled one by one."""
    vals = series.astype(object).to_numpy(object)
    codes, distinct = pd.factorize(vals)  # missing cells: code -1
    if not all(isinstance(v, str) for v in distinct):  # cell by cell (1 and True would count as one value)
        present = ~pd.isna(vals)
        distinct, codes = vals[present], np.full(len(vals), -1)
        codes[present] = np.arange(len(distinct))
    joined = ""
    if len(distinct):
        try:
            joined = "\n".join(distinct)
            plain = not _edge_space("\n" + joined + "\n")  # nothing to strip
        except TypeError:  # not all text
            plain = False
        if not plain:
            distinct = np.array([str(v).strip() for v in distinct], dtype=object)
            joined = "\n".join(distinct)
    texts = np.append(np.asarray(distinct, dtype=object), None)
    texts[texts == ""] = None
    return texts[codes], joined


def _to_numbers(cells: np.ndarray, blank: np.ndarray) -> np.ndarray:
    """``pd.to_numeric(errors="coerce")`` of the cells (blank ones as None) as floats, each distinct text parsed
    once. to_numeric's value for a cell depends only on the set of distinct cells, so this equals converting
    the whole column (which is done when the cells are not all text)."""
    filled = np.where(blank, None, cells)
    codes, distinct = pd.factorize(filled)
    if not all(isinstance(v, str) for v in distinct):
        return pd.to_numeric(pd.Series(filled), errors="coerce").to_numpy(float)
    if blank.any():
        distinct = np.append(distinct.astype(object), None)
    numbers = pd.to_numeric(pd.Series(distinct, dtype=object), errors="coerce").to_numpy(float)
    return np.where(codes >= 0, numbers[codes], np.nan)


def _whole_number(v) -> int | str | None:
    """The whole number a cell holds (up to 1e9 in size); None when it is blank, "?" when it is not one."""
    if _blank(v):
        return None
    try:
        f = float(str(v).strip())
        if not np.isfinite(f) or f != int(f) or abs(f) > 1e9:
            raise ValueError
        return int(f)
    except (TypeError, ValueError, OverflowError):
        return "?"


def coerce_table(df: pd.DataFrame, table: str, file: str) -> tuple[pd.DataFrame, list[Problem]]:
    """Check required columns and coerce types; return the typed frame and the problems found.

    Cells that cannot be read as their type become missing in the typed frame and are reported.
    """
    columns, required = TABLES[table]
    problems: list[Problem] = []
    missing = [c for c in required if c not in df.columns]
    for c in missing:
        problems.append(Problem(file, 1, c, "no such column in the header",
                                f"a column '{c}' ({_describe_type(columns[c])}); see data/raw/README.md"))
    unknown = [c for c in df.columns if c not in columns and not str(c).startswith("x_")]
    for c in unknown:
        problems.append(Problem(file, 1, str(c), f"unknown column '{c}'",
                                f"one of the documented columns ({', '.join(columns)}), or a custom column "
                                "prefixed with 'x_'"))
    out = pd.DataFrame(index=df.index)
    for col, kind in columns.items():
        if col not in df.columns:
            out[col] = pd.Series([np.nan if kind == "num" else None] * len(df), index=df.index, dtype=object
                                 if kind != "num" else float)
            continue
        raw = df[col]
        if kind == "num":
            cells = raw.astype(object).to_numpy(object)
            blank = pd.isna(cells)
            fast = _to_numbers(cells, blank)
            for pos in np.flatnonzero(~blank & ~np.isfinite(fast)):
                blank[pos] = _blank(cells[pos])  # text that is only whitespace is an empty cell
            suspect = ~blank & ~np.isfinite(fast)
            if col in COUNT_COLUMNS:
                with np.errstate(invalid="ignore"):
                    suspect |= np.isfinite(fast) & ((fast != np.floor(fast)) | (fast < 0) | (fast > MAX_COUNT))
            vals = np.where(blank, np.nan, fast)
            for pos in np.flatnonzero(suspect):
                i, v = raw.index[pos], raw.iloc[pos]
                try:
                    x = float(str(v).strip()) if isinstance(v, str) else float(v)
                except (TypeError, ValueError):
                    vals[pos] = np.nan
                    problems.append(Problem(file, _row(i), col, f"'{v}' (not a number)",
                                            "a number (decimal point '.', no units or text; leave empty if missing)"))
                    continue
                if not np.isfinite(x):
                    vals[pos] = np.nan
                    problems.append(Problem(file, _row(i), col, f"'{v}' (not a finite number)",
                                            "a finite number; leave the cell empty if the value is missing"))
                elif col in COUNT_COLUMNS and (x != int(x) or x < 0 or x > MAX_COUNT):
                    vals[pos] = np.nan
                    problems.append(Problem(file, _row(i), col, f"'{v}' (not a count of people)",
                                            f"a whole number of participants from 0 to {MAX_COUNT:,}"))
                else:
                    vals[pos] = x
            out[col] = pd.Series(vals, index=df.index, dtype=float)
        elif kind == "int":
            cells = raw.astype(object).to_numpy(object)
            known = {v: _whole_number(v) for v in pd.unique(cells) if isinstance(v, str)}  # each text once
            vals = []
            for i, v in zip(df.index, cells):
                number = known[v] if isinstance(v, str) else _whole_number(v)
                if number == "?":
                    number = None
                    problems.append(Problem(file, _row(i), col, f"'{v}' (not a whole number)", "a whole number"))
                vals.append(number)
            out[col] = pd.Series(vals, index=df.index, dtype="Int64")
        elif kind == "bool":
            def parse(v):
                if _blank(v):
                    return None
                t = str(v).strip().lower()
                return True if t in _TRUE else False if t in _FALSE else "?"

            codes, distinct = pd.factorize(raw.astype(object).to_numpy(object))  # missing cells: code -1
            vals = np.array([parse(v) for v in distinct] + [None], dtype=object)[codes]  # parsed once per value
            bad = vals == "?"
            for i in df.index[bad]:
                problems.append(Problem(file, _row(i), col, f"'{raw[i]}'", "true or false"))
            vals[bad] = None
            out[col] = pd.Series(vals, index=df.index, dtype="boolean")
        else:
            texts, joined = _text_values(raw)
            if _has_hidden(joined):  # one search over the column; cells one by one only when it finds something
                for pos, v in enumerate(raw.astype(object).to_numpy(object)):
                    if isinstance(v, str):
                        hidden = _hidden_char_name(v)
                        if hidden:
                            problems.append(Problem(file, _row(raw.index[pos]), col,
                                                    f"{hidden} in '{HIDDEN_CHARS.sub('?', v)}'",
                                                    "plain text without invisible, control or direction-changing "
                                                    "characters (they can make a report show something else)"))
            out[col] = pd.Series(texts, index=df.index, dtype=object)
    for c in df.columns:
        if str(c).startswith("x_"):
            out[c] = df[c]
    return out, problems


def _describe_type(kind: str) -> str:
    return {"num": "numbers", "int": "whole numbers", "bool": "true/false", "str": "text"}[kind]


def _row(index) -> int:
    """Spreadsheet row of a 0-based data index (header is row 1)."""
    return int(index) + 2


# --------------------------------------------------------------------------------------- pandera rules


def _isin(values, nullable=False):
    return pa.Column(object, pa.Check.isin(list(values)), nullable=nullable, required=False, coerce=False)


def _num(*checks, nullable=True):
    return pa.Column(float, list(checks), nullable=nullable, required=False)


#: a study_id: a letter of any alphabet first, then letters, digits, ``_`` and ``-`` (NFC-composed text)
STUDY_ID_PATTERN = r"^[^\W\d_][\w\-]*$"
YEAR_MIN, YEAR_MAX = 1900, 2030


def is_study_id(value) -> bool:
    """Whether ``value`` is a valid ``study_id`` (see :data:`STUDY_ID_PATTERN`)."""
    return isinstance(value, str) and re.match(STUDY_ID_PATTERN, value) is not None


STUDIES_SCHEMA = pa.DataFrameSchema(
    {
        # letters of any alphabet (Møller2010, Martínez2015), digits, _ and -, starting with a letter
        "study_id": pa.Column(object, pa.Check.str_matches(STUDY_ID_PATTERN), nullable=False),
        "citation": pa.Column(object, nullable=False),
        "year": pa.Column("Int64", pa.Check.in_range(YEAR_MIN, YEAR_MAX), nullable=False),
        "population": _isin(POPULATIONS),
        "sources": pa.Column(object, nullable=False),  # each part a web address: source_problems
        "n_randomised": _num(pa.Check.ge(2)),
        "rob_randomisation": _isin(ROB_VALUES, True),
        "rob_deviations": _isin(ROB_VALUES, True),
        "rob_missing": _isin(ROB_VALUES, True),
        "rob_measurement": _isin(ROB_VALUES, True),
        "rob_selection": _isin(ROB_VALUES, True),
        "rob_overall": _isin(ROB_VALUES, True),
        "rob_tool": _isin(ROB_TOOLS, True),
    },
    unique=["study_id"],
    report_duplicates="exclude_first",
)

ARMS_SCHEMA = pa.DataFrameSchema(
    {
        "study_id": pa.Column(object, nullable=False),
        "arm": pa.Column(object, nullable=False),
        "intervention": _isin(INTERVENTIONS),
        "outcome": _isin(OUTCOMES),
        "instrument": pa.Column(object, nullable=False),
        "value_type": _isin(VALUE_TYPES),
        "change_sign": _isin(CHANGE_SIGNS, True),
        "timepoint_weeks": _num(pa.Check.in_range(0, 260)),
        "n": _num(pa.Check.ge(2)),
        "events": _num(pa.Check.ge(0)),
        "sd": _num(pa.Check.gt(0)),
        "se": _num(pa.Check.gt(0)),
        "role": _isin(ROLES, True),
        "source_url": pa.Column(object, nullable=False),  # checked by source_problems
        "source_location": pa.Column(object, nullable=False),
    },
)

CONTRASTS_SCHEMA = pa.DataFrameSchema(
    {
        "study_id": pa.Column(object, nullable=False),
        "intervention1": _isin(INTERVENTIONS),
        "intervention2": _isin(INTERVENTIONS),
        "outcome": _isin(OUTCOMES),
        "estimate_type": _isin(ESTIMATE_TYPES),
        "estimate": pa.Column(float, nullable=False),
        "direction_stored": _isin(DIRECTIONS),
        "timepoint_weeks": _num(pa.Check.in_range(0, 260)),
        "se": _num(pa.Check.gt(0)),
        "n1": _num(pa.Check.ge(2)),
        "n2": _num(pa.Check.ge(2)),
        "ci_level": _num(pa.Check.in_range(0.5, 0.999)),
        "role": _isin(ROLES, True),
        "source_url": pa.Column(object, nullable=False),  # checked by source_problems
        "source_location": pa.Column(object, nullable=False),
    },
)

ROB_SCHEMA = pa.DataFrameSchema(
    {
        "study_id": pa.Column(object, nullable=False),
        "tool": pa.Column(object, nullable=False),
        "domain": pa.Column(object, nullable=False),
        "judgement": _isin(ROB_JUDGEMENTS),
        "basis": _isin(ROB_BASES, True),
        "reader1": _isin(ROB_JUDGEMENTS, True),
        "reader2": _isin(ROB_JUDGEMENTS, True),
        "source_url": pa.Column(object, nullable=False),  # checked by source_problems
        "source_location": pa.Column(object, nullable=False),
        "review_citation": pa.Column(object, nullable=False),
    },
)

HARMS_SCHEMA = pa.DataFrameSchema(
    {
        "study_id": pa.Column(object, nullable=False),
        "arm": pa.Column(object, nullable=False),
        "intervention": _isin(INTERVENTIONS),
        "event_type": _isin(EVENT_TYPES),
        "unit": _isin(EVENT_UNITS),
        "events": _num(pa.Check.ge(0)),
        "n": _num(pa.Check.ge(1)),
        "timepoint_weeks": _num(pa.Check.in_range(0, 260)),
        "source_url": pa.Column(object, nullable=False),
        "source_location": pa.Column(object, nullable=False),
    },
)

ARM_DETAILS_SCHEMA = pa.DataFrameSchema(
    {
        "study_id": pa.Column(object, nullable=False),
        "arm": pa.Column(object, nullable=False),
        "intervention": _isin(INTERVENTIONS),
        "sessions": _num(pa.Check.in_range(0, 500)),
        "weeks_of_care": _num(pa.Check.in_range(0, 260)),
        "source_url": pa.Column(object, nullable=False),
        "source_location": pa.Column(object, nullable=False),
    },
)

SCHEMAS = {"studies": STUDIES_SCHEMA, "arms": ARMS_SCHEMA, "contrasts": CONTRASTS_SCHEMA, "rob": ROB_SCHEMA,
           "harms": HARMS_SCHEMA, "arm_details": ARM_DETAILS_SCHEMA}

#: the columns whose allowed values a review's vocabulary declares (docs/methods.md section 18)
VOCABULARY_COLUMNS = {
    "studies": {"population": "populations"},
    "arms": {"intervention": "treatments", "outcome": "outcomes"},
    "contrasts": {"intervention1": "treatments", "intervention2": "treatments", "outcome": "outcomes"},
    "harms": {"intervention": "treatments"},
    "arm_details": {"intervention": "treatments"},
}


@functools.lru_cache(maxsize=16)
def schemas_for(treatments: tuple[str, ...], outcomes: tuple[str, ...], populations: tuple[str, ...]) -> dict:
    """The pandera schemas with a review's own treatments, outcomes and populations as the allowed values."""
    if (treatments, outcomes, populations) == (INTERVENTIONS, OUTCOMES, POPULATIONS):
        return SCHEMAS
    allowed = {"treatments": treatments, "outcomes": outcomes, "populations": populations}
    out = dict(SCHEMAS)
    for table, cols in VOCABULARY_COLUMNS.items():
        for col, kind in cols.items():
            out[table] = out[table].update_column(col, checks=[pa.Check.isin(list(allowed[kind]))])
    return out

_EXPECT = {
    "isin": "one of: {values}",
    "str_matches": "text matching the pattern {values}",
    "str_contains": "text containing {values}",
    "in_range": "a value in [{values}]",
    "greater_than_or_equal_to": "a value >= {values}",
    "greater_than": "a value > {values}",
    "not_nullable": "a value (this column is required)",
    "field_uniqueness": "a unique value (each appears once)",
}


def _expected_text(schema: pa.DataFrameSchema, column: str, check: str) -> str:
    col = schema.columns.get(column)
    if check == "not_nullable":
        return "a value (this column is required; leave a note if it is missing in the source)"
    if col is not None:
        for c in col.checks:
            if c.name == check or str(c).startswith(f"<Check {check}"):
                stats = getattr(c, "statistics", {}) or {}
                vals = ", ".join(str(v) for v in stats.values()) if stats else ""
                if check == "isin" and stats:
                    vals = ", ".join(map(str, next(iter(stats.values()))))
                if check == "in_range" and stats:
                    vals = f"{stats.get('min_value')}, {stats.get('max_value')}"
                if check == "str_matches":
                    vals = {
                        "study_id": "letters (of any alphabet), digits, _ or -, starting with a letter",
                    }.get(column, vals)
                template = _EXPECT.get(check, check + " {values}")
                return template.format(values=vals)
    return _EXPECT.get(check, check)


def schema_problems(df: pd.DataFrame, table: str, file: str, schemas: dict | None = None) -> list[Problem]:
    schema = (schemas or SCHEMAS)[table]
    try:
        schema.validate(df, lazy=True, inplace=True)  # nothing is coerced: checking needs no copy
        return []
    except pa.errors.SchemaErrors as err:
        fc = err.failure_cases
    problems = []
    for _, r in fc.iterrows():
        col = r.get("column")
        check = str(r.get("check"))
        idx = r.get("index")
        val = r.get("failure_case")
        if check.startswith("column_in_dataframe") or check.startswith("dtype"):
            continue  # handled by coerce_table
        check_name = check.split("(")[0]
        if check_name.startswith("str_matches") or check_name.startswith("isin") or check_name.startswith("in_range"):
            check_name = check_name.split("(")[0]
        row = _row(idx) if idx is not None and not (isinstance(idx, float) and np.isnan(idx)) else None
        if col is None or (isinstance(col, float) and np.isnan(col)):
            col = str(schema.unique[0]) if schema.unique else None
            check_name = "field_uniqueness"
        found = "an empty cell" if _blank(val) else f"'{_fmt(val)}'"
        problems.append(Problem(file, row, str(col), found, _expected_text(schema, str(col), check_name)))
    return problems


def source_problems(df: pd.DataFrame, table: str, file: str) -> list[Problem]:
    """Every source address that is neither a web link (http/https with a host, or doi:) nor, for
    ``source_url``, a local file reference. ``sources`` in studies: every ``;``-separated part a web link or the
    RevMan review file the trial was imported from."""
    from .links import IMPORTED_EXPECTED, LOCAL_EXPECTED, WEB_LINK_EXPECTED, is_imported_review, source_problem, \
        split_sources

    problems = []
    if table == "studies" and "sources" in df.columns:
        sources = df["sources"]
        found = {}  # each distinct cell checked once: its parts that are not web links, with what is wrong
        for v in sources.dropna().unique():
            if _blank(v):
                continue  # the required-value check reports it
            wrong = [(part, what) for part in split_sources(v)
                     if (what := source_problem(part, local_ok=False)) and not is_imported_review(part)]
            if wrong:
                found[v] = wrong
        for i, v in sources[sources.isin(list(found)).to_numpy(bool)].items():
            for part, what in found[v]:
                problems.append(Problem(file, _row(i), "sources", f"'{part}' ({what})",
                                        "web addresses separated by ';', each " + WEB_LINK_EXPECTED
                                        + "; " + IMPORTED_EXPECTED))
    elif "source_url" in df.columns:
        verdict = {v: source_problem(str(v), local_ok=True) for v in df["source_url"].dropna().unique()}
        bad = df["source_url"].isin([v for v, what in verdict.items() if what and not _blank(v)])
        for i, v in df["source_url"][bad.to_numpy(bool)].items():
            problems.append(Problem(file, _row(i), "source_url", f"'{v}' ({verdict[v]})", LOCAL_EXPECTED))
    return problems


# --------------------------------------------------------------------------------------- cross rules


def _fmt(v) -> str:
    return f"{v:g}" if isinstance(v, (float, int, np.floating)) and not isinstance(v, bool) else str(v)


def _ci_problems(file: str, row: int, r: pd.Series, centre: str) -> list[Problem]:
    """A CI must be ordered and contain its point value (``centre``: the mean or the estimate)."""
    if pd.isna(r["ci_low"]) or pd.isna(r["ci_high"]):
        return []
    if r["ci_low"] > r["ci_high"]:
        return [Problem(file, row, "ci_low", f"ci_low {_fmt(r['ci_low'])} above ci_high {_fmt(r['ci_high'])}",
                        "ci_low <= ci_high")]
    if r["ci_low"] == r["ci_high"]:
        return [Problem(file, row, "ci_high", f"a CI of zero width ({_fmt(r['ci_low'])} to {_fmt(r['ci_high'])})",
                        "ci_low < ci_high (a zero-width CI gives a standard error of 0 and an infinite weight)")]
    if not pd.isna(r[centre]) and not (r["ci_low"] <= r[centre] <= r["ci_high"]):
        return [Problem(file, row, centre, f"{centre} {_fmt(r[centre])} outside its CI [{_fmt(r['ci_low'])}, "
                        f"{_fmt(r['ci_high'])}]", f"a CI that contains the {centre} (check the columns or the sign)")]
    return []


def _suspect_arms(arms: pd.DataFrame) -> np.ndarray:
    """Rows that may break a rule of ``row_problems_arms`` (a cheap, vectorised screen; the exact checks and
    messages then run on these rows only). Every rule's condition implies its row is flagged here."""
    def isna(c):
        return arms[c].isna().to_numpy(bool)

    def val(c):
        return arms[c].to_numpy(float)

    note_blank = _blank_mask(arms["note"])
    flag = isna("mean") & isna("median") & isna("events")
    flag |= ~isna("mean") & isna("sd") & isna("se") & isna("ci_low") & isna("ci_high") & note_blank
    ev, n = val("events"), val("n")
    with np.errstate(invalid="ignore"):
        flag |= ~np.isnan(ev) & (np.isnan(n) | (ev > n) | (ev != np.floor(ev)))
    lo, hi = val("ci_low"), val("ci_high")
    with np.errstate(invalid="ignore"):
        has_ci = ~np.isnan(lo) & ~np.isnan(hi)
        m = val("mean")
        flag |= has_ci & ((lo >= hi) | (~np.isnan(m) & ((m < lo) | (m > hi))))
        smin, smax = val("scale_min"), val("scale_max")
        has_scale = ~np.isnan(smin) & ~np.isnan(smax)
        flag |= has_scale & (smin >= smax)
        vt = arms["value_type"].astype(object).to_numpy()
        for c in ("mean", "median", "q1", "q3", "min", "max"):
            v = val(c)
            present = has_scale & ~np.isnan(v)
            flag |= present & (vt == "final") & ((v < smin) | (v > smax))
            flag |= present & (vt == "change") & (np.abs(v) > (smax - smin))
        flag |= ~_blank_mask(arms["change_sign"]) & (vt != "change")
        for a, b in (("q1", "median"), ("median", "q3"), ("min", "q1"), ("q3", "max")):
            flag |= val(a) > val(b)
    deriv = ~_blank_mask(arms["derivation"])
    flag |= deriv & ~isna("sd") & ~isna("se") & isna("n")
    return flag


def row_problems_arms(arms: pd.DataFrame, file: str) -> list[Problem]:
    out: list[Problem] = []
    for i, r in arms[_suspect_arms(arms)].iterrows():
        row = _row(i)
        has_summary = any(not pd.isna(r[c]) for c in ("mean", "median", "events"))
        if not has_summary:
            out.append(Problem(file, row, "mean", "neither mean, median nor events",
                               "a mean (with sd, se or ci_low/ci_high), a median (with q1/q3 or min/max) or a count "
                               "of participants with the event (events, with n); a trial without arm-level numbers "
                               "belongs in contrasts.csv"))
        ev, n = r["events"], r["n"]
        if not pd.isna(ev):
            if ev != np.floor(ev):
                out.append(Problem(file, row, "events", f"{_fmt(ev)} (not a whole number)",
                                   "a count of participants with the event"))
            if pd.isna(n):
                out.append(Problem(file, row, "n", "an empty cell on a row with events",
                                   "the number of participants the count of events is out of"))
            elif ev > n:
                out.append(Problem(file, row, "events", f"{_fmt(ev)} participants with the event out of {_fmt(n)}",
                                   "no more participants with the event than in the arm (n)"))
        if not pd.isna(r["mean"]) and all(pd.isna(r[c]) for c in ("sd", "se", "ci_low", "ci_high")):
            if not r["note"]:
                out.append(Problem(file, row, "sd", "a mean with no sd, se or CI and no note",
                                   "sd, se or ci_low/ci_high, or a note saying the spread is not reported"))
        out += _ci_problems(file, row, r, "mean")
        lo, hi = r["scale_min"], r["scale_max"]
        if r["role"] == "excluded":
            pass  # kept for the record, never pooled: its range is checked as a warning (plausibility_warnings)
        elif not pd.isna(lo) and not pd.isna(hi):
            if lo >= hi:
                out.append(Problem(file, row, "scale_max", f"scale_max {_fmt(hi)} not above scale_min {_fmt(lo)}",
                                   "scale_min < scale_max"))
            else:
                span = hi - lo
                for c in ("mean", "median", "q1", "q3", "min", "max"):
                    v = r[c]
                    if pd.isna(v):
                        continue
                    if r["value_type"] == "final" and not (lo <= v <= hi):
                        out.append(Problem(file, row, c, f"{c} {_fmt(v)} outside the instrument's range "
                                           f"{_fmt(lo)}-{_fmt(hi)}", f"a value within {_fmt(lo)}-{_fmt(hi)} "
                                           "(or check scale_min/scale_max and value_type)"))
                    if r["value_type"] == "change" and abs(v) > span:
                        out.append(Problem(file, row, c, f"change {_fmt(v)} larger than the whole range "
                                           f"({_fmt(span)})", "a change no larger than scale_max - scale_min"))
        if r["change_sign"] and r["value_type"] != "change":
            out.append(Problem(file, row, "change_sign", f"'{r['change_sign']}' on a '{r['value_type']}' row",
                               "change_sign only on change-score rows (value_type change)"))
        for a, b in (("q1", "median"), ("median", "q3"), ("min", "q1"), ("q3", "max")):
            if not pd.isna(r[a]) and not pd.isna(r[b]) and r[a] > r[b]:
                out.append(Problem(file, row, a, f"{a} {_fmt(r[a])} above {b} {_fmt(r[b])}",
                                   f"{a} <= {b}"))
        if r["derivation"] and not pd.isna(r["sd"]) and not pd.isna(r["se"]) and pd.isna(r["n"]):
            out.append(Problem(file, row, "n", "an empty cell", "n, needed to check sd against se"))
    return out


def _suspect_contrasts(con: pd.DataFrame) -> np.ndarray:
    """A vectorised screen for ``row_problems_contrasts`` (exact checks then run on flagged rows only)."""
    def val(c):
        return con[c].to_numpy(float)

    est, lo, hi, se = val("estimate"), val("ci_low"), val("ci_high"), val("se")
    note_blank = _blank_mask(con["note"])
    with np.errstate(invalid="ignore"):
        flag = np.isnan(se) & (np.isnan(lo) | np.isnan(hi)) & note_blank
        has_ci = ~np.isnan(lo) & ~np.isnan(hi)
        flag |= has_ci & ((lo >= hi) | (est < lo) | (est > hi))
        flag |= (con["arm1"].astype(object) == con["arm2"].astype(object)).to_numpy(bool)
        smin, smax = val("scale_min"), val("scale_max")
        flag |= (con["estimate_type"].astype(object) == "MD").to_numpy(bool) & (np.abs(est) > smax - smin)
    return flag & ~np.isnan(est)


def row_problems_contrasts(con: pd.DataFrame, file: str) -> list[Problem]:
    out: list[Problem] = []
    for i, r in con[_suspect_contrasts(con)].iterrows():
        row = _row(i)
        if pd.isna(r["estimate"]):
            continue  # reported by the schema
        if pd.isna(r["se"]) and (pd.isna(r["ci_low"]) or pd.isna(r["ci_high"])):
            if not r["note"]:
                out.append(Problem(file, row, "se", "no se and no CI, and no note",
                                   "se, or ci_low and ci_high, or a note saying the precision is not reported"))
        out += _ci_problems(file, row, r, "estimate")
        if r["arm1"] == r["arm2"]:
            out.append(Problem(file, row, "arm2", f"the same arm as arm1 ('{r['arm1']}')", "two different arms"))
        lo, hi = r["scale_min"], r["scale_max"]
        if r["role"] != "excluded" and r["estimate_type"] == "MD" and not pd.isna(lo) and not pd.isna(hi) \
                and abs(r["estimate"]) > hi - lo:
            out.append(Problem(file, row, "estimate", f"a difference of {_fmt(r['estimate'])} on a "
                               f"{_fmt(lo)}-{_fmt(hi)} scale", "a difference no larger than the scale's range"))
    return out


def row_problems_harms(harms: pd.DataFrame, file: str) -> list[Problem]:
    """Counts within their arm, whole numbers, a definition or a note, and n wherever a count is given."""
    out: list[Problem] = []
    for i, r in harms.iterrows():
        row = _row(i)
        ev, n = r["events"], r["n"]
        if not pd.isna(ev) and ev != round(ev):
            out.append(Problem(file, row, "events", f"{_fmt(ev)} (not a whole number)", "a count of participants or events"))
        if not pd.isna(n) and n != round(n):
            out.append(Problem(file, row, "n", f"{_fmt(n)} (not a whole number)", "the number of participants in the arm"))
        if r["unit"] == "participants" and not pd.isna(ev) and not pd.isna(n) and ev > n:
            out.append(Problem(file, row, "events", f"{_fmt(ev)} participants with an event out of {_fmt(n)}",
                               "no more participants with an event than in the arm (unit = events for counts of events)"))
        if pd.isna(ev) and _blank(r["note"]):
            out.append(Problem(file, row, "events", "no count and no note",
                               "the count as printed, or a note saying what the source says instead"))
        if _blank(r["definition"]) and _blank(r["note"]):
            out.append(Problem(file, row, "definition", "no definition and no note",
                               "how the trial defined or collected adverse events, or a note saying it does not say"))
    return out


def rob2_overall(domains: dict[str, str]) -> str:
    """The overall RoB 2 judgement: the least favourable of the five domains (Sterne 2019); ``not_assessed`` when
    any domain is not assessed."""
    vals = [domains.get(d, "") for d in ROB2_DOMAINS]
    if any(v not in ROB2_ORDER for v in vals):
        return "not_assessed"
    return max(vals, key=ROB2_ORDER.__getitem__)


def with_rob_overall(studies: pd.DataFrame, rob: pd.DataFrame) -> pd.DataFrame:
    """Each trial's overall risk-of-bias judgement, in order of preference (docs/methods.md section 17): the one
    in studies.csv, a published overall judgement in rob.csv, the review's own RoB 2 overall judgement. Fills
    ``rob_overall``, ``rob_tool`` and ``rob_source`` where studies.csv leaves them empty and adds ``rob_basis``
    (``published``, ``review_own`` or empty when not assessed)."""
    out = studies.copy()
    basis = pd.Series(["published" if isinstance(v, str) and v else "" for v in out["rob_overall"]],
                      index=out.index, dtype=object)
    if rob is not None and len(rob):
        rb = rob["basis"].map(lambda v: "published" if _blank(v) else v)
        overall = rob[rob["domain"].astype(str).str.strip().str.lower().eq("overall")
                      & rob["judgement"].isin(list(ROB2_ORDER) + ["unclear"])]
        found: dict[str, tuple] = {}
        for i, r in overall.iterrows():
            rank = 0 if rb[i] == "published" else 1
            if r["study_id"] not in found or rank < found[r["study_id"]][0]:
                found[r["study_id"]] = (rank, r["judgement"], r["tool"], r["source_url"], rb[i])
        for i, sid in out["study_id"].items():
            if basis[i] or sid not in found:
                continue
            _, j, tool, src, b = found[sid]
            out.loc[i, ["rob_overall", "rob_tool", "rob_source"]] = [j, tool, src]
            basis[i] = b
    out["rob_basis"] = basis
    return out


def row_problems_rob(rob: pd.DataFrame, file: str) -> list[Problem]:
    """The review's own RoB 2 rows: RoB 2 domains and judgements, both readers, a consensus note where they
    differ, all five domains and an overall judgement that is the least favourable domain; a reason wherever a
    judgement is ``not_assessed``."""
    out: list[Problem] = []
    basis = rob["basis"].map(lambda v: "published" if _blank(v) else v)
    for i, r in rob.iterrows():
        row = _row(i)
        if r["judgement"] == "not_assessed" and _blank(r["note"]):
            out.append(Problem(file, row, "note", "judgement not_assessed and no note",
                               "the reason no judgement could be made (which pages were searched, what they lack)"))
        if basis[i] != "review_own":
            continue
        if r["tool"] != "RoB2":
            out.append(Problem(file, row, "tool", f"'{r['tool']}' for the review's own assessment", "RoB2"))
        if r["domain"] not in (*ROB2_DOMAINS, "overall"):
            out.append(Problem(file, row, "domain", f"'{r['domain']}'", "one of: " + ", ".join((*ROB2_DOMAINS, "overall"))))
        if r["judgement"] == "unclear":
            out.append(Problem(file, row, "judgement", "'unclear' (a RoB 1 judgement)",
                               "low, some_concerns, high or not_assessed"))
        if r["domain"] != "overall":
            for col in ("reader1", "reader2"):
                if _blank(r[col]):
                    out.append(Problem(file, row, col, "empty for the review's own assessment",
                                       "the judgement of this independent reader"))
            if not _blank(r["reader1"]) and not _blank(r["reader2"]) and r["reader1"] != r["reader2"] \
                    and _blank(r["consensus_note"]):
                out.append(Problem(file, row, "consensus_note", f"readers differ ({r['reader1']} / {r['reader2']}) "
                                   "and no consensus note", "how the consensus was reached"))
    own = rob[basis == "review_own"]
    for sid, g in own.groupby("study_id", sort=False):
        doms = dict(zip(g["domain"], g["judgement"]))
        missing = [d for d in (*ROB2_DOMAINS, "overall") if d not in doms]
        if missing:
            out.append(Problem(file, _row(g.index[0]), "domain", f"{sid}: no row for {', '.join(missing)}",
                               "all five RoB 2 domains and the overall judgement"))
            continue
        want = rob2_overall(doms)
        if doms["overall"] != want:
            i = g.index[list(g["domain"]).index("overall")]
            out.append(Problem(file, _row(i), "judgement", f"overall '{doms['overall']}' for {sid}",
                               f"'{want}', the least favourable of its five domains"))
    return out


def row_problems_arm_details(details: pd.DataFrame, file: str) -> list[Problem]:
    out: list[Problem] = []
    dup = details.duplicated(subset=["study_id", "arm"], keep="first")
    for i in details.index[dup]:
        out.append(Problem(file, _row(i), "arm", f"a second row for arm '{details.loc[i, 'arm']}' of "
                           f"{details.loc[i, 'study_id']}", "one row per trial x arm"))
    return out


def cross_problems(studies: pd.DataFrame, arms: pd.DataFrame, contrasts: pd.DataFrame,
                   files: dict[str, str], rob: pd.DataFrame | None = None,
                   harms: pd.DataFrame | None = None, arm_details: pd.DataFrame | None = None) -> list[Problem]:
    out: list[Problem] = []
    known_ids = studies["study_id"].dropna()
    known = set(known_ids)
    tables = [("arms", arms), ("contrasts", contrasts)]
    for name, extra in (("harms", harms), ("arm_details", arm_details)):
        if extra is not None:
            tables.append((name, extra))
    if arm_details is not None and len(arm_details):
        labelled = {(s, a): v for s, a, v in zip(arms["study_id"], arms["arm"], arms["intervention"])}
        for s, a1, a2, v1, v2 in zip(contrasts["study_id"], contrasts["arm1"], contrasts["arm2"],
                                     contrasts["intervention1"], contrasts["intervention2"]):
            labelled.setdefault((s, a1), v1)
            labelled.setdefault((s, a2), v2)
        for i, r in arm_details.iterrows():
            key = (r["study_id"], r["arm"])
            if r["study_id"] in known and key not in labelled and not r["note"]:
                out.append(Problem(files["arm_details"], _row(i), "arm", f"'{r['arm']}', not an arm of {r['study_id']} "
                                   "in arms or contrasts, and no note", "the arm label used in arms.csv or contrasts.csv "
                                   "(or a note saying the arm has no extracted outcomes)"))
            elif key in labelled and labelled[key] != r["intervention"]:
                out.append(Problem(files["arm_details"], _row(i), "intervention", f"'{r['intervention']}' for arm "
                                   f"'{r['arm']}' of {r['study_id']}", f"'{labelled[key]}', as in arms or contrasts"))
    if rob is not None:
        tables.append(("rob", rob))
        dup = rob.duplicated(subset=["study_id", "tool", "domain"], keep="first")
        for i in rob.index[dup]:
            out.append(Problem(files["rob"], _row(i), "domain", f"a second judgement of '{rob.loc[i, 'domain']}' "
                               f"for {rob.loc[i, 'study_id']} ({rob.loc[i, 'tool']})", "one row per trial x tool x domain"))
    for table, df in tables:
        orphan = df["study_id"].notna().to_numpy(bool) & ~df["study_id"].isin(known_ids).to_numpy(bool)
        for i, sid in df["study_id"][orphan].items():
            if sid and sid not in known:
                out.append(Problem(files[table], _row(i), "study_id", f"'{sid}', which is not in studies",
                                   f"a study_id listed in {files['studies']}"))
    keys = ["study_id", "arm", "outcome", "instrument", "timepoint_weeks", "value_type", "adjusted"]
    # NA-safe keys whatever the column types; the first row of each key found in one pass (linear time)
    dup_rows = arms.duplicated(subset=keys, keep=False).to_numpy(bool)  # hashing in C; NA equals NA
    sub = arms.loc[dup_rows, keys]
    as_text = sub.astype(object).astype(str).where(sub.notna().to_numpy(bool), "")
    key_tuples = list(as_text.itertuples(index=False, name=None))
    first_of: dict[tuple, object] = {}
    for i, k in zip(sub.index, key_tuples):
        if k not in first_of:
            first_of[k] = i
            continue
        first = first_of[k]
        out.append(Problem(files["arms"], _row(i), None, f"a duplicate of row {_row(first)} (same study, arm, "
                           "outcome, instrument, time point, value type and adjustment)",
                           "one row per trial x arm x outcome x time point"))
    # an arm must keep one intervention label within a study
    labels = arms[["study_id", "arm", "intervention"]].dropna().drop_duplicates()  # each arm's distinct labels
    twice = labels[labels.duplicated(["study_id", "arm"], keep=False)]
    several = set(zip(twice["study_id"], twice["arm"]))
    mask = np.zeros(len(arms), dtype=bool)
    if several:
        mask[:] = [k in several for k in zip(arms["study_id"], arms["arm"])]
    for (sid, arm), g in arms.loc[mask].groupby(["study_id", "arm"], dropna=True):
        labels = set(g["intervention"].dropna())
        if len(labels) > 1:
            out.append(Problem(files["arms"], _row(g.index[0]), "intervention",
                               f"arm '{arm}' of {sid} labelled {sorted(labels)}", "one intervention per arm"))
    return out


_UNIT_RE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(d|day|days|w|wk|wks|week|weeks|m|mo|month|months|y|yr|year|years)\s*$",
                      re.I)
_UNIT_WEEKS = {"d": 1 / 7, "day": 1 / 7, "days": 1 / 7, "m": 52 / 12, "mo": 52 / 12, "month": 52 / 12,
               "months": 52 / 12, "y": 52, "yr": 52, "year": 52, "years": 52}


def timepoint_unit_hint(value) -> str | None:
    """For a time point written with a unit ('3 months'), the value in weeks to write instead."""
    if not isinstance(value, str):
        return None
    m = _UNIT_RE.match(value)
    if not m:
        return None
    num, unit = float(m.group(1)), m.group(2).lower()
    if unit.startswith("w"):
        return f"{num:g} (weeks, as a number without the unit)"
    weeks = num * _UNIT_WEEKS[unit]
    return f"{weeks:.0f} (weeks: {num:g} {unit} = {weeks:.1f} weeks); the column is timepoint_weeks"


# ------------------------------------------------------------------------------------------- plausibility

#: an SD below this share of the instrument's range is implausibly small (e.g. SD 1 on 0-100): often an SE
SD_SHARE_MIN = 0.02


def _suspect_plausibility_arms(arms: pd.DataFrame) -> np.ndarray:
    """Rows that may give a warning of ``plausibility_warnings`` (a vectorised screen; the exact checks and
    messages then run on these rows only): a known range and an SD (or SE x sqrt(n)) outside its plausible
    share, or a row kept for the record."""
    def val(c):
        return arms[c].to_numpy(float)

    lo, hi, sd, se, n = val("scale_min"), val("scale_max"), val("sd"), val("se"), val("n")
    with np.errstate(invalid="ignore"):
        span = hi - lo
        sd = np.where(np.isnan(sd) & (n >= 2), se * np.sqrt(n), sd)
        odd_sd = (sd > 0) & ((sd < SD_SHARE_MIN * span) | (sd > span / 2))
        return (hi > lo) & (odd_sd | (arms["role"].astype(object) == "excluded").to_numpy(bool))


def plausibility_warnings(tables: dict[str, pd.DataFrame], files: dict[str, str]) -> list[Problem]:
    """Values the contract allows but that are probably wrong, as warnings (they do not stop loading):

    * an SD (or SE x sqrt(n)) below 2% of the instrument's range (SD 1 on 0-100 is an SE, or another scale);
    * an SD above half the range, more than a bounded scale allows;
    * on rows kept for the record (``role = excluded``), values outside the instrument's range, which would be
      errors on a row that is pooled.
    """
    out: list[Problem] = []
    arms, file = tables["arms"], files["arms"]
    for i, r in arms[_suspect_plausibility_arms(arms)].iterrows():
        lo, hi = r["scale_min"], r["scale_max"]
        if pd.isna(lo) or pd.isna(hi) or hi <= lo:
            continue
        span = hi - lo
        sd, how = r["sd"], "sd"
        if pd.isna(sd) and not pd.isna(r["se"]) and not pd.isna(r["n"]) and r["n"] >= 2:
            sd, how = r["se"] * np.sqrt(r["n"]), "se x sqrt(n)"
        if not pd.isna(sd) and sd > 0:
            col = "sd" if how == "sd" else "se"
            if sd < SD_SHARE_MIN * span:
                out.append(Problem(file, _row(i), col, f"an SD of {_fmt(round(sd, 3))} ({how}) on a {_fmt(lo)}-"
                                   f"{_fmt(hi)} scale, under {SD_SHARE_MIN:.0%} of its range: implausibly small",
                                   "check whether the value is an SE, or on another scale (warning)"))
            elif sd > span / 2:
                out.append(Problem(file, _row(i), col, f"an SD of {_fmt(round(sd, 3))} ({how}) on a {_fmt(lo)}-"
                                   f"{_fmt(hi)} scale, more than half its range: impossible for a bounded scale",
                                   "check the value and the scale (warning)"))
        if r["role"] == "excluded":
            for c in ("mean", "median"):
                v = r[c]
                if pd.isna(v):
                    continue
                if (r["value_type"] == "final" and not (lo <= v <= hi)) or (r["value_type"] == "change"
                                                                             and abs(v) > span):
                    out.append(Problem(file, _row(i), c, f"{c} {_fmt(v)} outside the instrument's range "
                                       f"{_fmt(lo)}-{_fmt(hi)} on a row kept for the record (role = excluded)",
                                       "the value and range as printed; never pooled (warning)"))
    con, cfile = tables["contrasts"], files["contrasts"]
    for i, r in con[(con["role"].astype(object) == "excluded").to_numpy(bool)].iterrows():
        lo, hi = r["scale_min"], r["scale_max"]
        if r["role"] == "excluded" and r["estimate_type"] == "MD" and not pd.isna(lo) and not pd.isna(hi) \
                and not pd.isna(r["estimate"]) and abs(r["estimate"]) > hi - lo:
            out.append(Problem(cfile, _row(i), "estimate", f"a difference of {_fmt(r['estimate'])} on a "
                               f"{_fmt(lo)}-{_fmt(hi)} scale on a row kept for the record (role = excluded)",
                               "the value and range as printed; never pooled (warning)"))
    return out

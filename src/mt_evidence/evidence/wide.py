"""Wide extraction sheets through a mapping: one sheet (CSV or a workbook's sheet) with a row per trial, arm or
trial x outcome and its numbers side by side, read into the evidence tables (studies, arms, contrasts, rob) and,
with :func:`import_wide`, written as an evidence folder. The mapping language is documented in full in
``docs/bring-your-own-review.md``; in short::

    sheet = "Extraction"                   # a workbook's sheet (default: the first); not for CSV files
    missing = ["NR", "-", "n/a"]           # placeholders read as empty cells, in every column
    vocabulary = "review.toml"             # or a [vocabulary] table: the review's own treatments and outcomes
    study_id = { join = ["Author", "Year"], sep = "" }

    [[filter]]                             # rows kept: every filter holds
    column = "Include"
    equals = "yes"

    [recode.intervention]                  # sheet value -> value written (a value not listed is a problem)
    MT = "manual_therapy"

    [studies]                              # one row per study (rows of a study must agree)
    citation = { format = "{Author} et al. {Year}" }
    year = { column = "Year" }
    population = "chronic"
    sources = { column = "Link" }

    [arms]                                 # fields every [[measures]] block shares
    arm = { column = "Group" }
    intervention = { column = "Group" }
    source_url = { column = "Link" }

    [[measures]]                           # one arms row per sheet row with a number in this block's columns
    outcome = "pain"
    instrument = "NRS"
    scale_min = 0
    scale_max = 10
    higher_is_worse = true
    timepoint_weeks = 13
    value_type = "final"
    n = { column = "N 3m" }
    mean = { column = "Pain 3m" }
    sd = { column = "Pain 3m SD" }

    [rob]                                  # rob.csv: one row per study x domain with a judgement
    tool = "RoB2"
    review_citation = "..."
    source_url = { column = "Link" }
    [rob.domains]
    randomisation = { column = "D1" }
    overall = { column = "Overall" }

**The rule for values**: a bare value (text, number, true/false) is a constant written in every row, even when it
equals the name of a column; a value read from the sheet is always a table: ``{ column = "X" }``, ``{ join =
["A", "B"], sep = "" }`` or ``{ format = "{A} ({B})" }``, with the options ``default`` (the value when the cells are
empty) and ``as_id = true`` (made into an id: accents dropped, only letters, digits, ``_`` and ``-`` kept).

Every problem, in the mapping or in the sheet, is named by its place: a key of the mapping, or the sheet's own row
(as a spreadsheet shows it, the header is row 1; filters and empty rows never shift it) and column. All problems are
reported at once.
"""

from __future__ import annotations

import csv
import datetime as _dt
import difflib
import hashlib
import io
import json
import os
import re
import unicodedata
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from . import schema
from .schema import EvidenceError, Problem
from .validation import BLOCK_KEY, SHEET_CELLS, SHEET_ROW, TABLE_FILES, sheet_problems, validate_tables
from .vocabulary import Vocabulary, VocabularyError, load_vocabulary, vocabulary_from_spec

__all__ = ["Source", "Filter", "WideMapping", "Sheet", "WideTables", "ImportResult", "load_mapping", "read_sheet",
           "map_sheet", "read_wide_arms", "import_wide", "check_import_output", "WRITER", "MAPPING_DOC"]

#: the command that owns folders written by :func:`import_wide` (atomic.replace_owned_folder)
WRITER = "import-wide"
MAPPING_DOC = "docs/bring-your-own-review.md"

TOP_KEYS = ("sheet", "header_row", "delimiter", "missing", "missing_in", "fill_down", "filter", "recode",
            "vocabulary", "study_id", "studies", "arms", "measures", "contrasts", "rob")
TABLE_KEYS = ("missing_in", "recode", "studies", "arms", "rob")  # written [name]
BLOCK_LIST_KEYS = ("filter", "measures", "contrasts")  # written [[name]]
SOURCE_KEYS = ("column", "join", "sep", "format", "default", "as_id")
FILTER_TESTS = ("equals", "not_equals", "in", "not_in", "is_blank", "not_blank")

#: summary values of an arm: a [[measures]] block makes a row only where one of these is read from the sheet
ARM_VALUES = ("mean", "sd", "se", "ci_low", "ci_high", "median", "q1", "q3", "min", "max")
#: ... and of a contrast
CONTRAST_VALUES = ("estimate", "se", "ci_low", "ci_high")
#: required columns a mapping need not set: study_id (set at the top), n (a column whose cells may be empty),
#: source_location (written when the mapping leaves it out), rob's domain and judgement ([rob.domains])
_NOT_MAPPED = {"study_id", "n", "source_location", "domain", "judgement"}
#: the fields each table's blocks must set
REQUIRED = {
    "studies": tuple(c for c in schema.STUDY_REQUIRED if c not in _NOT_MAPPED),
    "arms": tuple(c for c in schema.ARM_REQUIRED if c not in _NOT_MAPPED),
    "contrasts": tuple(c for c in schema.CONTRAST_REQUIRED if c not in _NOT_MAPPED),
    "rob": tuple(c for c in schema.ROB_REQUIRED if c not in _NOT_MAPPED),
}
#: the fields each block may set
FIELDS = {
    "studies": tuple(c for c in schema.STUDY_COLUMNS if c != "study_id"),
    "arms": tuple(c for c in schema.ARM_COLUMNS if c != "study_id"),
    "contrasts": tuple(c for c in schema.CONTRAST_COLUMNS if c != "study_id"),
    "rob": tuple(c for c in schema.ROB_COLUMNS if c not in ("study_id", "domain", "judgement", "judgement_printed"))
    + ("domains",),
}
#: a [recode.X] table for the first name also recodes the others, unless they have their own
RECODE_SHARED = {"intervention1": "intervention", "intervention2": "intervention", "technique1": "technique",
                 "technique2": "technique"}
#: words people write for a field, and the field they mean (for "did you mean" suggestions)
ALIASES = {"sdev": "sd", "stdev": "sd", "std": "sd", "stddev": "sd", "standard_deviation": "sd", "average": "mean",
           "avg": "mean", "number": "n", "size": "n", "weeks": "timepoint_weeks", "time": "timepoint_weeks",
           "timepoint": "timepoint_weeks", "week": "timepoint_weeks", "treatment": "intervention",
           "group": "arm", "measure": "measures", "filters": "filter", "study": "study_id", "id": "study_id",
           "scale": "instrument", "tool_name": "tool", "col": "column", "cols": "join", "fmt": "format",
           "missing_values": "missing", "na": "missing", "header": "header_row", "sheet_name": "sheet",
           "recodes": "recode", "vocab": "vocabulary", "review": "vocabulary", "study_table": "studies",
           "risk_of_bias": "rob", "contrast": "contrasts", "arm": "arms", "lower": "ci_low", "upper": "ci_high"}


def _kinds() -> dict[str, str]:
    out: dict[str, str] = {}
    for cols, _req in schema.TABLES.values():
        out.update(cols)
    return out


KINDS = _kinds()  # field -> "str", "num", "int" or "bool" (same kind in every table)


# ------------------------------------------------------------------------------------------ suggestions


def suggest(key: str, allowed) -> str:
    """``"; did you mean 'sd'?"`` for a key close to an allowed one (known aliases first), else ``""``."""
    allowed = sorted(set(allowed))
    k = str(key).strip().lower()
    alias = ALIASES.get(k)
    if alias in allowed:
        return f"; did you mean '{alias}'?"
    lower = {a.lower(): a for a in allowed}
    if k in lower:
        return f"; did you mean '{lower[k]}'?"

    def score(a):
        r = difflib.SequenceMatcher(None, k, a.lower()).ratio()
        if a.lower().startswith(k) or k.startswith(a.lower()):
            r += 0.15
        return r

    best = max(allowed, key=lambda a: (score(a), -len(a)), default=None)
    if best is not None and score(best) >= 0.6:
        return f"; did you mean '{best}'?"
    return ""


def _letters(i: int) -> str:
    """Spreadsheet column letters of a 0-based column index (0 -> A, 26 -> AA)."""
    s = ""
    i += 1
    while i:
        i, r = divmod(i - 1, 26)
        s = chr(65 + r) + s
    return s


def _text(v) -> str:
    """A cell or a mapping constant as text, the way a spreadsheet shows it."""
    if v is None:
        return ""
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, int):
        return str(v)
    if isinstance(v, float):
        if v != v:  # NaN
            return ""
        if v.is_integer() and abs(v) < 1e15:
            return str(int(v))
        return format(v, ".15g")
    if isinstance(v, _dt.datetime):
        return v.date().isoformat() if v.time() == _dt.time() else v.isoformat()
    if isinstance(v, (_dt.date, _dt.time)):
        return v.isoformat()
    return str(v).strip()


def make_id(text: str) -> str:
    """``text`` as an id: accents dropped (Ö -> O), then only letters, digits, ``_`` and ``-`` kept
    (``"Özden, 2021"`` -> ``"Ozden2021"``)."""
    flat = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode("ascii")
    return re.sub(r"[^A-Za-z0-9_\-]", "", flat)


# ------------------------------------------------------------------------------------------ the mapping


@dataclass(frozen=True)
class Source:
    """Where a field's value comes from: a constant, a column, several columns joined, or a format string."""

    kind: str  # "constant", "column", "join" or "format"
    where: str  # its place in the mapping ("measures[2].sd")
    value: object = None  # the constant
    columns: tuple[str, ...] = ()  # the columns read (column, join, format)
    sep: str = " "
    template: tuple = ()  # format: the parts, text or ("col", name)
    default: object = None
    as_id: bool = False

    @property
    def reads_sheet(self) -> bool:
        return self.kind != "constant"

    @property
    def label(self) -> str:
        """How a problem names this value's place: the sheet column(s), or the mapping key that set it."""
        if self.kind == "constant":
            return f"{self.where} (the mapping)"
        return " + ".join(self.columns)


@dataclass(frozen=True)
class Filter:
    """Keep a row only when its cell in ``column`` passes ``test`` (one of :data:`FILTER_TESTS`)."""

    column: str
    test: str
    value: object
    where: str


@dataclass(frozen=True, eq=False)
class WideMapping:
    """A parsed mapping file (see the module docstring)."""

    path: Path
    study_id: Source
    sheet: str | None = None
    header_row: int = 1
    delimiter: str = ","
    missing: frozenset = frozenset()
    missing_in: dict = field(default_factory=dict)
    fill_down: tuple[str, ...] = ()
    filters: tuple[Filter, ...] = ()
    recode: dict = field(default_factory=dict)
    studies: dict | None = None
    arms: dict = field(default_factory=dict)
    measures: tuple[dict, ...] = ()
    contrasts: tuple[dict, ...] = ()
    rob: dict | None = None
    rob_domains: dict = field(default_factory=dict)
    vocabulary: Vocabulary | None = None
    #: the review.toml to write beside the evidence (the file named, or the [vocabulary] table as TOML)
    vocabulary_toml: bytes | None = None

    def sources(self):
        """(field, Source) of every value the mapping sets."""
        yield "study_id", self.study_id
        for block in (self.studies or {}, self.arms, *self.measures, *self.contrasts, self.rob or {}):
            yield from block.items()
        for domain, src in self.rob_domains.items():
            yield f"domains.{domain}", src

    def columns_named(self) -> list[tuple[str, str]]:
        """(sheet column, mapping key) for every column the mapping names."""
        out = []
        for _f, src in self.sources():
            out += [(c, src.where) for c in src.columns]
        out += [(f.column, f.where) for f in self.filters]
        out += [(c, f"fill_down[{i}]") for i, c in enumerate(self.fill_down, 1)]
        out += [(c, f"missing_in.{c}") for c in self.missing_in]
        return out


def _problem(mapping: Path, key: str, found: str, expected: str) -> Problem:
    return Problem(str(mapping), None, key or None, found, expected)


_DATES = (_dt.date, _dt.time, _dt.datetime)


def _type_name(v) -> str:
    if isinstance(v, bool):
        return "true/false"
    if isinstance(v, (int, float)):
        return "a number"
    if isinstance(v, str):
        return "text"
    if isinstance(v, list):
        return "a list"
    if isinstance(v, dict):
        return "a table"
    if isinstance(v, _DATES):
        return "a date or time"
    return type(v).__name__


def _constant_problem(v, fld: str) -> str | None:
    """What is wrong with ``v`` as a constant for ``fld`` (by the field's type), or None."""
    kind = KINDS.get(fld, "str")
    if isinstance(v, _DATES):
        return "text, a number or true/false (a TOML date is not allowed: write it in quotes)"
    if kind == "num" and isinstance(v, bool):
        return "a number"
    if kind == "int" and (isinstance(v, bool) or (isinstance(v, float) and not v.is_integer())):
        return "a whole number"
    if kind == "bool" and not isinstance(v, (bool, str)):
        return "true or false"
    if kind == "str" and isinstance(v, bool):
        return "text in quotes"
    return None


_PLACEHOLDER = re.compile(r"\{\{|\}\}|\{([^{}]*)\}|[{}]")


def _parse_format(template: str, where: str, mapping: Path, problems: list) -> tuple:
    parts: list = []
    pos = 0
    for m in _PLACEHOLDER.finditer(template):
        parts.append(template[pos:m.start()])
        token = m.group(0)
        if token in ("{{", "}}"):
            parts.append(token[0])
        elif token in ("{", "}"):
            problems.append(_problem(mapping, where, f"a lone '{token}' in '{template}'",
                                     "column names in braces, '{Author} ({Year})'; write '{{' or '}}' for a brace"))
            return ()
        elif not m.group(1).strip():
            problems.append(_problem(mapping, where, f"empty braces in '{template}'", "a column name in the braces"))
            return ()
        else:
            parts.append(("col", m.group(1).strip()))
        pos = m.end()
    parts.append(template[pos:])
    parts = [p for p in parts if p != ""]
    if not any(isinstance(p, tuple) for p in parts):
        problems.append(_problem(mapping, where, f"'{template}', which names no column",
                                 "a text with column names in braces, '{Author} ({Year})' (a fixed text is written "
                                 "as a bare value)"))
        return ()
    return tuple(parts)


def _source(value, fld: str, where: str, mapping: Path, problems: list) -> Source | None:
    """A field's source from its mapping value; a problem (and None) when it has the wrong shape."""
    if isinstance(value, dict):
        unknown = [k for k in value if k not in SOURCE_KEYS]
        for k in unknown:
            problems.append(_problem(mapping, f"{where}.{k}", "an unknown key",
                                     f"one of {', '.join(SOURCE_KEYS)}{suggest(k, SOURCE_KEYS)}"))
        given = [k for k in ("column", "join", "format") if k in value]
        if len(given) != 1:
            problems.append(_problem(mapping, where, "a table with " + (" and ".join(given) if given else
                                                                      "none of column, join or format"),
                                     "exactly one of { column = \"X\" }, { join = [\"A\", \"B\"], sep = \"\" } or "
                                     "{ format = \"{A} ({B})\" }"))
            return None
        ok = not unknown
        default = value.get("default")
        if default is not None and (isinstance(default, (dict, list)) or _constant_problem(default, fld)):
            problems.append(_problem(mapping, f"{where}.default", f"{_type_name(default)}",
                                     _constant_problem(default, fld) or "a constant: text, a number or true/false"))
            ok = False
        as_id = value.get("as_id", False)
        if not isinstance(as_id, bool):
            problems.append(_problem(mapping, f"{where}.as_id", _type_name(as_id), "true or false"))
            ok = False
        if "sep" in value and "join" not in value:
            problems.append(_problem(mapping, f"{where}.sep", "sep without join", "sep only with join = [...]"))
            ok = False
        kind = given[0]
        if kind == "column":
            col = value["column"]
            if not isinstance(col, str) or not col.strip():
                problems.append(_problem(mapping, f"{where}.column", _type_name(col),
                                         "the name of a column of the sheet, in quotes"))
                return None
            return Source("column", where, columns=(col.strip(),), default=default, as_id=as_id) if ok else None
        if kind == "join":
            cols = value["join"]
            if not isinstance(cols, list) or not cols or not all(isinstance(c, str) and c.strip() for c in cols):
                problems.append(_problem(mapping, f"{where}.join", _type_name(cols) if not isinstance(cols, list)
                                         else f"{cols!r}", "a list of column names, [\"Author\", \"Year\"]"))
                return None
            sep = value.get("sep", " ")
            if not isinstance(sep, str):
                problems.append(_problem(mapping, f"{where}.sep", _type_name(sep), "text in quotes (\"\" for none)"))
                return None
            return Source("join", where, columns=tuple(c.strip() for c in cols), sep=sep, default=default,
                          as_id=as_id) if ok else None
        template = value["format"]
        if not isinstance(template, str):
            problems.append(_problem(mapping, f"{where}.format", _type_name(template),
                                     "text with column names in braces, \"{Author} ({Year})\""))
            return None
        parts = _parse_format(template, f"{where}.format", mapping, problems)
        if not parts:
            return None
        cols = tuple(dict.fromkeys(p[1] for p in parts if isinstance(p, tuple)))
        return Source("format", where, columns=cols, template=parts, default=default, as_id=as_id) if ok else None
    if isinstance(value, list):
        problems.append(_problem(mapping, where, "a list", "a constant (text, a number, true/false) or a table: "
                                 "{ column = \"X\" }, { join = [\"A\", \"B\"] } or { format = \"{A} {B}\" }"))
        return None
    if not isinstance(value, (str, int, float, bool)) or _constant_problem(value, fld):
        problems.append(_problem(mapping, where, _type_name(value),
                                 _constant_problem(value, fld) or "text, a number or true/false"))
        return None
    return Source("constant", where, value=value)


def _block(spec, table: str, where: str, mapping: Path, problems: list) -> dict[str, Source]:
    """The fields of one block ([studies], [arms], a [[measures]] block ...)."""
    allowed = FIELDS["arms" if table == "measures" else table]
    out: dict[str, Source] = {}
    for fld, value in spec.items():
        key = f"{where}.{fld}"
        if fld == "study_id":
            problems.append(_problem(mapping, key, "study_id inside a block",
                                     "study_id once, at the top of the mapping (it links every table)"))
            continue
        if fld == "domains" and table == "rob":
            continue
        if fld in (SHEET_ROW, SHEET_CELLS):
            problems.append(_problem(mapping, key, f"the reserved column {fld}",
                                     "another name: this column says which sheet row and columns a row came from"))
            continue
        if fld not in allowed and not str(fld).startswith("x_"):
            problems.append(_problem(mapping, key, "an unknown key",
                                     f"a column of {TABLE_FILES['arms' if table == 'measures' else table]} "
                                     f"(or a custom x_ column){suggest(fld, allowed)}"))
            continue
        src = _source(value, fld, key, mapping, problems)
        if src is not None:
            out[fld] = src
    return out


def _strings(value, key: str, mapping: Path, problems: list) -> list[str] | None:
    if not isinstance(value, list) or not all(isinstance(v, (str, int, float)) and not isinstance(v, bool)
                                              for v in value):
        problems.append(_problem(mapping, key, _type_name(value), "a list of values in quotes, [\"NR\", \"-\"]"))
        return None
    return [_text(v) for v in value]


def _toml_key(k: str) -> str:
    return k if re.fullmatch(r"[A-Za-z0-9_-]+", k) else json.dumps(k, ensure_ascii=False)


def _toml_value(v) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, (int, float)):
        return repr(v)
    if isinstance(v, str):
        return json.dumps(v, ensure_ascii=False)
    if isinstance(v, list):
        return "[" + ", ".join(_toml_value(x) for x in v) + "]"
    if isinstance(v, dict):
        return "{ " + ", ".join(f"{_toml_key(k)} = {_toml_value(x)}" for k, x in v.items()) + " }"
    raise ValueError(f"cannot write {type(v).__name__} as TOML")


def toml_text(spec: dict, prefix: str = "") -> str:
    """A table as TOML text (scalars and lists inline, sub-tables as [tables], lists of tables as [[tables]])."""
    lines, later = [], []
    for k, v in spec.items():
        path = f"{prefix}.{_toml_key(k)}" if prefix else _toml_key(k)
        if isinstance(v, dict):
            later.append(f"\n[{path}]\n" + toml_text(v, path))
        elif isinstance(v, list) and v and all(isinstance(x, dict) for x in v):
            later += [f"\n[[{path}]]\n" + toml_text(x, path) for x in v]
        else:
            lines.append(f"{_toml_key(k)} = {_toml_value(v)}")
    return "\n".join(lines) + ("\n" if lines else "") + "".join(later)


def _vocabulary_found(msg: str) -> str:
    return "an unknown key" if msg.startswith("a known key") else "a value that does not fit"


def _vocabulary(value, mapping: Path, problems: list) -> tuple[Vocabulary | None, bytes | None]:
    if isinstance(value, str):
        base = mapping.parent.resolve()
        file = (base / value).resolve()
        if not value.strip() or not file.is_relative_to(base):
            problems.append(_problem(mapping, "vocabulary", f"'{value}', outside the mapping's folder ({base})",
                                     "a review.toml in the mapping's folder (or below it), named relative to it: the "
                                     "file is copied into the evidence folder"))
            return None, None
        try:
            vocab = load_vocabulary(file)
        except VocabularyError as exc:
            problems += [Problem(str(file), None, key or None, _vocabulary_found(msg), msg)
                         for key, msg in exc.problems]
            return None, None
        except (ValueError, OSError) as exc:
            problems.append(_problem(mapping, "vocabulary", str(exc),
                                     "a review.toml (path relative to the mapping; docs/methods.md section 18)"))
            return None, None
        return vocab, file.read_bytes()
    if isinstance(value, dict):
        try:
            vocab = vocabulary_from_spec(value, f"{mapping} [vocabulary]")
        except VocabularyError as exc:
            problems += [_problem(mapping, f"vocabulary.{key}" if key else "vocabulary", _vocabulary_found(msg), msg)
                         for key, msg in exc.problems]
            return None, None
        header = (f"# The review's vocabulary, written by mt-evidence import-wide from the [vocabulary] table of "
                  f"{mapping.name}\n")
        return vocab, (header + toml_text(value)).encode("utf-8")
    problems.append(_problem(mapping, "vocabulary", _type_name(value),
                             "the name of a review.toml (vocabulary = \"review.toml\") or a [vocabulary] table"))
    return None, None


def _from_first_form(spec: dict) -> dict:
    """The first mapping form (``[columns]`` of sheet columns, ``[defaults]`` of constants, ``[[measures]]`` whose
    numbers are column names), still read by ``read_wide``, in today's form."""
    new = {k: v for k, v in spec.items() if k not in ("columns", "defaults", "measures")}
    arms = dict(spec.get("defaults") or {}) if isinstance(spec.get("defaults"), dict) else {}
    columns = spec.get("columns")
    if isinstance(columns, dict):
        for fld, col in columns.items():
            if fld == "study_id":
                new["study_id"] = {"column": col}
            else:
                arms[fld] = {"column": col}
    new["arms"] = arms
    measures = spec.get("measures", [])
    if isinstance(measures, list):
        new["measures"] = [{k: ({"column": v} if k in ARM_VALUES + ("n",) and isinstance(v, str) else v)
                            for k, v in m.items()} if isinstance(m, dict) else m for m in measures]
    else:
        new["measures"] = measures
    return new


def _shapes(spec: dict, mapping: Path, problems: list) -> tuple[set, set]:
    """Unknown top-level keys (with suggestions) and tables written with the wrong brackets; returns the known keys
    that misspelt ones were taken for, and the tables whose content is unknown (their fields are not reported as
    missing a second time). Wrongly shaped tables are set to None in ``spec``."""
    meant, broken = set(), set()
    for key in spec:
        if key in ("columns", "defaults"):
            problems.append(_problem(mapping, key, f"[{key}], from the first mapping form",
                                     "study_id = { column = \"...\" } at the top, the other fields under [arms], each "
                                     f"sheet column written {{ column = \"...\" }} ({MAPPING_DOC})"))
        elif key not in TOP_KEYS:
            v = spec[key]
            what = (f"an unknown table [{key}]" if isinstance(v, dict) else f"unknown blocks [[{key}]]"
                    if isinstance(v, list) and v and all(isinstance(b, dict) for b in v) else "an unknown key")
            hint = suggest(key, TOP_KEYS)
            meant.add(hint.partition("'")[2].partition("'")[0])
            problems.append(_problem(mapping, key, what, f"one of {', '.join(TOP_KEYS)}{hint}"))
    for key in TABLE_KEYS:
        v = spec.get(key)
        if v is None or isinstance(v, dict):
            continue
        broken.add(key)
        if isinstance(v, list):
            problems.append(_problem(mapping, key, f"[[{key}]] ({len(v)} block(s), two brackets)",
                                     f"one [{key}] table (single brackets)"))
        else:
            problems.append(_problem(mapping, key, _type_name(v), f"a [{key}] table"))
        spec[key] = None
    for key in BLOCK_LIST_KEYS:
        v = spec.get(key)
        if v is None or (isinstance(v, list) and all(isinstance(b, dict) for b in v)):
            continue
        broken.add(key)
        if isinstance(v, dict):
            problems.append(_problem(mapping, key, f"a single table [{key}] (one bracket)",
                                     f"one or more [[{key}]] blocks, each written with two brackets"))
        else:
            problems.append(_problem(mapping, key, _type_name(v), f"[[{key}]] blocks"))
        spec[key] = None
    return meant, broken


def _sheet_options(spec: dict, mapping: Path, problems: list) -> dict:
    """sheet, header_row, delimiter, missing, missing_in and fill_down, checked."""
    sheet = spec.get("sheet")
    if sheet is not None and (not isinstance(sheet, str) or not sheet.strip()):
        problems.append(_problem(mapping, "sheet", _type_name(sheet), "the name of a sheet of the workbook, in quotes"))
        sheet = None
    header_row = spec.get("header_row", 1)
    if isinstance(header_row, bool) or not isinstance(header_row, int) or header_row < 1:
        problems.append(_problem(mapping, "header_row", repr(header_row), "a whole number from 1 (the row holding "
                                                                          "the column names, as the sheet numbers it)"))
        header_row = 1
    delimiter = spec.get("delimiter", ",")
    if not isinstance(delimiter, str) or len(delimiter) != 1 or delimiter in "\"\r\n":
        problems.append(_problem(mapping, "delimiter", repr(delimiter), "one character, \",\" (default), \";\" or "
                                                                         "\"\\t\""))
        delimiter = ","
    missing = _strings(spec.get("missing", []), "missing", mapping, problems) or []
    missing_in = {}
    for col, vals in (spec.get("missing_in") or {}).items():
        got = _strings(vals, f"missing_in.{col}", mapping, problems)
        if got is not None:
            missing_in[col.strip()] = frozenset(got)
    fill_down = spec.get("fill_down", [])
    if not isinstance(fill_down, list) or not all(isinstance(c, str) for c in fill_down):
        problems.append(_problem(mapping, "fill_down", _type_name(fill_down), "a list of column names"))
        fill_down = []
    return {"sheet": sheet.strip() if sheet else None, "header_row": header_row, "delimiter": delimiter,
            "missing": frozenset(missing), "missing_in": missing_in, "fill_down": tuple(c.strip() for c in fill_down)}


def _filters(blocks: list, mapping: Path, problems: list) -> tuple[Filter, ...]:
    out = []
    for i, f in enumerate(blocks, 1):
        where = f"filter[{i}]"
        for k in f:
            if k not in ("column", *FILTER_TESTS):
                problems.append(_problem(mapping, f"{where}.{k}", "an unknown key",
                                         f"column and one of {', '.join(FILTER_TESTS)}"
                                         f"{suggest(k, ('column', *FILTER_TESTS))}"))
        col = f.get("column")
        if not isinstance(col, str) or not col.strip():
            problems.append(_problem(mapping, f"{where}.column", "no column" if col is None else _type_name(col),
                                     "the column the filter reads, column = \"Include\""))
            continue
        tests = [k for k in FILTER_TESTS if k in f]
        if len(tests) != 1:
            problems.append(_problem(mapping, where, f"{len(tests)} tests" + (f" ({', '.join(tests)})" if tests else ""),
                                     f"exactly one of {', '.join(FILTER_TESTS)}"))
            continue
        test, value = tests[0], f[tests[0]]
        if test in ("equals", "not_equals") and (not isinstance(value, (str, int, float)) or isinstance(value, bool)):
            problems.append(_problem(mapping, f"{where}.{test}", _type_name(value), "a value in quotes or a number"))
            continue
        if test in ("in", "not_in"):
            value = _strings(value, f"{where}.{test}", mapping, problems)
            if value is None:
                continue
        if test in ("is_blank", "not_blank") and value is not True:
            problems.append(_problem(mapping, f"{where}.{test}", repr(value),
                                     f"true ({test} = true; for the opposite test use "
                                     f"{'not_blank' if test == 'is_blank' else 'is_blank'} = true)"))
            continue
        out.append(Filter(col.strip(), test, value, where))
    return tuple(out)


def _recode(spec: dict, mapping: Path, problems: list) -> dict[str, dict[str, str]]:
    out: dict[str, dict[str, str]] = {}
    every_field = set(KINDS)
    for fld, table in spec.items():
        where = f"recode.{fld}"
        if fld not in every_field and not str(fld).startswith("x_"):
            problems.append(_problem(mapping, where, "an unknown field", "a column of the evidence tables (the value "
                                     f"written, e.g. intervention){suggest(fld, every_field)}"))
            continue
        if not isinstance(table, dict) or not table:
            problems.append(_problem(mapping, where, _type_name(table), f"a table of sheet value = value written, "
                                     f"[recode.{fld}] then lines such as MT = \"manual_therapy\""))
            continue
        values = {}
        for k, v in table.items():
            if isinstance(v, (dict, list, *_DATES)):
                problems.append(_problem(mapping, f"{where}.{k}", _type_name(v),
                                         "the value to write: text, a number or true/false (\"\" for empty)"))
                continue
            values[k.strip()] = v.strip() if isinstance(v, str) else _text(v)
        out[fld] = values
    return out


def _missing_fields(spec: dict, fields: dict, present: set, meant: set, broken: set, mapping: Path,
                    problems: list) -> None:
    """Blocks without a field their table requires, or without a value read from the sheet. A field written (even
    wrongly, and then named already) is not missing."""
    if not present & {"measures", "contrasts"} and not meant & {"measures", "contrasts"}:
        problems.append(_problem(mapping, "measures", "no [[measures]] or [[contrasts]] blocks",
                                 "at least one [[measures]] block (arms.csv: an outcome at a time point, its columns) "
                                 "or [[contrasts]] block"))
    if spec.get("arms") and "measures" not in present | meant:
        problems.append(_problem(mapping, "arms", "an [arms] table and no [[measures]] blocks",
                                 "[[measures]] blocks: [arms] only holds what they share"))
    arms = fields["arms"]
    for j, m in enumerate(fields["measures"], 1):
        lack = [f for f in REQUIRED["arms"] if f not in set(spec.get("arms") or {}) | set(spec["measures"][j - 1])]
        if lack and "arms" not in broken:
            problems.append(_problem(mapping, f"measures[{j}]", f"no {', '.join(lack)}",
                                     "each of them in this block or in [arms] (required in arms.csv)"))
        both = {**arms, **m}
        if not any(f in both and both[f].reads_sheet for f in ARM_VALUES):
            problems.append(_problem(mapping, f"measures[{j}]", "no value read from the sheet",
                                     f"at least one of {', '.join(ARM_VALUES)} as {{ column = \"...\" }} (a block "
                                     "makes a row where the sheet has a number)"))
    for j, c in enumerate(fields["contrasts"], 1):
        lack = [f for f in REQUIRED["contrasts"] if f not in spec["contrasts"][j - 1]]
        if lack:
            problems.append(_problem(mapping, f"contrasts[{j}]", f"no {', '.join(lack)}",
                                     "each of them in this block (required in contrasts.csv)"))
        if not any(f in c and c[f].reads_sheet for f in CONTRAST_VALUES):
            problems.append(_problem(mapping, f"contrasts[{j}]", "no value read from the sheet",
                                     f"at least one of {', '.join(CONTRAST_VALUES)} as {{ column = \"...\" }}"))
    for table in ("studies", "rob"):
        if fields[table] is not None:
            lack = [f for f in REQUIRED[table] if f not in spec[table]]
            if lack:
                problems.append(_problem(mapping, table, f"no {', '.join(lack)}",
                                         f"each of them (required in {TABLE_FILES[table]})"))


def load_mapping(path: str | os.PathLike, *, first_form: bool = False) -> WideMapping:
    """Read and check a mapping file; :class:`EvidenceError` names every problem by its key, all at once.

    ``first_form``: also read the first mapping form (``[columns]``/``[defaults]``), as ``read_wide`` does.
    """
    from .files import MAX_SETTINGS_BYTES, file_problem
    from .tomlfile import read_toml

    mapping = Path(path)
    problem = file_problem(mapping, MAX_SETTINGS_BYTES)
    if problem:
        raise EvidenceError([_problem(mapping, "", problem, f"a mapping file in TOML ({MAPPING_DOC})")])
    try:
        spec, _ = read_toml(mapping, "mapping")
    except ValueError as exc:
        raise EvidenceError([_problem(mapping, "", str(exc).removeprefix(f"{mapping}: "),
                                      f"a mapping file in TOML ({MAPPING_DOC})")]) from None
    problems: list[Problem] = []
    if first_form and ("columns" in spec or "defaults" in spec):
        spec = _from_first_form(spec)
    present = set(spec)
    meant, broken = _shapes(spec, mapping, problems)
    options = _sheet_options(spec, mapping, problems)
    filters = _filters(spec.get("filter") or [], mapping, problems)
    recode = _recode(spec.get("recode") or {}, mapping, problems)

    study_id = None
    if "study_id" not in spec:
        problems.append(_problem(mapping, "study_id", "no study_id",
                                 "study_id at the top, e.g. study_id = { column = \"Study\" } or { join = [\"Author\", "
                                 "\"Year\"], sep = \"\", as_id = true }"))
    else:
        study_id = _source(spec["study_id"], "study_id", "study_id", mapping, problems)
        if study_id is not None and not study_id.reads_sheet:
            problems.append(_problem(mapping, "study_id", f"the constant {spec['study_id']!r}",
                                     "the study's id read from the sheet, { column = \"Study\" }"))
    fields = {
        "studies": _block(spec["studies"], "studies", "studies", mapping, problems)
        if spec.get("studies") is not None else None,
        "arms": _block(spec.get("arms") or {}, "arms", "arms", mapping, problems),
        "measures": tuple(_block(m, "measures", f"measures[{j}]", mapping, problems)
                          for j, m in enumerate(spec.get("measures") or [], 1)),
        "contrasts": tuple(_block(c, "contrasts", f"contrasts[{j}]", mapping, problems)
                           for j, c in enumerate(spec.get("contrasts") or [], 1)),
        "rob": _block(spec["rob"], "rob", "rob", mapping, problems) if spec.get("rob") is not None else None,
    }
    rob_domains = {}
    if fields["rob"] is not None:
        doms = spec["rob"].get("domains")
        if not isinstance(doms, dict) or not doms:
            problems.append(_problem(mapping, "rob.domains", "no [rob.domains] table" if doms is None
                                     else _type_name(doms), "[rob.domains] naming each domain and where its judgement "
                                     "is, randomisation = { column = \"D1\" }"))
        else:
            for dom, value in doms.items():
                src = _source(value, "judgement", f"rob.domains.{dom}", mapping, problems)
                if src is not None:
                    rob_domains[dom] = src
    _missing_fields(spec, fields, present, meant, broken, mapping, problems)

    vocab, vocab_toml = None, None
    if "vocabulary" in spec:
        vocab, vocab_toml = _vocabulary(spec["vocabulary"], mapping, problems)
    if problems:
        raise EvidenceError(problems)
    return WideMapping(path=mapping, study_id=study_id, filters=filters, recode=recode, rob_domains=rob_domains,
                       vocabulary=vocab, vocabulary_toml=vocab_toml, **options, **fields)


# ------------------------------------------------------------------------------------------ the sheet


@dataclass(frozen=True)
class Sheet:
    """A sheet as text: its header and its data rows, each with its row number as a spreadsheet shows it."""

    path: Path
    label: str  # "wide.csv", or "book.xlsx [sheet Data]"
    header: tuple[str, ...]
    header_row: int
    rows: tuple[tuple[int, tuple[str, ...]], ...]
    sha256: str
    name: str | None = None  # the workbook's sheet

    def index(self) -> dict[str, list[int]]:
        """column name -> its positions in the header (a name may appear twice)."""
        out: dict[str, list[int]] = {}
        for i, name in enumerate(self.header):
            if name:
                out.setdefault(name, []).append(i)
        return out


def _read_records_csv(path: Path, delimiter: str) -> tuple[list[list[str]], bytes, list[Problem]]:
    from .files import MAX_CSV_BYTES, file_problem

    problem = file_problem(path, MAX_CSV_BYTES)
    if problem:
        return [], b"", [Problem(str(path), None, None, problem, "a CSV file (text, one row per line)")]
    data = path.read_bytes()
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = data[: exc.start].count(b"\n") + 1
        return [], data, [Problem(str(path), line, None, f"bytes that are not UTF-8 (byte {exc.start}: "
                                  f"{data[exc.start:exc.start + 1]!r})",
                                  "UTF-8 text: save the sheet as 'CSV UTF-8' in your spreadsheet program")]
    try:
        records = list(csv.reader(io.StringIO(text, newline=""), delimiter=delimiter, strict=True))
    except csv.Error as exc:
        return [], data, [Problem(str(path), None, None, f"a malformed CSV ({exc})",
                                  "comma-separated values; a quote opened in a cell must be closed")]
    return [[c.strip() for c in r] for r in records], data, []


def _read_records_xlsx(path: Path, sheet: str | None, mapping: Path | None
                       ) -> tuple[list[list[str]], bytes, str | None, list[Problem]]:
    from .files import workbook_problem

    problem = workbook_problem(path)
    if problem:
        return [], b"", None, [Problem(str(path), None, None, problem, "an .xlsx workbook")]
    import openpyxl

    try:
        book = openpyxl.load_workbook(path, read_only=True, data_only=True)
    except Exception as exc:  # openpyxl raises several types for a broken file
        return [], b"", None, [Problem(str(path), None, None, f"a file Excel cannot open ({exc})",
                                       "an .xlsx workbook")]
    try:
        names = list(book.sheetnames)
        if sheet is None:
            ws = book.worksheets[0]
        elif sheet in names:
            ws = book[sheet]
        else:
            listed = ", ".join(f"'{n}'" for n in names)
            where = f" (sheet = \"...\" in {mapping.name})" if mapping else ""
            return [], b"", None, [Problem(str(path), None, None, f"no sheet named '{sheet}'",
                                                f"one of the workbook's sheets: {listed}{where}"
                                                f"{suggest(sheet, names)}")]
        records = [[_text(v) for v in r] for r in ws.iter_rows(min_row=1, values_only=True)]
        name = ws.title
    finally:
        book.close()
    return records, path.read_bytes(), name, []


def read_sheet(path: str | os.PathLike, *, sheet: str | None = None, header_row: int = 1, delimiter: str = ",",
               mapping: Path | None = None) -> Sheet:
    """A CSV file or a workbook's sheet as text rows, each with its own row number (the header is ``header_row``;
    empty rows keep their numbers). Raises :class:`EvidenceError`: a sheet that is not there names the sheets the
    workbook has."""
    p = Path(path)
    if not p.exists():
        raise EvidenceError([Problem(str(p), None, None, "no such file", "a wide sheet: a .csv file or an .xlsx "
                                                                          "workbook")])
    suffix = p.suffix.lower()
    if suffix in (".xlsx", ".xlsm"):
        records, data, name, problems = _read_records_xlsx(p, sheet, mapping)
        label = f"{p} [sheet {name}]"
    elif suffix in (".csv", ".txt", ".tsv"):
        if sheet is not None:
            raise EvidenceError([Problem(str(mapping or p), None, "sheet", f"sheet = \"{sheet}\" for a CSV file",
                                         "no sheet key: a CSV file has one sheet")])
        records, data, problems = _read_records_csv(p, "\t" if suffix == ".tsv" and delimiter == "," else delimiter)
        label, name = str(p), None
    else:
        raise EvidenceError([Problem(str(p), None, None, f"a {suffix or 'suffix-less'} file",
                                     "a .csv file or an .xlsx workbook (an old .xls: save it as .xlsx)")])
    if problems:
        raise EvidenceError(problems)
    if len(records) < header_row or not any(records[header_row - 1]):
        raise EvidenceError([Problem(label, header_row, None, "no column names in the header row"
                                     + (f" (the sheet has {len(records)} rows)" if len(records) < header_row else ""),
                                     "the column names in this row, or header_row = N in the mapping for the row "
                                     "that holds them")])
    header = tuple(records[header_row - 1])
    if delimiter == "," and len(header) == 1 and ";" in header[0]:
        raise EvidenceError([Problem(label, header_row, None, "a header separated by semicolons (';')",
                                     "delimiter = \";\" in the mapping, or a comma-separated file")])
    width = len(header)
    rows = tuple((i, tuple((r + [""] * width)[:width]))
                 for i, r in enumerate(records[header_row:], start=header_row + 1))
    return Sheet(p, label, header, header_row, rows, hashlib.sha256(data).hexdigest(), name)


def _column_problems(sheet: Sheet, mapping: WideMapping) -> list[Problem]:
    """Every column the mapping names that the sheet lacks or holds twice; constants that name a column."""
    index = sheet.index()
    out = []
    seen = set()
    for col, where in mapping.columns_named():
        if (col, where) in seen:
            continue
        seen.add((col, where))
        if col not in index:
            hint = suggest(col, index)
            listed = "" if hint else f" (its columns: {', '.join(list(index)[:30])}" + \
                (f" and {len(index) - 30} more)" if len(index) > 30 else ")")
            out.append(_problem(mapping.path, where, f"'{col}', not a column of {sheet.path.name}",
                                f"a column named in the header (row {sheet.header_row}){hint}{listed}"))
        elif len(index[col]) > 1:
            letters = " and ".join(_letters(i) for i in index[col])
            out.append(Problem(sheet.label, sheet.header_row, col, f"the column '{col}' twice in the header "
                               f"(columns {letters})", "each column named once (rename one)"))
    for fld, src in mapping.sources():
        if src.kind == "constant" and isinstance(src.value, str) and src.value.strip() in index \
                and KINDS.get(fld.split(".")[0], "str") != "str":
            out.append(_problem(mapping.path, src.where, f"the constant '{src.value}', and the sheet has a column of "
                                "that name", f"{{ column = \"{src.value.strip()}\" }} to read the column (a bare value "
                                "is the same in every row)"))
    return out


# ------------------------------------------------------------------------------------------ mapping rows


@dataclass
class _Value:
    text: str | None  # None: empty
    row: int
    label: str
    read: bool  # read from a cell (not a constant or a default)
    printed: str | None = None  # the cell as printed, before recoding


class _Reader:
    """Reads fields of one sheet row, applying placeholders, recoding, defaults and ids; collects problems."""

    def __init__(self, sheet: Sheet, mapping: WideMapping):
        self.sheet, self.mapping = sheet, mapping
        self.pos = {name: idx[0] for name, idx in sheet.index().items()}
        self.problems: list[Problem] = []
        self.reported: set[tuple[int, str]] = set()
        self.seen: set[Problem] = set()

    def cell(self, cells: tuple[str, ...], col: str) -> str:
        v = cells[self.pos[col]]
        if v in self.mapping.missing or v in self.mapping.missing_in.get(col, ()):
            return ""
        return v

    def value(self, src: Source, fld: str, row: int, cells: tuple[str, ...]) -> _Value:
        if src.kind == "constant":
            v = _text(src.value)
            return _Value(v or None, row, src.label, False)
        if src.kind == "column":
            text = self.cell(cells, src.columns[0])
        elif src.kind == "join":
            parts = [self.cell(cells, c) for c in src.columns]
            text = src.sep.join(parts) if all(parts) else ""
        else:
            parts = []
            for p in src.template:
                if isinstance(p, tuple):
                    got = self.cell(cells, p[1])
                    if not got:
                        parts = []
                        break
                    parts.append(got)
                else:
                    parts.append(p)
            text = "".join(parts)
        printed = text or None
        read = bool(text)
        fld_key = fld if fld in self.mapping.recode else RECODE_SHARED.get(fld, fld)
        table = self.mapping.recode.get(fld_key)
        if text and table is not None:
            if text in table:
                text = table[text]
            else:
                folded = [k for k in table if k.casefold() == text.casefold()]
                if len(folded) == 1:
                    text = table[folded[0]]
                else:
                    listed = ", ".join(f"'{k}'" for k in list(table)[:12]) + (" ..." if len(table) > 12 else "")
                    self.report(Problem(self.sheet.label, row, src.label, f"'{text}', a value [recode.{fld_key}] does "
                                        "not list", f"one of the values it lists ({listed}), or a line '{text}' = "
                                        f"\"...\" added to [recode.{fld_key}] in {self.mapping.path.name}"))
                    return _Value(None, row, src.label, True, printed)
        if not text and src.default is not None:
            return _Value(_text(src.default) or None, row, src.label, False, printed)
        if text and src.as_id:
            text = make_id(text)
        return _Value(text or None, row, src.label, read, printed)

    def report(self, p: Problem) -> None:
        if p in self.seen:  # a cell read by several blocks is reported once
            return
        self.seen.add(p)
        self.problems.append(p)
        if p.row is not None and p.column:
            self.reported.add((p.row, p.column))


@dataclass(frozen=True)
class WideTables:
    """What a mapping made of a sheet: raw tables (text, with provenance columns), the problems found while
    mapping, and counts of the rows read."""

    tables: dict[str, pd.DataFrame]
    problems: list[Problem]
    rows_read: int
    rows_empty: int
    rows_filtered: int
    rows_kept: int
    #: (sheet row, column) of each problem found while mapping (the validator's problems there are the same)
    reported: frozenset = frozenset()


def _passes(f: Filter, text: str) -> bool:
    if f.test == "is_blank":
        return not text
    if f.test == "not_blank":
        return bool(text)

    def same(a: str, b: str) -> bool:
        try:
            return float(a) == float(b)
        except ValueError:
            return a.casefold() == b.casefold()

    if f.test in ("equals", "not_equals"):
        hit = bool(text) and same(text, _text(f.value))
        return hit if f.test == "equals" else not hit
    hit = bool(text) and any(same(text, v) for v in f.value)
    return hit if f.test == "in" else not hit


def _row_dict(table: str, values: dict[str, _Value], row: int, block: str) -> dict:
    out = {c: None for c in schema.TABLES[table][0]}
    cells = {BLOCK_KEY: block}
    for fld, v in values.items():
        out[fld] = v.text
        cells[fld] = [v.row, v.label]
    out[SHEET_ROW] = row
    out[SHEET_CELLS] = json.dumps(cells, ensure_ascii=False)
    return out


def _frame(table: str, rows: list[dict]) -> pd.DataFrame:
    cols = list(schema.TABLES[table][0])
    extra = []
    for r in rows:
        extra += [k for k in r if k not in cols and k not in extra]
    return pd.DataFrame(rows, columns=cols + extra) if rows else pd.DataFrame(columns=cols + [SHEET_ROW, SHEET_CELLS])


def map_sheet(sheet: Sheet, mapping: WideMapping) -> WideTables:
    """Apply a mapping to a sheet: the raw evidence tables (studies when the mapping has [studies], arms,
    contrasts, rob), each row carrying the sheet row and columns it came from. Problems with the columns the
    mapping names raise :class:`EvidenceError`; problems in the sheet's values are collected in the result."""
    col_problems = _column_problems(sheet, mapping)
    if col_problems:
        raise EvidenceError(col_problems)
    rd = _Reader(sheet, mapping)
    fill = {c: rd.pos[c] for c in mapping.fill_down}
    last: dict[int, str] = {}
    studies: dict[str, dict[str, _Value]] = {}
    study_rows: dict[str, int] = {}
    arms, contrasts = [], []
    rob: dict[tuple, dict[str, _Value]] = {}
    rob_rows: dict[tuple, int] = {}
    empty = filtered = kept = 0
    for row, cells in sheet.rows:
        if not any(cells):
            empty += 1
            continue
        if fill:
            cells = list(cells)
            for i in fill.values():
                if cells[i]:
                    last[i] = cells[i]
                elif i in last:
                    cells[i] = last[i]
            cells = tuple(cells)
        if not all(_passes(f, rd.cell(cells, f.column)) for f in mapping.filters):
            filtered += 1
            continue
        kept += 1
        sid = rd.value(mapping.study_id, "study_id", row, cells)
        if sid.text is None:
            if (row, sid.label) not in rd.reported:
                rd.report(Problem(sheet.label, row, sid.label, "an empty study id" + (
                    f" (from '{sid.printed}')" if sid.printed else ""), "the study's id in every row kept (or a "
                    "[[filter]] that leaves this row out)"))
            continue
        base = {"study_id": sid}

        if mapping.studies is not None:
            vals = {f: rd.value(s, f, row, cells) for f, s in mapping.studies.items()}
            _merge(studies, study_rows, sid.text, {**base, **vals}, row, rd, f"study {sid.text}")
        for j, block in enumerate(mapping.measures, 1):
            fields = {**mapping.arms, **block}
            vals = {f: rd.value(s, f, row, cells) for f, s in fields.items()}
            if not any(vals[f].read and vals[f].text for f in ARM_VALUES if f in vals):
                continue
            if "source_location" not in vals:
                vals["source_location"] = _location(sheet, row, [vals[f] for f in ARM_VALUES + ("n",) if f in vals])
            arms.append(_row_dict("arms", {**base, **vals}, row, f"measures[{j}]"))
        for j, block in enumerate(mapping.contrasts, 1):
            vals = {f: rd.value(s, f, row, cells) for f, s in block.items()}
            if not any(vals[f].read and vals[f].text for f in CONTRAST_VALUES if f in vals):
                continue
            if "source_location" not in vals:
                vals["source_location"] = _location(sheet, row, [vals[f] for f in CONTRAST_VALUES if f in vals])
            contrasts.append(_row_dict("contrasts", {**base, **vals}, row, f"contrasts[{j}]"))
        if mapping.rob is not None:
            common = {f: rd.value(s, f, row, cells) for f, s in mapping.rob.items()}
            for dom, src in mapping.rob_domains.items():
                j = rd.value(src, "judgement", row, cells)
                if j.text is None:
                    continue
                vals = {**base, **common, "domain": _Value(dom, row, f"rob.domains.{dom} (the mapping)", False),
                        "judgement": j}
                if j.printed and "judgement_printed" not in vals:
                    vals["judgement_printed"] = _Value(j.printed, row, j.label, True)
                if "source_location" not in vals:
                    vals["source_location"] = _location(sheet, row, [j])
                key = (sid.text, (vals["tool"].text if "tool" in vals else None), dom)
                _merge(rob, rob_rows, key, vals, row, rd, f"{sid.text}, domain '{dom}'")
    tables = {"arms": _frame("arms", arms)}
    if mapping.studies is not None:
        tables["studies"] = _frame("studies", [_row_dict("studies", v, study_rows[k], "studies")
                                               for k, v in studies.items()])
    if mapping.contrasts:
        tables["contrasts"] = _frame("contrasts", contrasts)
    if mapping.rob is not None:
        tables["rob"] = _frame("rob", [_row_dict("rob", v, rob_rows[k], "rob") for k, v in rob.items()])
    return WideTables(tables, rd.problems, len(sheet.rows), empty, filtered, kept, frozenset(rd.reported))


def _location(sheet: Sheet, row: int, values: list[_Value]) -> _Value:
    cols = list(dict.fromkeys(v.label for v in values if v.read and v.text))
    where = sheet.path.name + (f" [sheet {sheet.name}]" if sheet.name else "")
    text = f"{where}, row {row}" + (f", columns {', '.join(cols)}" if cols else "")
    return _Value(text, row, "source_location (written by import)", False)


def _merge(store: dict, rows: dict, key, vals: dict[str, _Value], row: int, rd: _Reader, what: str) -> None:
    """Rows of one study (or rob judgement) merged into one: the first value read from the sheet wins over
    constants and defaults; two different values read from the sheet are a problem named at the later row."""
    if key not in store:
        store[key] = dict(vals)
        rows[key] = row
        return
    have = store[key]
    for fld, v in vals.items():
        old = have.get(fld)
        if v.text is None or fld in ("source_location", "judgement_printed"):
            continue
        if old is None or old.text is None or (not old.read and v.read):
            have[fld] = v
        elif v.read and old.read and v.text != old.text:
            rd.report(Problem(rd.sheet.label, row, v.label, f"'{v.text}' for {what}, but '{old.text}' in row "
                              f"{old.row} (column {old.label})", "the same value in every row of the study (or an "
                              "empty cell, which takes the other rows' value)"))


def read_wide_arms(path: str | os.PathLike, mapping: str | os.PathLike) -> pd.DataFrame:
    """The arms rows of a wide sheet (not yet validated); what ``io.read_wide`` returns. Reads both mapping forms.
    Raises :class:`EvidenceError` with every problem in the mapping, the columns it names and the values it
    recodes."""
    m = load_mapping(mapping, first_form=True)
    sheet = read_sheet(path, sheet=m.sheet, header_row=m.header_row, delimiter=m.delimiter, mapping=m.path)
    made = map_sheet(sheet, m)
    if made.problems:
        raise EvidenceError(made.problems)
    return made.tables["arms"]


# ------------------------------------------------------------------------------------------ import


@dataclass(frozen=True)
class ImportResult:
    """What ``import_wide`` wrote: the folder, each file with its rows, the sheet's counts and the warnings."""

    out: Path
    files: dict[str, int]  # file name -> data rows (review.toml, import.json: 0)
    sheet: str
    rows_read: int
    rows_empty: int
    rows_filtered: int
    rows_kept: int
    n_studies: int
    warnings: tuple[Problem, ...] = ()

    def summary(self) -> str:
        def count(n: int, what: str) -> str:
            return f"{n} {what}" + ("" if n == 1 else "s")

        tables = ", ".join(f"{f} ({count(n, 'row')})" for f, n in self.files.items() if f.endswith(".csv"))
        others = [f for f in self.files if not f.endswith(".csv")]
        return (f"read {count(self.rows_read, 'row')} of {self.sheet} ({self.rows_filtered} left out by filters, "
                f"{self.rows_empty} empty); wrote {tables}" + (f" and {', '.join(others)}" if others else "")
                + f" to {self.out}: {count(self.n_studies, 'trial')}")


def check_import_output(out: str | os.PathLike) -> Path:
    """Refuse an output folder ``import-wide`` may not replace (``OutputRefused`` with the reason): a file, a
    symbolic link, or a folder with files another command or a person wrote."""
    from . import atomic

    return atomic.check_output_folder(out, WRITER)


def import_wide(sheet: str | os.PathLike, mapping: str | os.PathLike, out: str | os.PathLike) -> ImportResult:
    """Read a wide sheet through a mapping, validate the tables it makes against the mapping's vocabulary, and
    write them as an evidence folder at ``out``, all or nothing.

    Writes studies.csv, arms.csv, contrasts.csv (with [[contrasts]] blocks), rob.csv (with [rob]), review.toml
    (when the mapping declares a vocabulary) and import.json (the sheet's and the mapping's sha256, the counts).
    Every problem, in the mapping, the sheet or the tables made from it, raises :class:`EvidenceError` naming the
    mapping key or the sheet's own row and column, all at once, and nothing is written. ``out`` must be new, empty
    or written by ``import-wide`` before (``OutputRefused`` otherwise, before the sheet is read).
    """
    from . import atomic
    from .export import csv_bytes

    m = load_mapping(mapping)
    if m.studies is None:
        raise EvidenceError([_problem(m.path, "studies", "no [studies] table",
                                      "a [studies] table: an evidence folder needs studies.csv (citation, year, "
                                      "population and sources of each study)")])
    target = check_import_output(out)
    sh = read_sheet(sheet, sheet=m.sheet, header_row=m.header_row, delimiter=m.delimiter, mapping=m.path)
    made = map_sheet(sh, m)
    files = {t: f"{sh.label} (for {TABLE_FILES[t]})" for t in TABLE_FILES}
    typed, problems = validate_tables(made.tables, files, m.vocabulary)
    problems = made.problems + [p for p in problems if (p.row, p.column) not in made.reported]
    if problems:
        problems.sort(key=lambda p: (p.row or 0, p.column or "", p.file))
        raise EvidenceError(problems)
    warnings = sheet_problems(schema.plausibility_warnings(typed, files), made.tables, files)
    written: dict[str, bytes] = {}
    counts: dict[str, int] = {}
    for t in ("studies", "arms", "contrasts", "rob"):
        if t not in made.tables:
            continue
        cols = list(schema.TABLES[t][0])
        cols += [c for c in typed[t].columns if str(c).startswith("x_") and c not in (SHEET_ROW, SHEET_CELLS)]
        written[TABLE_FILES[t]] = csv_bytes(typed[t][cols], cols)
        counts[TABLE_FILES[t]] = len(typed[t])
    if m.vocabulary_toml is not None:
        written["review.toml"] = m.vocabulary_toml
        counts["review.toml"] = 0
    sheet_name = sh.path.name + (f" [sheet {sh.name}]" if sh.name else "")
    record = {"writer": f"mt-evidence {WRITER}", "sheet": sheet_name, "sheet_sha256": sh.sha256,
              "mapping": m.path.name, "mapping_sha256": hashlib.sha256(m.path.read_bytes()).hexdigest(),
              "rows_read": made.rows_read, "rows_empty": made.rows_empty, "rows_filtered": made.rows_filtered,
              "rows_kept": made.rows_kept, "rows_written": {k: v for k, v in counts.items() if k.endswith(".csv")},
              "warnings": [str(w) for w in warnings]}
    written["import.json"] = (json.dumps(record, indent=1, ensure_ascii=False) + "\n").encode("utf-8")
    counts["import.json"] = 0
    atomic.replace_owned_folder(target, written, WRITER)
    return ImportResult(out=Path(out), files=counts, sheet=sh.label, rows_read=made.rows_read,
                        rows_empty=made.rows_empty, rows_filtered=made.rows_filtered, rows_kept=made.rows_kept,
                        n_studies=len(typed["studies"]), warnings=tuple(warnings))

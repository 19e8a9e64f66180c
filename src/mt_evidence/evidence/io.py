"""Readers: tidy CSV folders, Excel workbooks, wide extraction sheets (through a mapping file) and RevMan 5
files, all validated against the data contract in :mod:`mt_evidence.evidence.schema`.

``load_evidence(path=None)`` is the entry point: ``None`` loads the bundled evidence (``data/raw``).
"""

from __future__ import annotations

import codecs
import hashlib
import os
import tomllib
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from . import schema
from .schema import EvidenceError, Problem

__all__ = ["Evidence", "load_evidence", "validate_path", "read_wide", "bundled_data_dir", "EvidenceError"]

TABLE_FILES = {"studies": "studies.csv", "arms": "arms.csv", "contrasts": "contrasts.csv", "rob": "rob.csv",
               "harms": "harms.csv", "arm_details": "arm_details.csv"}


def bundled_data_dir() -> Path:
    """The bundled evidence: ``$MT_EVIDENCE_DATA`` if set, else ``data/raw`` of the project checkout."""
    env = os.environ.get("MT_EVIDENCE_DATA")
    if env:
        return Path(env)
    here = Path(__file__).resolve()
    for parent in here.parents:
        cand = parent / "data" / "raw"
        if (cand / "studies.csv").exists():
            return cand
    raise FileNotFoundError(
        "the bundled evidence (data/raw/studies.csv) was not found next to the package; "
        "install the project in editable mode from its checkout (make setup) or set MT_EVIDENCE_DATA"
    )


@dataclass(frozen=True)
class Evidence:
    """Validated evidence: three tables plus where they came from and a hash of the raw bytes."""

    studies: pd.DataFrame
    arms: pd.DataFrame
    contrasts: pd.DataFrame
    source: str
    data_hash: str
    files: dict[str, str] = field(default_factory=dict)
    rob: pd.DataFrame = field(default_factory=lambda: pd.DataFrame(columns=list(schema.ROB_COLUMNS)))
    harms: pd.DataFrame = field(default_factory=lambda: pd.DataFrame(columns=list(schema.HARM_COLUMNS)))
    arm_details: pd.DataFrame = field(default_factory=lambda: pd.DataFrame(columns=list(schema.ARM_DETAIL_COLUMNS)))
    #: values allowed but probably wrong (schema.plausibility_warnings), each naming file, row and column
    warnings: tuple = ()

    def summary(self) -> str:
        return (
            f"{len(self.studies)} trials, {len(self.arms)} arm rows, {len(self.contrasts)} contrast rows "
            f"from {self.source} (sha256 {self.data_hash[:12]})"
        )

    def __repr__(self) -> str:
        return f"Evidence({self.summary()})"


# ------------------------------------------------------------------------------------------ raw reading


def _first_line(text: str) -> str:
    """``text.splitlines()[0]`` ("" for no text), without splitting a whole large file."""
    size = 1 << 16
    while True:
        lines = text[:size].splitlines()
        if len(lines) > 1 or size >= len(text):
            return lines[0] if lines else ""
        size *= 4


def _read_csv_checked(path: Path) -> tuple[pd.DataFrame | None, list[Problem], bytes]:
    from .files import MAX_CSV_BYTES, file_problem

    problem = file_problem(path, MAX_CSV_BYTES)
    if problem:
        return None, [Problem(str(path), None, None, problem, "a CSV file (comma-separated text)")], b""
    data = path.read_bytes()
    problems: list[Problem] = []
    if not data or data.isspace():
        return None, [Problem(str(path), 1, None, "an empty file",
                              "a header line naming the columns (mt-evidence template writes one)")], data
    utf8 = True
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        utf8 = False
        line = data[: exc.start].count(b"\n") + 1
        problems.append(Problem(str(path), line, None, f"bytes that are not UTF-8 (byte {exc.start}: "
                                f"{data[exc.start:exc.start + 1]!r})",
                                "UTF-8 text: save the file as 'CSV UTF-8' in your spreadsheet program"))
        text = data.decode("utf-8", errors="replace")
    import io as _io

    first = _first_line(text)
    if ";" in first and "," not in first:
        problems.append(Problem(str(path), 1, None, "a header separated by semicolons (';')",
                                "comma-separated values: save as 'CSV UTF-8 (comma delimited)', or change the list "
                                "separator of your spreadsheet program to a comma"))
        return None, problems, data
    # the parser reads UTF-8 bytes either way: valid files are handed over as they are (without the BOM) rather
    # than as a text buffer (four bytes a character)
    bom = len(codecs.BOM_UTF8) if data.startswith(codecs.BOM_UTF8) else 0
    source = _io.BytesIO(data[bom:]) if utf8 else _io.StringIO(text)
    del text
    try:
        # cells as plain Python text (pandas' str arrays cost more to build; custom columns are made str below)
        df = pd.read_csv(source, dtype=object, keep_default_na=False, na_values=[""])
    except (pd.errors.ParserError, pd.errors.EmptyDataError) as exc:
        problems.append(Problem(str(path), None, None, f"a malformed CSV ({str(exc).strip()})",
                                "comma-separated values with the same number of fields on every line"))
        return None, problems, data
    import csv

    header = [c.strip() for c in next(csv.reader([first]), [])]
    seen: set[str] = set()
    for c in header:
        if c in seen:
            problems.append(Problem(str(path), 1, c, f"the column '{c}' twice in the header",
                                    "each column once (remove or rename the second one)"))
        seen.add(c)
    if len(seen) < len(header):
        return None, problems, data
    df.columns = [str(c).strip() for c in df.columns]
    custom = [c for c in df.columns if c.startswith("x_")]  # carried into the typed tables as they are read
    if custom:
        df[custom] = df[custom].astype(str)
    return df, problems, data


def _raw_tables_from_folder(folder: Path) -> tuple[dict[str, pd.DataFrame], dict[str, str], list[Problem],
                                                   list[bytes]]:
    tables, files, problems = {}, {}, []
    raw_bytes: list[bytes] = []  # what the hash covers: each file's name, a NUL byte and its bytes
    for table, fname in TABLE_FILES.items():
        p = folder / fname
        files[table] = str(p)
        if not p.exists():
            if table in schema.OPTIONAL_TABLES:
                tables[table] = pd.DataFrame(columns=list(schema.TABLES[table][0]))
                continue
            problems.append(Problem(str(p), None, None, "no such file", f"a {fname} in {folder}"))
            tables[table] = pd.DataFrame(columns=list(schema.TABLES[table][0]))
            continue
        df, probs, data = _read_csv_checked(p)
        problems += probs
        raw_bytes += [fname.encode() + b"\0", data]
        tables[table] = df if df is not None else pd.DataFrame(columns=list(schema.TABLES[table][0]))
    return tables, files, problems, raw_bytes


def _raw_tables_from_workbook(path: Path) -> tuple[dict[str, pd.DataFrame], dict[str, str], list[Problem],
                                                     list[bytes]]:
    from .files import workbook_problem

    tables, files, problems = {}, {}, []
    problem = workbook_problem(path)
    if problem:
        return ({t: pd.DataFrame(columns=list(schema.TABLES[t][0])) for t in TABLE_FILES},
                {t: f"{path} [{t}]" for t in TABLE_FILES},
                [Problem(str(path), None, None, problem, "an .xlsx workbook")], [])
    try:
        book = pd.read_excel(path, sheet_name=None, dtype=str)
    except Exception as exc:  # openpyxl raises several types for a broken file
        return ({t: pd.DataFrame(columns=list(schema.TABLES[t][0])) for t in TABLE_FILES},
                {t: f"{path} [{t}]" for t in TABLE_FILES},
                [Problem(str(path), None, None, f"a file Excel cannot open ({exc})", "an .xlsx workbook")], [])
    for table in TABLE_FILES:
        files[table] = f"{path} [sheet {table}]"
        if table not in book:
            if table in schema.OPTIONAL_TABLES:
                tables[table] = pd.DataFrame(columns=list(schema.TABLES[table][0]))
                continue
            problems.append(Problem(str(path), None, None, f"no sheet named '{table}' (sheets: {list(book)})",
                                    "sheets named studies, arms and (optionally) contrasts, rob, harms and arm_details"))
            tables[table] = pd.DataFrame(columns=list(schema.TABLES[table][0]))
            continue
        df = book[table]
        df.columns = [str(c).strip() for c in df.columns]
        tables[table] = df.replace({np.nan: None})
    return tables, files, problems, [path.read_bytes()]


# ---------------------------------------------------------------------------------------------- validation


#: progress messages check_path and load_evidence send: reading, one per table, rules across rows, plausibility
VALIDATE_STEPS = len(TABLE_FILES) + 3


def validate_tables(raw: dict[str, pd.DataFrame], files: dict[str, str],
                    progress=None) -> tuple[dict[str, pd.DataFrame], list[Problem]]:
    """Coerce and validate the three raw tables; return typed tables and every problem found. ``progress``, when
    given, is called with a message as each table and then the rules across rows begin."""
    say = progress or (lambda _msg: None)
    problems: list[Problem] = []
    typed = {}
    raw, files = dict(raw), dict(files)
    for table in schema.OPTIONAL_TABLES:  # optional tables may be left out by callers
        raw.setdefault(table, pd.DataFrame(columns=list(schema.TABLES[table][0])))
        files.setdefault(table, TABLE_FILES[table])
    for table in TABLE_FILES:
        say(f"checking {table}")
        df = raw[table].reset_index(drop=True)
        t, probs = schema.coerce_table(df, table, files[table])
        problems += probs
        # a time point written with a unit: say what to write instead
        if "timepoint_weeks" in df.columns:
            weeks = df["timepoint_weeks"]
            hints = {v: h for v in weeks.dropna().unique() if (h := schema.timepoint_unit_hint(v))}
            for i, v in weeks[weeks.isin(list(hints)).to_numpy(bool)].items():
                problems = [p for p in problems if not (p.file == files[table] and p.row == i + 2
                                                        and p.column == "timepoint_weeks")]
                problems.append(Problem(files[table], i + 2, "timepoint_weeks", f"'{v}' (a time with a unit)",
                                        hints[v]))
        problems += schema.schema_problems(t, table, files[table])
        problems += schema.source_problems(t, table, files[table])
        typed[table] = t
    say("checking rows and links between tables")
    problems += schema.row_problems_arms(typed["arms"], files["arms"])
    problems += schema.row_problems_contrasts(typed["contrasts"], files["contrasts"])
    problems += schema.row_problems_harms(typed["harms"], files["harms"])
    problems += schema.row_problems_arm_details(typed["arm_details"], files["arm_details"])
    problems += schema.row_problems_rob(typed["rob"], files["rob"])
    problems += schema.cross_problems(typed["studies"], typed["arms"], typed["contrasts"], files, typed["rob"],
                                      typed["harms"], typed["arm_details"])
    problems = _wide_sheet_rows(problems, raw["arms"], files["arms"])
    problems.sort(key=lambda p: (p.file, p.row or 0, p.column or ""))
    return typed, problems


def _wide_sheet_rows(problems: list[Problem], arms: pd.DataFrame, file: str) -> list[Problem]:
    """Arms rows made by :func:`read_wide` are reported at their row and column of the wide sheet (the sheet the
    user edits), not at their place in the long arms table."""
    if "x_wide_row" not in arms.columns:
        return problems
    arms = arms.reset_index(drop=True)
    out = []
    for p in problems:
        if p.file != file or p.row is None or not (0 <= p.row - 2 < len(arms)):
            out.append(p)
            continue
        r = arms.iloc[p.row - 2]
        cols = dict(x.split("=", 1) for x in str(r.get("x_wide_columns") or "").split(";") if "=" in x)
        column = p.column
        if column in cols:
            column = cols[column]
        elif column:
            column = f"{column} (from the mapping)"
        out.append(Problem(p.file, int(r["x_wide_row"]), column, p.found, p.expected))
    return out


def _read_any(path: Path) -> tuple[dict, dict, list[Problem], list[bytes]]:
    if path.is_dir():
        return _raw_tables_from_folder(path)
    if path.suffix.lower() in (".xlsx", ".xlsm"):
        return _raw_tables_from_workbook(path)
    if path.suffix.lower() == ".csv" and path.name in TABLE_FILES.values():
        return _raw_tables_from_folder(path.parent)
    return ({t: pd.DataFrame(columns=list(schema.TABLES[t][0])) for t in TABLE_FILES},
            {t: str(path) for t in TABLE_FILES},
            [Problem(str(path), None, None, f"a {path.suffix or 'suffix-less'} file",
                     "a folder with studies.csv, arms.csv and contrasts.csv, or an .xlsx workbook (an old .xls: "
                     "save it as .xlsx)")], [])


def validate_path(path: str | os.PathLike) -> list[Problem]:
    """Every problem in an evidence folder or workbook (empty list when clean)."""
    return check_path(path)[0]


def check_path(path: str | os.PathLike, progress=None) -> tuple[list[Problem], list[Problem]]:
    """(problems, warnings) of an evidence folder or workbook: problems stop loading; warnings name values the
    contract allows but that are probably wrong (:func:`schema.plausibility_warnings`). ``progress``, when
    given, is called with a message as each of the ``VALIDATE_STEPS`` steps begins."""
    p = Path(path)
    if not p.exists():
        return [Problem(str(p), None, None, "no such file or folder", "an evidence folder or .xlsx workbook")], []
    say = progress or (lambda _msg: None)
    typed, files, problems, _ = _read_and_validate(p, say)
    say("checking plausibility")
    warnings = [] if problems else schema.plausibility_warnings(typed, _files_of(files))
    return problems, warnings


def _read_and_validate(p: Path, say, hashed: bool = False) -> tuple[dict[str, pd.DataFrame], dict[str, str],
                                                                   list[Problem], str]:
    """Typed tables, file names, every problem and (``hashed``) the SHA-256 of the raw bytes of an existing path;
    the bytes are hashed and let go before validation, which needs the memory more."""
    say("reading the files")
    raw, files, problems, raw_bytes = _read_any(p)
    digest = hashlib.sha256()
    for chunk in raw_bytes if hashed else ():
        digest.update(chunk)
    del raw_bytes
    typed, more = validate_tables(raw, files, progress=say)
    return typed, files, problems + more, digest.hexdigest() if hashed else ""


def _files_of(files: dict[str, str]) -> dict[str, str]:
    out = dict(files)
    for table in schema.OPTIONAL_TABLES:
        out.setdefault(table, TABLE_FILES[table])
    return out


def load_evidence(path: str | os.PathLike | None = None, progress=None) -> Evidence:
    """Load and validate evidence from a folder of CSV files or an Excel workbook.

    ``path=None`` loads the bundled evidence. Raises :class:`EvidenceError` listing every problem. ``progress``,
    when given, is called with a message as each of the ``VALIDATE_STEPS`` steps begins.
    """
    p = bundled_data_dir() if path is None else Path(path)
    if not p.exists():
        raise EvidenceError([Problem(str(p), None, None, "no such file or folder",
                                     "an evidence folder (studies.csv, arms.csv, contrasts.csv) or .xlsx workbook")])
    say = progress or (lambda _msg: None)
    typed, files, problems, data_hash = _read_and_validate(p, say, hashed=True)
    if problems:
        raise EvidenceError(problems)
    say("checking plausibility")
    warnings = tuple(schema.plausibility_warnings(typed, _files_of(files)))
    return Evidence(warnings=warnings, studies=schema.with_rob_overall(typed["studies"], typed["rob"]), arms=typed["arms"], contrasts=typed["contrasts"], source=str(p),
                    data_hash=data_hash, files=files, rob=typed["rob"],
                    harms=typed["harms"], arm_details=typed["arm_details"])


# ------------------------------------------------------------------------------------------ wide sheets


def read_wide(path: str | os.PathLike, mapping: str | os.PathLike) -> pd.DataFrame:
    """Read a wide extraction sheet (one row per arm, outcome/time columns side by side) into arms rows.

    ``mapping`` is a TOML file::

        [columns]                 # arms column = wide-sheet column (fixed per arm)
        study_id = "Study"
        arm = "Group"
        intervention = "Category"

        [defaults]                # values for every row (e.g. source_url)
        source_url = "https://..."

        [[measures]]              # one block per outcome x time point
        outcome = "disability"
        instrument = "RMDQ"
        scale_min = 0
        scale_max = 24
        higher_is_worse = true
        timepoint_weeks = 13
        value_type = "final"
        source_location = "Table 2"
        mean = "RMDQ 3m mean"     # wide-sheet columns holding the numbers
        sd = "RMDQ 3m SD"
        n = "RMDQ 3m n"

    Returns a frame in the arms format (not yet validated: pass it through ``validate_tables``). Problems with
    the mapping itself (a column it names that the sheet lacks) raise :class:`EvidenceError`, all at once.
    """
    path, mapping = Path(path), Path(mapping)
    try:
        spec = tomllib.loads(mapping.read_text(encoding="utf-8"))
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise EvidenceError([Problem(str(mapping), None, None, f"an unreadable mapping ({exc})", "a TOML file")]) from None
    if path.suffix.lower() in (".xlsx", ".xlsm"):
        sheet = pd.read_excel(path, dtype=str, sheet_name=spec.get("sheet", 0))
    else:
        sheet, probs, _ = _read_csv_checked(path)
        if probs:
            raise EvidenceError(probs)
    problems = []
    fixed = spec.get("columns", {})
    measures = spec.get("measures", [])
    if not measures:
        problems.append(Problem(str(mapping), None, None, "no [[measures]] blocks",
                                "at least one [[measures]] block naming the outcome and its columns"))
    numeric = ("n", "mean", "sd", "se", "ci_low", "ci_high", "median", "q1", "q3", "min", "max")
    for target, col in fixed.items():
        if col not in sheet.columns:
            problems.append(Problem(str(mapping), None, f"columns.{target}", f"'{col}', not a column of {path.name}",
                                    f"one of {list(sheet.columns)}"))
    for j, m in enumerate(measures, start=1):
        for key in numeric:
            if key in m and m[key] not in sheet.columns:
                problems.append(Problem(str(mapping), None, f"measures[{j}].{key}",
                                        f"'{m[key]}', not a column of {path.name}", f"one of {list(sheet.columns)}"))
    if problems:
        raise EvidenceError(problems)
    rows = []
    for i, r in sheet.iterrows():
        base = {t: r[c] for t, c in fixed.items()}
        for m in measures:
            vals = {k: r[m[k]] for k in numeric if k in m}
            if all(pd.isna(v) or str(v).strip() == "" for v in vals.values()):
                continue  # this arm has no data for this measure
            row = dict(spec.get("defaults", {}))
            row.update(base)
            row.update({k: v for k, v in m.items() if k not in numeric})
            row.update(vals)
            row["x_wide_row"] = i + 2
            row["x_wide_columns"] = ";".join(f"{t}={c}" for t, c in list(fixed.items())
                                             + [(k, m[k]) for k in numeric if k in m])
            if not row.get("source_location"):
                row["source_location"] = f"{path.name}, row {i + 2}"
            rows.append(row)
    out = pd.DataFrame(rows)
    for c in schema.ARM_COLUMNS:
        if c not in out.columns:
            out[c] = None
    return out


@dataclass(frozen=True)
class TemplateOutput:
    """What ``write_template`` wrote: the path, the files written, and existing files left as they were."""

    path: Path
    written: list[str]
    kept: list[str]


def write_template(path: str | os.PathLike) -> TemplateOutput:
    """Write an empty extraction template: an .xlsx workbook (sheets studies, arms, contrasts, rob and a
    ``dictionary`` sheet describing every column), or, for a path without a suffix, a folder of CSV files.

    Nothing is ever overwritten: an existing workbook is refused (``OutputRefused``); in an existing folder only
    the missing files are written and the others are listed in ``kept``, unchanged.
    """
    from . import atomic

    path = Path(path)
    dictionary = pd.DataFrame(
        [{"table": t, "column": c, "type": {"num": "number", "int": "whole number", "bool": "true/false",
                                            "str": "text"}[k], "required": "yes" if c in req else "no"}
         for t, (cols, req) in schema.TABLES.items() for c, k in cols.items()]
    )
    empty = {t: pd.DataFrame(columns=list(cols)) for t, (cols, _) in schema.TABLES.items()}
    if path.suffix.lower() in (".xlsx", ".xlsm"):
        import io as _io

        if path.exists() or path.is_symlink():
            raise atomic.OutputRefused(f"{path} exists; choose a new name (nothing was written, the file is "
                                        "unchanged)")
        buf = _io.BytesIO()
        with pd.ExcelWriter(buf) as xw:
            for t, df in empty.items():
                df.to_excel(xw, sheet_name=t, index=False)
            dictionary.to_excel(xw, sheet_name="dictionary", index=False)
        written, kept = atomic.write_new_files(path.parent, {path.name: buf.getvalue()})
        if kept:
            raise atomic.OutputRefused(f"{path} appeared while the template was written; it was left unchanged")
        return TemplateOutput(path, written, kept)
    if path.suffix and not path.is_dir():
        raise atomic.OutputRefused(f"{path}: a template is an .xlsx workbook or a folder (a name without a suffix); "
                                    "nothing was written")
    files = {TABLE_FILES[t]: df.to_csv(index=False).encode("utf-8") for t, df in empty.items()}
    files["dictionary.csv"] = dictionary.to_csv(index=False).encode("utf-8")
    written, kept = atomic.write_new_files(path, files)
    return TemplateOutput(path, written, kept)

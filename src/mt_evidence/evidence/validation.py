"""Validation of the evidence tables against a vocabulary, with every problem named by file, row and column.

``validate_tables`` coerces raw tables (text cells, as read) to their types and checks them against the data
contract (:mod:`mt_evidence.evidence.schema`) and a review's vocabulary. Tables made from a wide extraction sheet
(:mod:`mt_evidence.evidence.wide`) carry where each value came from in two ``x_`` columns; their problems are then
named by the sheet's own row and column (:func:`sheet_problems`), the place the user edits, never by their place in
the long table made from it.
"""

from __future__ import annotations

import json
import re

import pandas as pd

from . import schema
from .schema import Problem
from .vocabulary import Vocabulary

__all__ = ["TABLE_FILES", "SHEET_ROW", "SHEET_CELLS", "schemas_of", "validate_tables", "sheet_problems"]

TABLE_FILES = {"studies": "studies.csv", "arms": "arms.csv", "contrasts": "contrasts.csv", "rob": "rob.csv",
               "harms": "harms.csv", "arm_details": "arm_details.csv"}

#: a row made from a wide sheet: the sheet row it came from (as a spreadsheet shows it, the header is row 1)
SHEET_ROW = "x_wide_row"
#: ... and, as JSON, each field's sheet row and column: {"sd": [3, "SD 3m"], "higher_is_worse": [3, "..."]}; a
#: value set by the mapping rather than read from a cell is named by its place in the mapping
SHEET_CELLS = "x_wide_cells"
#: the mapping block a row was made by ("measures[2]"), a key of SHEET_CELLS
BLOCK_KEY = ""


def schemas_of(vocabulary: Vocabulary | None) -> dict:
    """The pandera schemas of a vocabulary's allowed names (the packaged ones for the default vocabulary)."""
    if vocabulary is None or vocabulary.is_default:
        return schema.SCHEMAS
    return schema.schemas_for(vocabulary.treatment_names, tuple(vocabulary.outcomes), tuple(vocabulary.populations))


def validate_tables(raw: dict[str, pd.DataFrame], files: dict[str, str], vocabulary: Vocabulary | None = None,
                    progress=None) -> tuple[dict[str, pd.DataFrame], list[Problem]]:
    """Coerce and validate the raw tables against a vocabulary (default: the package's); return typed tables and
    every problem found. Rows made from a wide sheet are reported at the sheet's row and column. ``progress``, when
    given, is called with a message as each table and then the rules across rows begin."""
    say = progress or (lambda _msg: None)
    schemas = schemas_of(vocabulary)
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
        # a time point written with a unit: say what to write instead (each distinct cell looked at once)
        if "timepoint_weeks" in df.columns:
            weeks = df["timepoint_weeks"]
            hints = {v: h for v in weeks.dropna().unique() if (h := schema.timepoint_unit_hint(v))}
            for i, v in weeks[weeks.isin(list(hints)).to_numpy(bool)].items():
                problems = [p for p in problems if not (p.file == files[table] and p.row == i + 2
                                                        and p.column == "timepoint_weeks")]
                problems.append(Problem(files[table], i + 2, "timepoint_weeks", f"'{v}' (a time with a unit)",
                                        hints[v]))
        problems += schema.schema_problems(t, table, files[table], schemas)
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
    problems = sheet_problems(problems, raw, files)
    problems.sort(key=lambda p: (p.file, p.row or 0, p.column or ""))
    return typed, problems


# ------------------------------------------------------------------------------------ back to the sheet

_DUPLICATE_OF = re.compile(r"\ba duplicate of row (\d+)\b")


def _cells(row: pd.Series) -> dict:
    text = row.get(SHEET_CELLS)
    if not isinstance(text, str) or not text:
        return {}
    try:
        cells = json.loads(text)
    except ValueError:
        return {}
    return cells if isinstance(cells, dict) else {}


def _sheet_row(row: pd.Series) -> int | None:
    try:
        return int(row[SHEET_ROW])
    except (KeyError, TypeError, ValueError):
        return None


def sheet_problems(problems: list[Problem], raw: dict[str, pd.DataFrame], files: dict[str, str]) -> list[Problem]:
    """Problems (or warnings) in tables made from a wide sheet, named by the sheet's own row and column.

    A table made from a sheet has the columns :data:`SHEET_ROW` and :data:`SHEET_CELLS`; a problem at one of its
    rows moves to the sheet row, and its column becomes the sheet column the value was read from (or the place in
    the mapping that set it). A problem with the header of a made table (row 1) is not a sheet row and loses its
    row. Tables without these columns, and problems in other files, are left as they are.
    """
    made = {}
    for table, df in raw.items():
        if table in files and df is not None and SHEET_ROW in df.columns:
            made[files[table]] = df.reset_index(drop=True)
    if not made:
        return problems
    out = []
    for p in problems:
        df = made.get(p.file)
        if df is None or p.row is None:
            out.append(p)
            continue
        if p.row == 1:
            out.append(Problem(p.file, None, p.column, p.found, p.expected))
            continue
        if not 0 <= p.row - 2 < len(df):
            out.append(p)
            continue
        r = df.iloc[p.row - 2]
        row, cells = _sheet_row(r), _cells(r)
        column = p.column
        if column in cells and isinstance(cells[column], list) and len(cells[column]) == 2:
            row = cells[column][0] or row
            column = cells[column][1]
        elif column:
            column = f"{column} (not set by the mapping)"

        def other(m, df=df):
            i = int(m.group(1)) - 2
            if not 0 <= i < len(df):
                return m.group(0)
            o = df.iloc[i]
            block = _cells(o).get(BLOCK_KEY)
            return f"a duplicate of row {_sheet_row(o)}" + (f" (made by {block})" if block else "")

        found = _DUPLICATE_OF.sub(other, p.found)
        block = cells.get(BLOCK_KEY)
        if block and found != p.found:
            found += f"; this one made by {block}"
        out.append(Problem(p.file, row, column, found, p.expected))
    return list(dict.fromkeys(out))  # one sheet cell read into several rows: one problem

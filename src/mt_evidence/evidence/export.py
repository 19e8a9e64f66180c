"""Tables written for other programs (CSV): full precision, one line ending, and no spreadsheet formulas.

A text cell that starts with ``=``, ``+``, ``-``, ``@``, a tab or a carriage return is read by Excel, LibreOffice
and Google Sheets as a formula ("CSV injection"). Evidence files are data from many hands, so every exported text
cell that starts so is written with a leading apostrophe (OWASP's advice), which spreadsheets show as text.
Numeric columns are not touched.

The bytes are those of ``DataFrame.to_csv(index=False, float_format="%.10g", lineterminator="\\n")`` after
neutralising; tables of plain columns (floats, whole numbers, booleans, text) are written column by column,
which is many times faster for large tables (``data/processed`` of a million arm rows).
"""

from __future__ import annotations

import csv
import io

import numpy as np
import pandas as pd

FORMULA_START = ("=", "+", "-", "@", "\t", "\r")
FLOAT_FORMAT = "%.10g"  # 10 significant digits
QUOTE_TRIGGERS = (",", '"', "\n", "\r")  # the csv module may quote a cell holding one of these, and no other


def neutralise(value):
    """``value`` with a leading apostrophe when it is text a spreadsheet would run as a formula."""
    if isinstance(value, str) and value.startswith(FORMULA_START):
        return "'" + value
    return value


def _float_text(values: np.ndarray, float_format: str | None = FLOAT_FORMAT) -> np.ndarray:
    """Floats as ``to_csv(float_format=float_format)`` writes them (empty where missing; every digit, as ``repr``,
    with ``None``), each distinct value formatted once (distinct bit patterns, so that -0.0 stays "-0")."""
    values = np.ascontiguousarray(values, dtype=float)
    codes, distinct = pd.factorize(values.view(np.int64))
    fmt = repr if float_format is None else float_format.__mod__
    text = np.array([fmt(v) for v in distinct.view(float).tolist()], dtype=object)[codes]
    text[np.isnan(values)] = ""
    return text


def _cells(col: pd.Series, float_format: str | None = FLOAT_FORMAT) -> tuple[np.ndarray, bool] | None:
    """(the text ``to_csv`` writes for each cell, neutralised but not yet quoted; whether any cell may need
    quotes), or None when the column is not of a plain kind."""
    dtype = col.dtype
    if isinstance(dtype, np.dtype) and dtype.kind in "fbiu":
        if dtype.kind == "f":
            return _float_text(col.to_numpy(), float_format), False
        return np.array([str(v) for v in col.to_numpy().tolist()], dtype=object), False
    if not (dtype == object or pd.api.types.is_string_dtype(dtype)):
        return None
    values = col.to_numpy(object)
    missing = pd.isna(values)
    present = values[~missing]
    try:
        joined = "\n" + "\n".join(present)  # one search over the column instead of a look at every cell
    except TypeError:  # not all text (numbers or flags in an object column)
        return None
    text = values.copy()
    text[missing] = ""
    if any("\n" + c in joined for c in FORMULA_START):
        text[~missing] = [neutralise(v) for v in present]
    line_breaks = joined.count("\n") != len(present)  # one "\n" before each cell, none inside
    return text, line_breaks or any(c in joined for c in QUOTE_TRIGGERS if c != "\n")


def _quoted(text: np.ndarray) -> np.ndarray:
    """Cells as the csv module writes them (it decides which to quote), each distinct cell written once."""
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")

    def one(cell: str) -> str:
        if not any(t in cell for t in QUOTE_TRIGGERS):
            return cell
        buf.seek(0)
        buf.truncate()
        writer.writerow([cell])
        return buf.getvalue()[:-1]

    codes, distinct = pd.factorize(text)
    return np.array([one(c) for c in distinct], dtype=object)[codes]


def _plain_csv(df: pd.DataFrame, float_format: str | None = FLOAT_FORMAT) -> str | None:
    """The CSV text of a table of plain columns, written column by column; None for any other table."""
    if len(df.columns) < 2 or not all(isinstance(c, str) for c in df.columns):
        return None  # a lone empty cell is written as "", labels that are not text are formatted: pandas does it
    columns = []
    for _, col in df.items():
        cells = _cells(col, float_format)
        if cells is None:
            return None
        text, may_need_quotes = cells
        columns.append(_quoted(text) if may_need_quotes else text)
    header = io.StringIO()
    csv.writer(header, lineterminator="\n").writerow(list(df.columns))
    body = "\n".join(map(",".join, zip(*columns)))
    return header.getvalue() + (body + "\n" if len(df) else "")


def csv_bytes(df: pd.DataFrame, columns: list[str] | None = None, float_format: str | None = FLOAT_FORMAT) -> bytes:
    """``df`` as UTF-8 CSV (``\\n`` line ends, 10 significant digits, or every digit of each number with
    ``float_format=None``), text cells neutralised; an empty frame still gets its header (``columns``)."""
    if columns is not None:
        df = df.reindex(columns=columns)
    text = _plain_csv(df, float_format)
    if text is None:
        out = df.copy()
        for c in out.columns:
            if out[c].dtype == object or pd.api.types.is_string_dtype(out[c]):
                out[c] = out[c].map(neutralise)
        buf = io.StringIO()
        out.to_csv(buf, index=False, float_format=float_format, lineterminator="\n")
        text = buf.getvalue()
    return text.encode("utf-8")


__all__ = ["csv_bytes", "neutralise"]

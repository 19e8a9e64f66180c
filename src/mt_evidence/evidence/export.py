"""Tables written for other programs (CSV): full precision, one line ending, and no spreadsheet formulas.

A text cell that starts with ``=``, ``+``, ``-``, ``@``, a tab or a carriage return is read by Excel, LibreOffice
and Google Sheets as a formula ("CSV injection"). Evidence files are data from many hands, so every exported text
cell that starts so is written with a leading apostrophe (OWASP's advice), which spreadsheets show as text.
Numeric columns are not touched.
"""

from __future__ import annotations

import io

import pandas as pd

FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def neutralise(value):
    """``value`` with a leading apostrophe when it is text a spreadsheet would run as a formula."""
    if isinstance(value, str) and value.startswith(FORMULA_START):
        return "'" + value
    return value


def csv_bytes(df: pd.DataFrame, columns: list[str] | None = None, float_format: str | None = "%.10g") -> bytes:
    """``df`` as UTF-8 CSV (``\\n`` line ends, 10 significant digits, or every digit of each number with
    ``float_format=None``), text cells neutralised; an empty frame still gets its header (``columns``)."""
    if columns is not None:
        df = df.reindex(columns=columns)
    out = df.copy()
    for c in out.columns:
        if out[c].dtype == object or pd.api.types.is_string_dtype(out[c]):
            out[c] = out[c].map(neutralise)
    buf = io.StringIO()
    out.to_csv(buf, index=False, float_format=float_format, lineterminator="\n")
    return buf.getvalue().encode("utf-8")


__all__ = ["csv_bytes", "neutralise"]

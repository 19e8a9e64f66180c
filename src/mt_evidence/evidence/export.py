"""Tables written for other programs (CSV): full precision, one line ending, and no spreadsheet formulas.

A text cell that starts with ``=``, ``+``, ``-``, ``@``, a tab or a carriage return is read by Excel, LibreOffice
and Google Sheets as a formula ("CSV injection"). Evidence files are data from many hands, so every exported text
cell that starts so is written with a leading apostrophe (OWASP's advice), which spreadsheets show as text.
Numeric columns are not touched.
"""

from __future__ import annotations

import io

import numpy as np
import pandas as pd

FORMULA_START = ("=", "+", "-", "@", "\t", "\r")
FLOAT_FORMAT = "%.10g"  # 10 significant digits


def neutralise(value):
    """``value`` with a leading apostrophe when it is text a spreadsheet would run as a formula."""
    if isinstance(value, str) and value.startswith(FORMULA_START):
        return "'" + value
    return value


def _neutralised(values: np.ndarray) -> np.ndarray | None:
    """``neutralise`` of each value, or None when no value needs it (one search over the joined column, cells
    one by one only when it finds something)."""
    present = values[~pd.isna(values)]
    try:
        joined = "\n" + "\n".join(present)
    except TypeError:  # not all text (e.g. numbers in an object column)
        joined = "\n="
    if not any("\n" + c in joined for c in FORMULA_START):
        return None
    return np.array([neutralise(v) for v in values], dtype=object)


def _float_text(values: np.ndarray) -> np.ndarray:
    """Floats written as ``to_csv(float_format=FLOAT_FORMAT)`` writes them (empty where missing), in one pass."""
    out = np.array([FLOAT_FORMAT % v for v in values.tolist()], dtype=object)
    out[np.isnan(values)] = ""
    return out


def csv_bytes(df: pd.DataFrame, columns: list[str] | None = None) -> bytes:
    """``df`` as UTF-8 CSV (``\\n`` line ends, 10 significant digits), text cells neutralised; an empty frame
    still gets its header (``columns``)."""
    if columns is not None:
        df = df.reindex(columns=columns)
    out = df.copy()
    for i, (_, col) in enumerate(out.items()):
        if isinstance(col.dtype, np.dtype) and col.dtype.kind == "f":
            out.isetitem(i, _float_text(col.to_numpy()))
        elif col.dtype == object or pd.api.types.is_string_dtype(col):
            text = _neutralised(col.to_numpy(object))
            if text is not None:
                out.isetitem(i, text)
    buf = io.StringIO()
    out.to_csv(buf, index=False, float_format=FLOAT_FORMAT, lineterminator="\n")
    return buf.getvalue().encode("utf-8")


__all__ = ["csv_bytes", "neutralise"]

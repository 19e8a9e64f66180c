"""Write the robustness checks of one analysis (:func:`mt_evidence.synthesis.robustness.robustness`) to a folder:
``summary.txt`` (every result as printed, with its conventions, and every check that did not run with the reason),
one CSV per table (leave-one-out, influence, Baujat, cumulative, permutation; GOSH with each subset's membership
when there are at most :data:`GOSH_CSV_MAX` subsets) and the figures (GOSH, Baujat, cumulative) as PNG.

The folder is written all or nothing and replaced only when this command wrote it (or it is new or empty), as
every other output of the package.
"""

from __future__ import annotations

import io
from pathlib import Path

from ..evidence import atomic
from ..evidence.export import csv_bytes
from ..synthesis.robustness import Robustness
from . import plots as P

__all__ = ["write_robustness", "WRITER", "GOSH_CSV_MAX"]

WRITER = "robustness"
#: GOSH tables up to this many subsets are written as CSV (k = 16: 65,535); beyond, the figure and the summary only
GOSH_CSV_MAX = 65_535


def _png(fig, dpi: int) -> bytes:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=dpi, bbox_inches="tight", metadata={"Software": None})
    return buf.getvalue()


def write_robustness(result: Robustness, out_dir: str | Path, *, protected=(), dpi: int = 200,
                     xlabel: str = "Estimate") -> dict[str, int]:
    """Write every table, the printed results and the figures of ``result`` to ``out_dir`` (all or nothing); return
    the files written with their size in bytes. ``xlabel`` names the effect measure on the figures' axes."""
    import matplotlib.pyplot as plt

    files: dict[str, bytes] = {"summary.txt": result.summary_text().encode("utf-8")}
    for stem, table in result.tables().items():
        files[f"{stem}.csv"] = csv_bytes(table, float_format=None)
    if result.gosh is not None and result.gosh.n_subsets <= GOSH_CSV_MAX:
        files["gosh.csv"] = csv_bytes(result.gosh.to_frame(), float_format=None)
    draws = []
    if result.gosh is not None:
        draws.append(("gosh.png", lambda: P.plot_gosh(result.gosh, xlabel=xlabel, title=f"GOSH: {result.title}")))
    if result.baujat is not None:
        draws.append(("baujat.png", lambda: P.plot_baujat(result.baujat, title=f"Baujat: {result.title}")))
    if result.cumulative is not None:
        draws.append(("cumulative.png", lambda: P.plot_cumulative(result.cumulative, xlabel=xlabel,
                                                                  title=f"Cumulative by year: {result.title}")))
    for name, draw in draws:
        fig = draw().figure
        try:
            files[name] = _png(fig, dpi)
        finally:
            plt.close(fig)
    atomic.replace_owned_folder(out_dir, files, WRITER, protected=protected)
    return {name: len(data) for name, data in files.items()}

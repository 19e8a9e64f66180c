"""The specification curve of a multiverse analysis (docs/methods.md section 19).

:func:`specification_frame` orders one analysis's specifications by their estimate (a tidy frame a test can
check); :func:`plot_specification_curve` draws it: above, each specification's estimate with its CI (the plan's
own analysis marked), the line of no effect and the important difference; below, which value of every choice each
specification used. matplotlib is imported only when drawing.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from ..synthesis.multiverse import CHOICES
from .plots import literal_text

__all__ = ["specification_frame", "plot_specification_curve"]


def specification_frame(specs: pd.DataFrame) -> pd.DataFrame:
    """One analysis's specifications with at least one trial, ordered by estimate (ties: by k, then plan
    first), with ``rank`` 0..n-1."""
    s = specs[specs["k"] > 0].copy()
    s["_plan"] = ~s["plan"].astype(bool)
    s = s.sort_values(["estimate", "k", "_plan"], kind="mergesort").drop(columns="_plan").reset_index(drop=True)
    s["rank"] = np.arange(len(s))
    return s


@literal_text
def plot_specification_curve(specs: pd.DataFrame, *, fig=None, threshold: float | None = None,
                             xlabel: str = "Specifications, ordered by estimate",
                             ylabel: str = "Mean difference (points on 0-100)", title: str | None = None):
    """Draw the specification curve of one analysis (the rows of ``MultiverseResult.of(...)``); returns the
    Figure. Negative favours the first-named care."""
    import matplotlib.pyplot as plt

    fr = specification_frame(specs)
    if fr.empty:
        raise ValueError("no specification has a trial: nothing to draw")
    choices = [c for c in CHOICES if fr[c].nunique() > 1]
    labels = [(c, v) for c in choices for v in sorted(fr[c].unique(), key=str)]
    if fig is None:
        fig = plt.figure(figsize=(8, 3 + 0.18 * len(labels)))
    top, bottom = fig.subplots(2, 1, sharex=True, gridspec_kw={"height_ratios": [3, max(1, 0.25 * len(labels))]})
    x = fr["rank"].to_numpy(float)
    same = fr["category"] == fr.loc[fr["plan"], "category"].iloc[0] if fr["plan"].any() else np.ones(len(fr), bool)
    colours = np.where(same, "#1f4e79", "#b35806")
    top.vlines(x, fr["ci_low"], fr["ci_high"], colors=colours, lw=0.6, alpha=0.5)
    top.scatter(x, fr["estimate"], c=colours, s=6, zorder=3)
    if fr["plan"].any():
        p = fr[fr["plan"]].iloc[0]
        top.scatter([p["rank"]], [p["estimate"]], s=60, facecolors="none", edgecolors="black", zorder=4,
                    label="the analysis as reported")
        top.legend(loc="best", fontsize=7, frameon=False)
    top.axhline(0, color="black", lw=0.8)
    if threshold is not None and np.isfinite(threshold):
        for t in (-threshold, threshold):
            top.axhline(t, color="grey", lw=0.8, ls="--")
    top.set_ylabel(ylabel, fontsize=8)
    if title:
        top.set_title(title, fontsize=9)
    for row, (c, v) in enumerate(labels):
        used = fr[c].to_numpy(object) == v
        bottom.scatter(x[used], np.full(used.sum(), row), s=4, color="black", marker="|")
    bottom.set_yticks(range(len(labels)))
    bottom.set_yticklabels([f"{c}: {v}" for c, v in labels], fontsize=6)
    bottom.set_ylim(len(labels) - 0.5, -0.5)
    bottom.set_xlabel(xlabel, fontsize=8)
    fig.tight_layout()
    return fig

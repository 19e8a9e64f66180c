"""Figures: forest plots (single and short-vs-long side by side), contour-enhanced funnel plots, the
risk-of-bias traffic light, and the robustness plots (GOSH, Baujat, cumulative forest). matplotlib is imported here
only, when a plot is drawn.

Every plot is drawn from a tidy frame built by a pure function (``forest_frame``, ``short_long_frame``,
``funnel_frame``, ``rob_frame``, ``gosh_frame``, ``baujat_frame``, ``cumulative_frame``) that tests can check;
plot functions take ``ax=None`` (or ``fig``) and return what they drew on.
"""

from __future__ import annotations

import io
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd
from scipy import stats

from ..evidence import atomic
from ..stats.pooling import PoolResult

ROB_COLOURS = {"low": "#2ca02c", "some_concerns": "#ffbf00", "unclear": "#ffbf00", "high": "#d62728",
               "not assessed": "#c7c7c7"}
ROB_SYMBOLS = {"low": "+", "some_concerns": "?", "unclear": "?", "high": "-", "not assessed": ""}


def literal_text(func):
    """Draw every string literally: data text such as '$\\cmd$' must never be parsed as mathtext (it would
    raise, or show something else). Text objects keep the setting they were created with."""
    import functools

    @functools.wraps(func)
    def wrapper(*args, **kwargs):
        import matplotlib

        with matplotlib.rc_context({"text.parse_math": False}):
            return func(*args, **kwargs)

    return wrapper



def _fmt_ci(est: float, lo: float, hi: float, digits: int = 1) -> str:
    return f"{est:.{digits}f} [{lo:.{digits}f}, {hi:.{digits}f}]"


# ------------------------------------------------------------------------------------------ tidy frames


def forest_frame(result: PoolResult, *, info: pd.DataFrame | None = None, level: float | None = None,
                 digits: int = 1) -> pd.DataFrame:
    """Rows of a forest plot: one per study (in the result's order), then the pooled row and the prediction
    interval row. ``info`` (indexed by study label) may add columns ``n1``, ``n2``, ``rob_overall``.
    Duplicate labels are kept (each study is its own row).
    """
    level = level or result.level
    z = stats.norm.ppf(1 - (1 - level) / 2)
    st = result.study_frame()
    rows = []
    for i, r in st.iterrows():
        lo, hi = r["yi"] - z * r["se"], r["yi"] + z * r["se"]
        extra = {}
        if info is not None and r["study"] in info.index:
            rec = info.loc[r["study"]]
            if isinstance(rec, pd.DataFrame):
                rec = rec.iloc[min(i, len(rec) - 1)]
            extra = {k: rec.get(k) for k in ("n1", "n2", "rob_overall") if k in rec}
        rows.append({"row_type": "study", "label": r["study"], "estimate": r["yi"], "ci_low": lo, "ci_high": hi,
                     "weight": r["weight"], "text": _fmt_ci(r["yi"], lo, hi, digits), **extra})
    model = "Common-effect" if result.method == "FE" else "Random-effects"
    rows.append({"row_type": "pooled", "label": f"{model} model ({result.method}, {result.test_used})",
                 "estimate": result.estimate, "ci_low": result.ci_low, "ci_high": result.ci_high, "weight": 100.0,
                 "text": _fmt_ci(result.estimate, result.ci_low, result.ci_high, digits)})
    if result.method != "FE" and result.k >= 3:
        rows.append({"row_type": "prediction", "label": "Prediction interval", "estimate": result.estimate,
                     "ci_low": result.pi_low, "ci_high": result.pi_high, "weight": np.nan,
                     "text": f"[{result.pi_low:.{digits}f}, {result.pi_high:.{digits}f}]"})
    df = pd.DataFrame(rows)
    for c in ("n1", "n2", "rob_overall"):
        if c not in df:
            df[c] = np.nan if c != "rob_overall" else None
    return df


def forest_frame_subgroups(sub, *, info: pd.DataFrame | None = None, digits: int = 1) -> pd.DataFrame:
    """Rows of a subgrouped forest plot: for each subgroup a header, its studies and its pooled row; then the
    overall pooled row and prediction interval. ``sub`` is a :class:`~mt_evidence.stats.subgroups.SubgroupResult`."""
    parts = []
    for name, res in sub.groups.items():
        parts.append(pd.DataFrame([{"row_type": "header", "label": str(name).replace("_", " "), "estimate": np.nan,
                                    "ci_low": np.nan, "ci_high": np.nan, "weight": np.nan, "text": ""}]))
        fr = forest_frame(res, info=info, digits=digits)
        fr = fr[fr["row_type"] != "prediction"].copy()
        fr.loc[fr["row_type"] == "pooled", "label"] = (
            f"Subgroup ({res.k} trial{'s' if res.k != 1 else ''}" + (f", I² = {res.i2:.0f}%)" if res.k > 1 else ")"))
        fr.loc[fr["row_type"] == "pooled", "row_type"] = "subgroup"
        parts.append(fr)
    overall = forest_frame(sub.overall, info=info, digits=digits)
    overall = overall[overall["row_type"] != "study"]
    parts.append(overall)
    out = pd.concat(parts, ignore_index=True)
    for c in ("n1", "n2", "rob_overall"):
        if c not in out:
            out[c] = np.nan
    return out


def subgroup_test_text(sub) -> str:
    tc = sub.test_common
    stat = "F" if sub.conventions.test in ("t", "hksj") else "QM"
    return (f"Test for subgroup differences: separate tau², Q = {sub.q_between:.2f}, df = {sub.q_between_df:g}, "
            f"{_p(sub.q_between_p)}; common tau², {stat} = {tc['stat']:.2f}, {_p(tc['p'])}. "
            "Weights are within each subgroup.")


def heterogeneity_text(result: PoolResult) -> str:
    if result.k < 2:
        return "Heterogeneity: not applicable (one trial)"
    return (f"Heterogeneity: tau² = {result.tau2:.2f}; I² = {result.i2:.0f}%; "
            f"Q = {result.q:.2f}, df = {result.q_df:g}, {_p(result.q_p)}")


def _p(p: float) -> str:
    """'p = 0.123' or 'p < 0.001'."""
    if not np.isfinite(p):
        return "p = NA"
    return "p < 0.001" if p < 0.001 else f"p = {p:.3f}"


# ----------------------------------------------------------------------------------------------- drawing


def _plt():
    import matplotlib

    if matplotlib.get_backend().lower() not in ("agg", "pdf", "svg", "module://matplotlib_inline.backend_inline"):
        try:
            matplotlib.use("Agg", force=False)
        except Exception:  # pragma: no cover
            pass
    import matplotlib.pyplot as plt

    return plt


def _draw_rows(ax, frame: pd.DataFrame, ypos: np.ndarray, *, colour: str = "black", max_marker: float = 14.0):
    from matplotlib.patches import Polygon

    w = frame["weight"].to_numpy(float)
    wmax = np.nanmax(w[frame["row_type"].to_numpy() == "study"]) if (frame["row_type"] == "study").any() else 1.0
    for (_, r), y in zip(frame.iterrows(), ypos):
        if r["row_type"] == "study":
            ax.plot([r["ci_low"], r["ci_high"]], [y, y], color=colour, lw=1.0, solid_capstyle="butt")
            size = 4 + (max_marker - 4) * np.sqrt(max(r["weight"], 0) / wmax) if wmax > 0 else 6
            ax.plot([r["estimate"]], [y], marker="s", ms=size, color=colour, mec=colour, ls="none")
        elif r["row_type"] in ("pooled", "subgroup"):
            h = 0.32 if r["row_type"] == "pooled" else 0.24
            face = colour if r["row_type"] == "pooled" else "white"
            diamond = Polygon([[r["ci_low"], y], [r["estimate"], y + h], [r["ci_high"], y], [r["estimate"], y - h]],
                              closed=True, facecolor=face, edgecolor=colour)
            ax.add_patch(diamond)
        elif r["row_type"] == "prediction":
            ax.plot([r["ci_low"], r["ci_high"]], [y, y], color=colour, lw=1.2, ls=(0, (2, 2)))
            ax.plot([r["ci_low"], r["ci_low"]], [y - 0.15, y + 0.15], color=colour, lw=1.2)
            ax.plot([r["ci_high"], r["ci_high"]], [y - 0.15, y + 0.15], color=colour, lw=1.2)


def _wrap(label: str, width: int = 34) -> str:
    import textwrap

    return "\n".join(textwrap.wrap(str(label), width)) or str(label)


@literal_text
def plot_forest(result: PoolResult, ax=None, *, info: pd.DataFrame | None = None, xlabel: str = "Mean difference",
                favours: tuple[str, str] = ("first", "second"), mid: float | None = None, title: str | None = None,
                subgroup_text: str | None = None, digits: int = 1, _frame: pd.DataFrame | None = None):
    """A forest plot of one pooled result, with columns: trial, n per arm, estimate [CI], weight, risk of bias.

    ``favours`` names the care favoured left and right of zero; ``mid`` draws the important
    difference between groups at +/- mid. Returns the Axes holding the plot.
    """
    plt = _plt()
    frame = forest_frame(result, info=info, digits=digits) if _frame is None else _frame
    n = len(frame)
    if ax is None:
        fig = plt.figure(figsize=(11, 1.2 + 0.42 * (n + 3)))
        ax = fig.add_axes([0.42, 0.16, 0.30, 0.72])
    fig = ax.figure
    ypos = np.arange(n, 0, -1, dtype=float)
    _draw_rows(ax, frame, ypos)
    _decorate(ax, frame, ypos, xlabel=xlabel, favours=favours, mid=mid)
    trans = ax.get_yaxis_transform()  # x in axes coordinates, y in data
    has_n = frame["n1"].notna().any()
    has_rob = frame["rob_overall"].notna().any()
    cols = [(-1.35, "Trial", "left")]
    if has_n:
        cols += [(-0.28, "n (1)", "right"), (-0.08, "n (2)", "right")]
    cols += [(1.04, "Estimate [95% CI]", "left"), (1.62, "Weight", "right")]
    if has_rob:
        cols += [(1.80, "RoB", "center")]
    top = n + 0.9
    for x, head, ha in cols:
        ax.text(x, top, head, transform=trans, ha=ha, va="bottom", fontsize=9, fontweight="bold", clip_on=False)
    for (_, r), y in zip(frame.iterrows(), ypos):
        bold = "bold" if r["row_type"] in ("pooled", "header") else "normal"
        style = "italic" if r["row_type"] in ("header", "subgroup") else "normal"
        ax.text(-1.35, y, _wrap(r["label"], 40), transform=trans, ha="left", va="center", fontsize=8.5,
                fontweight=bold, fontstyle=style, clip_on=False)
        if has_n and r["row_type"] == "study":
            for x, key in ((-0.28, "n1"), (-0.08, "n2")):
                v = r[key]
                ax.text(x, y, "" if pd.isna(v) else f"{v:.0f}", transform=trans, ha="right", va="center",
                        fontsize=8.5, clip_on=False)
        ax.text(1.04, y, r["text"], transform=trans, ha="left", va="center", fontsize=8.5, fontweight=bold,
                clip_on=False)
        if r["row_type"] in ("study", "pooled") and np.isfinite(r["weight"]) and r["row_type"] != "subgroup":
            ax.text(1.62, y, f"{r['weight']:.1f}%", transform=trans, ha="right", va="center", fontsize=8.5,
                    clip_on=False)
        if has_rob and r["row_type"] == "study":
            j = r["rob_overall"] if isinstance(r["rob_overall"], str) else "not assessed"
            ax.scatter([1.80], [y], s=90, color=ROB_COLOURS.get(j, "#c7c7c7"), transform=trans, clip_on=False,
                       zorder=3, edgecolor="black", linewidth=0.4)
            ax.text(1.80, y, ROB_SYMBOLS.get(j, ""), transform=trans, ha="center", va="center", fontsize=8,
                    clip_on=False, zorder=4)
    lines = [heterogeneity_text(result)]
    lines.append(f"Test for overall effect: {'t' if result.test_used in ('t', 'hksj') else 'z'} = "
                 f"{result.stat:.2f}, {_p(result.p)}")
    if subgroup_text:
        lines.append(subgroup_text)
    if has_rob:
        lines.append("RoB: risk of bias (overall; published, else this review's own RoB 2); grey = not assessed")
    ax.text(-1.35, -0.9, "\n".join(lines), transform=trans, ha="left", va="top", fontsize=8, clip_on=False)
    if title:
        ax.set_title(title, loc="left", x=-1.35, fontsize=11, fontweight="bold", pad=22)
    ax.set_ylim(-0.2, n + 0.8)
    return ax


def _decorate(ax, frame: pd.DataFrame, ypos: np.ndarray, *, xlabel: str, favours: tuple[str, str],
              mid: float | None, xlim: tuple[float, float] | None = None):
    lo = np.nanmin(frame["ci_low"].to_numpy(float))
    hi = np.nanmax(frame["ci_high"].to_numpy(float))
    span = max(abs(lo), abs(hi), (mid or 0) * 1.2, 1e-9)
    if xlim is None:
        xlim = (-span * 1.1, span * 1.1)
    ax.set_xlim(*xlim)
    ax.axvline(0, color="black", lw=0.8)
    if mid:
        for m in (-mid, mid):
            ax.axvline(m, color="#7f7f7f", lw=0.8, ls=(0, (4, 3)))
        ax.text(-mid, ypos.max() + 0.55, f"important difference {mid:g}", ha="center", va="bottom", fontsize=7,
                color="#555555")
    ax.set_yticks([])
    for side in ("left", "right", "top"):
        ax.spines[side].set_visible(False)
    ax.set_xlabel(xlabel, fontsize=9)
    ax.tick_params(axis="x", labelsize=8)
    xt = ax.get_xaxis_transform()  # x in data, y in axes coordinates
    ax.annotate(f"\u2190 Favours {favours[0]}", xy=(0, 0), xycoords=xt, xytext=(-4, -34),
                textcoords="offset points", ha="right", va="top", fontsize=8)
    ax.annotate(f"Favours {favours[1]} \u2192", xy=(0, 0), xycoords=xt, xytext=(4, -34),
                textcoords="offset points", ha="left", va="top", fontsize=8)


@literal_text
def plot_forest_subgroups(sub, ax=None, *, info: pd.DataFrame | None = None, xlabel: str = "Mean difference",
                          favours: tuple[str, str] = ("first", "second"), mid: float | None = None,
                          title: str | None = None, digits: int = 1):
    """Forest plot with subgroups (e.g. by control type): per-subgroup diamonds (open), the overall diamond,
    the prediction interval and the test for subgroup differences (separate and common tau^2)."""
    frame = forest_frame_subgroups(sub, info=info, digits=digits)
    return plot_forest(sub.overall, ax, info=info, xlabel=xlabel, favours=favours, mid=mid, title=title,
                       subgroup_text=subgroup_test_text(sub), digits=digits, _frame=frame)


def short_long_frame(short: PoolResult | None, long: PoolResult | None, digits: int = 1,
                     info: dict | None = None) -> pd.DataFrame:
    """Rows for the side-by-side figure: the union of trials, in order, with each window's estimate, CI, weight,
    text and (from ``info``: {"short": frame, "long": frame} indexed by study label) participants per arm."""
    frames = {}
    for name, res in (("short", short), ("long", long)):
        if res is not None:
            frames[name] = forest_frame(res, digits=digits, info=(info or {}).get(name))
    trials: list[str] = []
    for f in frames.values():
        for lab in f.loc[f["row_type"] == "study", "label"]:
            if lab not in trials:
                trials.append(lab)
    rows = []
    for lab in trials:
        row = {"row_type": "study", "label": lab}
        for name, f in frames.items():
            m = f[(f["row_type"] == "study") & (f["label"] == lab)]
            for c in ("estimate", "ci_low", "ci_high", "weight", "text", "n1", "n2"):
                row[f"{name}_{c}"] = m[c].iloc[0] if len(m) else np.nan
        rows.append(row)
    for rt in ("pooled", "prediction"):
        row = {"row_type": rt, "label": "Pooled (random effects)" if rt == "pooled" else "Prediction interval"}
        for name, f in frames.items():
            m = f[f["row_type"] == rt]
            for c in ("estimate", "ci_low", "ci_high", "weight", "text"):
                row[f"{name}_{c}"] = m[c].iloc[0] if len(m) else np.nan
        rows.append(row)
    return pd.DataFrame(rows)


@literal_text
def plot_short_long(short: PoolResult | None, long: PoolResult | None, *, fig=None, xlabel: str = "Mean difference",
                    favours: tuple[str, str] = ("first", "second"), mid: float | None = None,
                    title: str | None = None, change_text: str | None = None,
                    labels: tuple[str, str] = ("Short term (up to 3 months)", "Long term (12 months or more)"),
                    info: dict | None = None):
    """The signature figure: short and long term side by side on a shared axis, one row per trial, each panel
    with the estimate and CI, the weight and (with ``info``) participants per arm, as metafor and RevMan show.

    Returns the Figure. ``change_text`` (e.g. the within-trial change from :func:`analysis.short_vs_long`)
    is printed under the panels. ``info``: {"short": frame, "long": frame} indexed by study label with ``n1``,
    ``n2``.
    """
    plt = _plt()
    frame = short_long_frame(short, long, info=info)
    n = len(frame)
    if fig is None:
        fig = plt.figure(figsize=(14, 2.6 + 0.42 * (n + 3)))
    h_in = fig.get_size_inches()[1]
    bottom = min(0.45, 1.5 / h_in)  # room for the axis, the favours labels and the change text
    top = 1 - min(0.32, 1.05 / h_in)
    axes = [fig.add_axes([0.17, bottom, 0.21, top - bottom]), fig.add_axes([0.57, bottom, 0.21, top - bottom])]
    ypos = np.arange(n, 0, -1, dtype=float)
    allx = np.concatenate([frame[[c for c in frame.columns if c.endswith(("_ci_low", "_ci_high"))]].to_numpy(float).ravel()])
    span = max(np.nanmax(np.abs(allx)) if np.isfinite(allx).any() else 1.0, (mid or 0) * 1.2)
    xlim = (-span * 1.1, span * 1.1)
    for ax, name, head, res in zip(axes, ("short", "long"), labels, (short, long)):
        sub = pd.DataFrame({
            "row_type": frame["row_type"], "label": frame["label"], "estimate": frame.get(f"{name}_estimate"),
            "ci_low": frame.get(f"{name}_ci_low"), "ci_high": frame.get(f"{name}_ci_high"),
            "weight": frame.get(f"{name}_weight"),
        }) if f"{name}_estimate" in frame else None
        if sub is not None:
            keep = sub["estimate"].notna().to_numpy()
            _draw_rows(ax, sub[keep], ypos[keep], colour="#1f4e79" if name == "short" else "#7b2d26")
            tr = ax.get_yaxis_transform()
            for x, col in ((1.03, "MD [95% CI]"), (1.50, "Weight"), (1.70, "n (arms)")):
                ax.text(x, n + 1.0, col, transform=tr, ha="left", va="center", fontsize=7.5, fontweight="bold",
                        clip_on=False)
            for (_, r), y in zip(frame.iterrows(), ypos):
                t = r.get(f"{name}_text")
                bold = "bold" if r["row_type"] == "pooled" else "normal"
                if isinstance(t, str):
                    ax.text(1.03, y, t, transform=tr, ha="left", va="center", fontsize=7.5, fontweight=bold,
                            clip_on=False)
                w = r.get(f"{name}_weight")
                if r["row_type"] in ("study", "pooled") and isinstance(t, str) and w == w:
                    ax.text(1.50, y, f"{w:.0f}%", transform=tr, ha="left", va="center", fontsize=7.5,
                            fontweight=bold, clip_on=False)
                n1, n2 = r.get(f"{name}_n1"), r.get(f"{name}_n2")
                if r["row_type"] == "study" and isinstance(t, str) and n1 == n1 and n2 == n2 and n1 is not None:
                    ax.text(1.70, y, f"{n1:.0f}/{n2:.0f}", transform=tr, ha="left", va="center", fontsize=7.5,
                            clip_on=False)
        else:
            ax.text(0.5, 0.5, "no trials", transform=ax.transAxes, ha="center")
        _decorate(ax, pd.DataFrame({"ci_low": [xlim[0]], "ci_high": [xlim[1]]}), ypos, xlabel=xlabel,
                  favours=favours, mid=mid, xlim=xlim)
        k = 0 if res is None else res.k
        ax.set_title(f"{head}\n{k} trial(s)" + ("" if res is None or k < 2 else f", I² = {res.i2:.0f}%"),
                     fontsize=9.5)
        ax.set_ylim(-0.2, n + 1.3)
    trans = axes[0].get_yaxis_transform()
    for (_, r), y in zip(frame.iterrows(), ypos):
        bold = "bold" if r["row_type"] == "pooled" else "normal"
        axes[0].text(-0.76, y, _wrap(r["label"], 26), transform=trans, ha="left", va="center", fontsize=8.5,
                     fontweight=bold, clip_on=False)
    axes[0].text(-0.76, n + 1.0, "Trial",
                 transform=trans, ha="left", va="center", fontsize=7.5, fontweight="bold", clip_on=False)
    if title:
        fig.suptitle(title, x=0.02, ha="left", fontsize=12, fontweight="bold")
    if change_text:
        fig.text(0.02, 0.015, _wrap(change_text, 170), ha="left", va="bottom", fontsize=8.5)
    return fig


# ------------------------------------------------------------------------------------------------ funnel


def funnel_frame(result: PoolResult, levels: Sequence[float] = (0.90, 0.95, 0.99)) -> pd.DataFrame:
    """Points of a contour-enhanced funnel plot (study yi against se) and the contour half-widths."""
    st = result.study_frame()
    return st[["study", "yi", "se"]].assign(
        **{f"z{int(lv * 100)}": stats.norm.ppf(1 - (1 - lv) / 2) for lv in levels}
    )


@literal_text
def plot_funnel(result: PoolResult, ax=None, *, levels: Sequence[float] = (0.90, 0.95, 0.99),
                xlabel: str = "Effect", centre: float = 0.0):
    """Contour-enhanced funnel plot (contours of significance around ``centre``, as metafor's
    ``funnel(refline=0, level=c(90, 95, 99), shade=...)``) with the pooled estimate line."""
    plt = _plt()
    fr = funnel_frame(result, levels)
    if ax is None:
        fig, ax = plt.subplots(figsize=(6.5, 5))
    se_max = max(fr["se"].max() * 1.15, 1e-9)
    se_grid = np.linspace(0, se_max, 100)
    shades = ["#ffffff", "#dcdcdc", "#a9a9a9", "#7f7f7f"]
    lv = sorted(levels)
    zs = [stats.norm.ppf(1 - (1 - v) / 2) for v in lv]
    xmax = max(np.abs(fr["yi"] - centre).max(), zs[-1] * se_max) * 1.1
    ax.fill_between([centre - xmax, centre + xmax], 0, se_max, color=shades[-1], lw=0)
    for z, colour in zip(reversed(zs), shades[-2::-1]):
        ax.fill_betweenx(se_grid, centre - z * se_grid, centre + z * se_grid, color=colour, lw=0)
    ax.scatter(fr["yi"], fr["se"], color="black", zorder=3, s=22)
    ax.axvline(result.estimate, color="black", lw=0.8, ls="--")
    ax.set_ylim(se_max, 0)
    ax.set_xlim(centre - xmax, centre + xmax)
    ax.set_ylabel("Standard error")
    ax.set_xlabel(xlabel)
    from matplotlib.patches import Patch

    handles = [Patch(facecolor=shades[0], edgecolor="grey", label=f"p > {1 - lv[0]:.2f}")]
    bounds = [1 - v for v in lv]
    for i in range(len(lv) - 1):
        handles.append(Patch(facecolor=shades[i + 1], label=f"{bounds[i + 1]:.2f} < p < {bounds[i]:.2f}"))
    handles.append(Patch(facecolor=shades[-1], label=f"p < {bounds[-1]:.2f}"))
    ax.legend(handles=handles, loc="lower right", fontsize=7, frameon=True)
    if result.k < 10:
        ax.set_title(f"{result.k} trials: too few to judge small-study effects (10 or more advised)", fontsize=8)
    return ax


# ------------------------------------------------------------------------------------------ risk of bias

ROB_DOMAINS = {
    "rob_randomisation": "Randomisation",
    "rob_deviations": "Deviations",
    "rob_missing": "Missing data",
    "rob_measurement": "Measurement",
    "rob_selection": "Selection of result",
    "rob_overall": "Overall",
}


def _short_domain(domain: str) -> str:
    d = str(domain)
    for cut in (" (", " All outcomes"):
        d = d.split(cut)[0]
    return d


ROB2_NAMES = {"randomisation": "Randomisation", "deviations": "Deviations", "missing": "Missing data",
              "measurement": "Measurement", "selection": "Selection of result"}


def rob_frame(studies: pd.DataFrame, rob: pd.DataFrame | None = None) -> pd.DataFrame:
    """Long table: trial x domain x judgement, with the source and basis of each judgement.

    The five RoB 2 domains come from the review's own assessment in ``rob`` (``basis = review_own``) or from the
    RoB 2 columns of ``studies`` (published); published RoB 1 domains in ``rob`` are added as their own columns.
    The "Overall" column is the judgement the analyses use (``rob_overall`` of ``studies``, filled at load from
    ``rob``; docs/methods.md section 17), with its basis. Where there is none the judgement is "not assessed".
    """
    rows = []
    domains: list[str] = list(ROB2_NAMES.values())
    have: dict[tuple, tuple] = {}
    if rob is not None and len(rob):
        basis = rob["basis"] if "basis" in rob else pd.Series([None] * len(rob), index=rob.index)
        for r, b in zip(rob.itertuples(), basis):
            own = b == "review_own"
            if own and r.domain == "overall":
                continue
            d = ROB2_NAMES.get(r.domain, r.domain) if own else _short_domain(r.domain)
            if d.lower() == "overall":
                continue
            if d not in domains:
                domains.append(d)
            have[(r.study_id, d)] = (r.judgement, r.source_url, r.tool, "review_own" if own else "published")
    for col, name in ROB_DOMAINS.items():
        if col in studies and col != "rob_overall":
            for st in studies.itertuples():
                v = getattr(st, col, None)
                if isinstance(v, str) and v:
                    have[(st.study_id, name)] = (v, getattr(st, "rob_source", "") or "",
                                                 getattr(st, "rob_tool", "") or "", "published")
    for st in studies.itertuples():
        v = getattr(st, "rob_overall", None)
        if isinstance(v, str) and v:
            b = getattr(st, "rob_basis", "") or "published"
            have[(st.study_id, "Overall")] = (v, getattr(st, "rob_source", "") or "", getattr(st, "rob_tool", "") or "", b)
    used = [d for d in domains if any(k[1] == d for k in have)]
    for sid in sorted(studies["study_id"]):
        for d in used + ["Overall"]:
            j, src, tool, b = have.get((sid, d), ("not assessed", "", "", ""))
            rows.append({"study_id": sid, "domain": d, "judgement": j, "source": src, "tool": tool, "basis": b})
    return pd.DataFrame(rows)


@literal_text
def plot_rob(studies: pd.DataFrame, rob: pd.DataFrame | None = None, ax=None):
    """Traffic-light plot of risk-of-bias judgements by domain: the review's own RoB 2 (two readers) and published
    judgements; an open marker where a judgement is published, grey where none was made."""
    plt = _plt()
    fr = rob_frame(studies, rob)
    trials = list(dict.fromkeys(fr["study_id"]))
    domains = list(dict.fromkeys(fr["domain"]))
    if ax is None:
        fig, ax = plt.subplots(figsize=(2.4 + 0.9 * len(domains), 1.6 + 0.3 * len(trials)))
    # one marker per trial and domain (rob_frame has each once), drawn as one collection
    row = {t: len(trials) - 1 - i for i, t in enumerate(trials)}
    col = {d: j for j, d in enumerate(domains)}
    x, y = fr["domain"].map(col).to_numpy(), fr["study_id"].map(row).to_numpy()
    ax.scatter(x, y, s=170, c=[ROB_COLOURS.get(jd, "#c7c7c7") for jd in fr["judgement"]], edgecolors="black",
               linewidths=np.where(fr["basis"].eq("published"), 1.6, 0.5))
    for xi, yi, jd in zip(x, y, fr["judgement"]):
        if ROB_SYMBOLS.get(jd):
            ax.text(xi, yi, ROB_SYMBOLS[jd], ha="center", va="center", fontsize=8)
    ax.set_yticks(range(len(trials)))
    ax.set_yticklabels(list(reversed(trials)), fontsize=7.5)
    ax.set_xticks(range(len(domains)))
    ax.set_xticklabels([_wrap(d, 18) for d in domains], rotation=35, ha="right", fontsize=7.5)
    ax.set_xlim(-0.6, len(domains) - 0.4)
    ax.set_ylim(-0.6, len(trials) - 0.4)
    for side in ("top", "right"):
        ax.spines[side].set_visible(False)
    judged = fr[fr["judgement"] != "not assessed"]["study_id"].nunique()
    ov = fr[fr["domain"].eq("Overall") & fr["judgement"].ne("not assessed")]
    n_pub, n_own = int(ov["basis"].eq("published").sum()), int(ov["basis"].eq("review_own").sum())
    ax.set_title(f"Risk of bias: {judged} of {len(trials)} trials with any judgement, {len(ov)} with an overall one "
                 f"({n_own} this review's own RoB 2 by two readers, {n_pub} published).\nGreen low, amber unclear or "
                 "some concerns, red high, grey not assessed; a thick ring marks a published judgement.",
                 fontsize=8.5, loc="left")
    return ax


# ------------------------------------------------------------------------------------------------ export


def save_figure(fig, stem: str | Path, formats: Sequence[str] = ("png", "svg", "pdf"), dpi: int = 300,
                alt: str | None = None) -> list[Path]:
    """Write ``stem.png`` (300 dpi), ``stem.svg`` and ``stem.pdf`` atomically; returns the paths.

    PNG and PDF metadata carry no creation date, so the same figure gives the same bytes.
    """
    stem = Path(stem)
    out = []
    for fmt in formats:
        buf = io.BytesIO()
        meta = {"png": {"Software": None}, "pdf": {"CreationDate": None, "Producer": None},
                "svg": {"Date": None}}.get(fmt, {})
        if alt and fmt == "png":
            meta = {**meta, "Description": alt}
        fig.savefig(buf, format=fmt, dpi=dpi, bbox_inches="tight", metadata=meta)
        path = stem.with_suffix(f".{fmt}")
        atomic.write_bytes(path, buf.getvalue())
        out.append(path)
    return out


# ------------------------------------------------------------------------------------------------ network


def _label(t: str, labels: dict | None) -> str:
    return (labels or {}).get(t, str(t).replace("_", " "))


def plot_network_graph(result, ax=None, *, labels: dict | None = None, title: str | None = None):
    """The network: one node per treatment (area by participants, or by studies when participants are not all
    known), one edge per directly compared pair (width by the number of studies, labelled with it)."""
    plt = _plt()
    nodes, edges = result.graph()
    if ax is None:
        fig = plt.figure(figsize=(6.5, 6.0))
        ax = fig.add_axes([0.05, 0.05, 0.9, 0.85])
    m = len(nodes)
    ang = np.pi / 2 - 2 * np.pi * np.arange(m) / m
    pos = {t: (np.cos(a), np.sin(a)) for t, a in zip(nodes["treatment"], ang)}
    for e in edges.itertuples():
        (x1, y1), (x2, y2) = pos[e.treat1], pos[e.treat2]
        ax.plot([x1, x2], [y1, y2], color="#4d4d4d", lw=1.2 + 1.6 * e.studies, zorder=1, solid_capstyle="round")
        ax.text((x1 + x2) / 2, (y1 + y2) / 2, str(e.studies), ha="center", va="center", fontsize=8,
                bbox=dict(boxstyle="round,pad=0.15", fc="white", ec="none"), zorder=2)
    use_n = bool(nodes["participants_known"].all()) and nodes["participants"].sum() > 0
    size = nodes["participants"] if use_n else nodes["studies"]
    area = 300 + 2200 * size / max(float(size.max()), 1.0)
    for (t, (x, y)), a, r in zip(pos.items(), area, nodes.itertuples()):
        ax.scatter([x], [y], s=a, color="#9ecae1", edgecolor="#08519c", zorder=3)
        extra = f"{r.studies} trial(s)" + (f", {r.participants:.0f} participants" if use_n else "")
        ax.text(1.38 * x, 1.30 * y + (0.08 if y > 0.5 else -0.08 if y < -0.5 else 0), f"{_label(t, labels)}\n{extra}",
                ha="center", va="center", fontsize=8.5)
    ax.set_xlim(-1.9, 1.9)
    ax.set_ylim(-1.65, 1.65)
    ax.set_aspect("equal")
    ax.axis("off")
    note = ("node area: participants" if use_n else "node area: trials (participants not known for every arm)")
    ax.text(0, -1.62, f"{note}; line width and number: trials comparing the two directly", ha="center",
            fontsize=7.5, color="#444444")
    if title:
        ax.set_title(title, fontsize=11, fontweight="bold")
    return ax


def plot_network_forest(result, ax=None, *, labels: dict | None = None, xlabel: str = "Mean difference",
                        mid: float | None = None, title: str | None = None, digits: int = 1):
    """Each treatment against the network's reference (estimate and 95% CI), with the important difference."""
    plt = _plt()
    eff = result.relative_effects
    eff = eff[eff["treatment"] != result.reference].reset_index(drop=True)
    n = len(eff)
    if ax is None:
        fig = plt.figure(figsize=(9, 1.6 + 0.45 * (n + 2)))
        ax = fig.add_axes([0.30, 0.22, 0.40, 0.62])
    y = np.arange(n, 0, -1, dtype=float)
    ax.errorbar(eff["estimate"], y, xerr=[eff["estimate"] - eff["ci_low"], eff["ci_high"] - eff["estimate"]],
                fmt="s", color="black", ecolor="black", capsize=3, markersize=6)
    ax.axvline(0, color="black", lw=0.8)
    if mid:
        for x in (-mid, mid):
            ax.axvline(x, color="#888888", lw=0.8, ls="--")
    trans = ax.get_yaxis_transform()
    for yy, r in zip(y, eff.itertuples()):
        ax.text(-0.04, yy, _label(r.treatment, labels), transform=trans, ha="right", va="center", fontsize=9)
        ax.text(1.04, yy, _fmt_ci(r.estimate, r.ci_low, r.ci_high, digits), transform=trans, ha="left",
                va="center", fontsize=9)
    ax.set_yticks([])
    ax.set_ylim(0.3, n + 0.7)
    ax.set_xlabel(xlabel)
    ax.text(1.04, n + 0.55, "Estimate [95% CI]", transform=trans, ha="left", va="bottom", fontsize=9,
            fontweight="bold")
    ax.text(0.0, -0.30, f"negative: better than {_label(result.reference, labels)}"
            + (f"; dashed: important difference ±{mid:g}" if mid else "")
            + f"\ntau² = {result.tau2:.2f} ({result.method}); {result.k} trials", transform=ax.transAxes,
            fontsize=8, va="top")
    if title:
        ax.set_title(title, loc="left", fontsize=11, fontweight="bold")
    return ax


def plot_league(result, ax=None, *, labels: dict | None = None, title: str | None = None, digits: int = 1,
                mid: float | None = None):
    """The league table as a heat map: the cell in row A, column B is A minus B with its CI, coloured by the
    estimate (blue: the row's care better, red: worse; pale when the CI includes 0)."""
    plt = _plt()
    order = list(result.treatments)
    m = len(order)
    if ax is None:
        fig = plt.figure(figsize=(1.9 * m + 1.5, 1.0 * m + 1.5))
        ax = fig.add_axes([0.12, 0.05, 0.85, 0.8])
    lim = max(float(np.nanmax(np.abs(result.pairs()[["estimate"]].to_numpy()))), mid or 1.0)
    cmap = plt.get_cmap("RdBu_r")
    for i, a in enumerate(order):
        for j, b in enumerate(order):
            if a == b:
                ax.add_patch(plt.Rectangle((j, m - 1 - i), 1, 1, fc="#f0f0f0", ec="white"))
                ax.text(j + 0.5, m - 0.5 - i, _wrap(_label(a, labels), 14), ha="center", va="center", fontsize=8,
                        fontweight="bold")
                continue
            e, s = result._effect(a, b)
            z = stats.norm.ppf(1 - (1 - result.level) / 2)
            lo, hi = e - z * s, e + z * s
            colour = cmap(0.5 + 0.5 * e / lim)
            alpha = 1.0 if (lo > 0 or hi < 0) else 0.35
            ax.add_patch(plt.Rectangle((j, m - 1 - i), 1, 1, fc=colour, alpha=alpha, ec="white"))
            dark = alpha == 1.0 and abs(e) / lim > 0.55
            ax.text(j + 0.5, m - 0.5 - i, f"{e:.{digits}f}\n({lo:.{digits}f} to {hi:.{digits}f})", ha="center",
                    va="center", fontsize=7, color="white" if dark else "black")
    ax.set_xlim(0, m)
    ax.set_ylim(0, m)
    ax.axis("off")
    ax.text(0, -0.25, "Cell: row minus column (95% CI); negative (blue) favours the row's care; pale: the CI "
            "includes 0.", fontsize=7.5, va="top")
    if title:
        ax.set_title(title, loc="left", fontsize=11, fontweight="bold")
    return ax


def plot_effects_over_time(by_window: dict, *, labels: dict | None = None, window_labels: dict | None = None,
                           reference: str = "usual_care", xlabel_y: str = "Difference (points on 0-100)",
                           mid: float | None = None, title: str | None = None):
    """Each treatment against ``reference`` in each window: estimate and 95% CI, joined across windows.
    ``by_window``: {window name: NetworkResult, a window of a NetworkTimeResult (``.at(window)``), or None}, in
    time order."""
    plt = _plt()
    fig, ax = plt.subplots(figsize=(8, 4.8))
    windows = list(by_window)
    treats = []
    for r in by_window.values():
        if r is not None and reference in r.treatments:
            treats += [t for t in r.treatments if t != reference and t not in treats]
    colours = plt.get_cmap("tab10")
    for k, t in enumerate(treats):
        xs, ys, lo, hi = [], [], [], []
        for i, w in enumerate(windows):
            r = by_window[w]
            if r is None or reference not in r.treatments or t not in r.treatments:
                continue
            e, s = r._effect(t, reference)
            z = stats.norm.ppf(1 - (1 - r.level) / 2)
            xs.append(i + (k - (len(treats) - 1) / 2) * 0.06)
            ys.append(e)
            lo.append(e - z * s)
            hi.append(e + z * s)
        if not xs:
            continue
        ys_a = np.array(ys)
        ax.errorbar(xs, ys, yerr=[ys_a - np.array(lo), np.array(hi) - ys_a], fmt="-o", color=colours(k % 10),
                    capsize=3, label=_label(t, labels))
    ax.axhline(0, color="black", lw=0.8)
    if mid:
        ax.axhline(-mid, color="#888888", ls="--", lw=0.8)
    ax.set_xticks(range(len(windows)))
    ax.set_xticklabels([(window_labels or {}).get(w, w) for w in windows], fontsize=8.5)
    ax.set_ylabel(xlabel_y)
    ax.legend(fontsize=8, frameon=False, loc="best")
    note = (f"against {_label(reference, labels)}; negative is better"
            + (f"; dashed: important difference ({mid:g})" if mid else "")
            + ". Each window is its own network (a trial may be in several).")
    fig.text(0.01, 0.01, note, fontsize=7.5)
    if title:
        ax.set_title(title, loc="left", fontsize=11, fontweight="bold")
    fig.subplots_adjust(bottom=0.2)
    return ax


#: Okabe-Ito, distinguishable with the common colour-vision deficiencies; markers differ as well
SAFE_COLOURS = ("#0072B2", "#D55E00", "#009E73", "#CC79A7", "#E69F00", "#56B4E9")
SAFE_MARKERS = ("o", "s", "D", "^", "v", "P")


def plot_glance(by_outcome: dict, windows: list[tuple[str, str, float]], *, mids: dict | None = None,
                labels: dict | None = None, treatments=("manual_therapy", "exercise", "combined"),
                reference: str = "usual_care", outcome_titles: dict | None = None):
    """Page one's figure: for each outcome, each care against ``reference`` by weeks since randomisation, with 95%
    CIs and the band of differences smaller than the important difference.

    ``by_outcome``: {outcome: {window name: NetworkResult, a window of a NetworkTimeResult, or None}};
    ``windows``: (name, label, target weeks)."""
    plt = _plt()
    outs = list(by_outcome)
    fig, axes = plt.subplots(1, len(outs), figsize=(5.2 * len(outs), 4.2), sharey=False, squeeze=False)
    targets = {n: t for n, _, t in windows}
    for ax, outcome in zip(axes[0], outs):
        mid = (mids or {}).get(outcome)
        if mid:
            ax.axhspan(-mid, mid, color="#eeeeee", zorder=0)
            ax.text(0.99, 0.02, f"within ±{mid:g}: smaller than the important difference", transform=ax.transAxes,
                    ha="right", va="bottom", fontsize=7, color="#555555")
        ax.axhline(0, color="black", lw=0.8)
        drawn = 0
        for k, t in enumerate(treatments):
            xs, ys, lo, hi = [], [], [], []
            for name, res in by_outcome[outcome].items():
                if res is None or t not in res.treatments or reference not in res.treatments:
                    continue
                e, s = res._effect(t, reference)
                z = stats.norm.ppf(1 - (1 - res.level) / 2)
                xs.append(targets[name] * (1 + 0.04 * (k - 1)))
                ys.append(e)
                lo.append(e - z * s)
                hi.append(e + z * s)
            if not xs:
                continue
            drawn += 1
            y = np.array(ys)
            ax.errorbar(xs, ys, yerr=[y - np.array(lo), np.array(hi) - y], fmt="-", marker=SAFE_MARKERS[k],
                        color=SAFE_COLOURS[k], capsize=3, lw=1.4, markersize=6, label=_label(t, labels))
        ax.set_xscale("log")
        ax.set_xticks([t for _, _, t in windows])
        ax.set_xticklabels([f"{t:g} wk\n{lab.split(' (')[0]}" for _, lab, t in windows], fontsize=8)
        ax.minorticks_off()
        ax.set_xlim(min(targets.values()) / 1.5, max(targets.values()) * 1.5)
        ax.set_title((outcome_titles or {}).get(outcome, outcome).capitalize(), loc="left", fontsize=10,
                     fontweight="bold")
        ax.set_ylabel(f"Difference from {_label(reference, labels)} (0-100)", fontsize=8.5)
        if drawn:
            ax.legend(fontsize=7.5, frameon=False, loc="upper right")
        else:
            ax.text(0.5, 0.5, "no network with usual care", transform=ax.transAxes, ha="center", fontsize=9)
    fig.text(0.01, -0.02, "Below 0: better than usual care. Estimates from one network per time window (a trial may "
             "be in several); bars: 95% CI.", fontsize=7.5)
    fig.tight_layout()
    return fig


# ------------------------------------------------------------------------------------- robustness of a result

GOSH_HEXBIN_FROM = 50_000  # more subsets than this are drawn as hexagonal bins (counts), fewer as points


def gosh_frame(result) -> pd.DataFrame:
    """The points of a GOSH plot: one row per fitted subset (estimate, i2, and k, q, h2, tau2: those the result
    kept, ``gosh(columns=)``)."""
    return result.table[[c for c in ("estimate", "i2", "k", "q", "h2", "tau2") if c in result.table]].copy()


def _gosh_highlight(result, highlight) -> tuple[np.ndarray | None, str]:
    if highlight is None:
        return None, ""
    if result.incl is None:
        raise ValueError("highlight needs the membership of every subset: run gosh() with membership=True")
    labels = list(result.labels)
    if isinstance(highlight, int | np.integer) and not isinstance(highlight, bool):
        j = int(highlight)
        if not 0 <= j < len(labels):
            raise ValueError(f"highlight must be a study label or a position 0..{len(labels) - 1}; got {highlight}")
    elif str(highlight) in labels:
        j = labels.index(str(highlight))
    else:
        raise ValueError(f"highlight {highlight!r} is not a study label (labels: {labels[:10]}...)")
    return result.incl[:, j], labels[j]


@literal_text
def plot_gosh(result, ax=None, *, highlight=None, hexbin: bool | None = None, gridsize: int = 60,
              xlabel: str = "Estimate", bins: int = 40, title: str | None = None):
    """GOSH plot as metafor's ``plot(gosh(...))``: I² against the estimate of every subset, with the marginal
    histograms (estimate above, I² at the right).

    Up to 50,000 subsets are drawn as points (transparency falling with their number); more, as hexagonal bins
    coloured by the log count, so a million subsets stay readable and fast (``hexbin`` forces either).
    ``highlight`` (a study label or position) colours the subsets that contain that study. Returns the main Axes;
    the histograms are inset Axes of it (``ax.child_axes``).
    """
    plt = _plt()
    fr = gosh_frame(result)
    missing = [c for c in ("estimate", "i2") if c not in fr]
    if missing:
        raise ValueError(f"the GOSH plot needs the estimate and I² of every subset; this result has no "
                         f"{' or '.join(missing)} (gosh(columns=) must keep them)")
    if ax is None:
        fig = plt.figure(figsize=(7, 6.5))
        ax = fig.add_axes([0.12, 0.10, 0.62, 0.62])
    x, y = fr["estimate"].to_numpy(), fr["i2"].to_numpy()
    n = len(fr)
    hexbin = n > GOSH_HEXBIN_FROM if hexbin is None else hexbin
    sel, sel_name = _gosh_highlight(result, highlight)
    if hexbin:
        ax.hexbin(x, y, gridsize=gridsize, bins="log", cmap="Greys", mincnt=1, linewidths=0)
        if sel is not None:
            ax.hexbin(x[sel], y[sel], gridsize=gridsize, bins="log", cmap="Reds", mincnt=1, linewidths=0,
                      alpha=0.6)
    else:
        alpha = float(min(1.0, max(0.05, 300 / max(n, 1))))
        if sel is None:
            ax.scatter(x, y, s=6, color="black", alpha=alpha, linewidths=0)
        else:
            ax.scatter(x[~sel], y[~sel], s=6, color="#555555", alpha=alpha, linewidths=0)
            ax.scatter(x[sel], y[sel], s=6, color="#d62728", alpha=alpha, linewidths=0)
    ax.set_xlabel(xlabel)
    ax.set_ylabel("I² (%)")
    top = ax.inset_axes([0.0, 1.02, 1.0, 0.25], sharex=ax)
    right = ax.inset_axes([1.02, 0.0, 0.25, 1.0], sharey=ax)
    xb, yb = np.histogram_bin_edges(x, bins), np.histogram_bin_edges(y, bins)
    top.hist(x, bins=xb, color="#7f7f7f")
    right.hist(y, bins=yb, color="#7f7f7f", orientation="horizontal")
    if sel is not None:
        top.hist(x[sel], bins=xb, color="#d62728", alpha=0.6)
        right.hist(y[sel], bins=yb, color="#d62728", alpha=0.6, orientation="horizontal")
    for a in (top, right):
        a.tick_params(labelbottom=False, labelleft=False, length=0)
        for side in ("top", "right"):
            a.spines[side].set_visible(False)
    how = "all" if result.exact else "random"
    note = f"{n:,} subsets ({how}) of {result.k} studies, {result.method}"
    if sel is not None:
        note += f"; red: subsets with study {sel_name}"
    ax.text(0.0, -0.14, note, transform=ax.transAxes, fontsize=8, va="top")
    if title:
        top.set_title(title, loc="left", fontsize=11, fontweight="bold")
    return ax


def baujat_frame(result) -> pd.DataFrame:
    """The points of a Baujat plot: study, x (contribution to heterogeneity), y (influence on the result)."""
    return result.table[["study", "x", "y"]].copy()


@literal_text
def plot_baujat(result, ax=None, *, label: bool = True, title: str | None = None):
    """Baujat plot as metafor's ``baujat``: each study's contribution to the heterogeneity (x) against its
    influence on the pooled result (y), labelled by study. Studies at the top right drive both."""
    plt = _plt()
    fr = baujat_frame(result)
    if ax is None:
        fig, ax = plt.subplots(figsize=(6.5, 5))
    ax.scatter(fr["x"], fr["y"], s=18, color="black", zorder=3)
    if label:
        for r in fr.itertuples():
            ax.annotate(str(r.study), (r.x, r.y), xytext=(3, 3), textcoords="offset points", fontsize=8)
    fe = result.method == "FE"
    ax.set_xlabel("Contribution to overall heterogeneity" if fe else "Squared Pearson residual")
    ax.set_ylabel("Influence on overall result")
    ax.grid(True, color="#dddddd", lw=0.6)
    if title:
        ax.set_title(title, loc="left", fontsize=11, fontweight="bold")
    return ax


def cumulative_frame(result, digits: int = 2) -> pd.DataFrame:
    """Rows of a cumulative forest plot, in the order studies were added: label ("+ study"), the sorting key,
    k, estimate, CI and the formatted text."""
    t = result.table
    return pd.DataFrame({
        "label": ["+ " + str(s) for s in t["study"]], "order": t["order"].to_numpy(), "k": t["k"].to_numpy(),
        "estimate": t["estimate"].to_numpy(), "ci_low": t["ci_low"].to_numpy(), "ci_high": t["ci_high"].to_numpy(),
        "text": [_fmt_ci(e, lo, hi, digits) for e, lo, hi in zip(t["estimate"], t["ci_low"], t["ci_high"])],
    })


def _key_text(value) -> str:
    """A sorting key as text: whole numbers (years) without a decimal point."""
    if isinstance(value, (float, np.floating)) and np.isfinite(value) and float(value).is_integer():
        return str(int(value))
    return str(value)


@literal_text
def plot_cumulative(result, ax=None, *, xlabel: str = "Estimate", digits: int = 2, refline: float | None = 0.0,
                    title: str | None = None):
    """Cumulative forest plot as metafor's ``forest(cumul(...))``: row i is the pooled estimate (point) and CI
    (line) of the first i studies, labelled with the study added and its sorting key; the estimate [CI] on the
    right."""
    plt = _plt()
    fr = cumulative_frame(result, digits)
    n = len(fr)
    if ax is None:
        fig = plt.figure(figsize=(9, 1.2 + 0.36 * (n + 2)))
        ax = fig.add_axes([0.30, 0.12, 0.45, 0.80])
    ypos = np.arange(n, 0, -1, dtype=float)
    for r, yy in zip(fr.itertuples(), ypos):
        ax.plot([r.ci_low, r.ci_high], [yy, yy], color="black", lw=1.0)
    ax.plot(fr["estimate"], ypos, ls="none", marker="o", ms=5, color="black")
    if refline is not None:
        ax.axvline(refline, color="#7f7f7f", lw=0.8, ls="--")
    trans = ax.get_yaxis_transform()
    for r, yy in zip(fr.itertuples(), ypos):
        key = f" ({_key_text(r.order)})" if result.order_given else ""
        ax.text(-0.03, yy, f"{r.label}{key}", transform=trans, ha="right", va="center", fontsize=8.5)
        ax.text(1.03, yy, r.text, transform=trans, ha="left", va="center", fontsize=8.5)
    ax.text(1.03, n + 0.8, f"Estimate [{100 * result.level:g}% CI]", transform=trans, ha="left", va="bottom",
            fontsize=9, fontweight="bold")
    ax.set_yticks([])
    ax.set_ylim(0.3, n + 0.9)
    ax.set_xlabel(xlabel)
    for side in ("left", "right", "top"):
        ax.spines[side].set_visible(False)
    ax.text(0.0, -0.12, f"{result.method}, {result.test}; each row adds one study", transform=ax.transAxes,
            fontsize=8, va="top")
    if title:
        ax.set_title(title, loc="left", fontsize=11, fontweight="bold")
    return ax

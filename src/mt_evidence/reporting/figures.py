"""All figures of an analysis, written to a folder (PNG 300 dpi, SVG, PDF), with their alt texts.

``write_figures`` draws, for every comparison x outcome with data, the short-vs-long figure and one forest
plot per window, plus the risk-of-bias figure; it returns a table of what it wrote (used by the report).
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from ..evidence import atomic
from ..evidence.io import Evidence
from ..synthesis import analysis as A
from . import plots as P


def _slug(*parts: str) -> str:
    return "_".join(str(p).replace(" ", "-") for p in parts)


#: the axis label of each effect measure
MEASURE_LABELS = {"md100": "Mean difference (points on 0-100)", "smd": "Standardised mean difference (final values)",
                  "smd_change": "Standardised mean difference (change scores)"}


def figure_specs(ev: Evidence, config: A.AnalysisConfig | None = None, measure: str = "md100"):
    """Yield (name, kind, title, alt, draw) for every figure, in report order (draw() returns a Figure)."""
    config = config or A.load_config()
    frame = A.comparison_frame(ev, config, measure=measure)
    xlabel = MEASURE_LABELS[measure]
    results = A.pool_windows(frame, config)
    vocab = ev.vocabulary
    outcomes = ("pain", "disability") if vocab.is_default else vocab.primary_outcomes
    for comp in A.comparison_order(vocab):
        first, second = A.labels_of(comp, vocab)
        for outcome in outcomes:
            sl = A.short_vs_long(frame, comp, outcome, config)
            if sl.short is None and sl.long is None:
                continue
            mid = config.thresholds.get(outcome) if measure == "md100" else None
            title = f"{first.capitalize()} vs {second}: {outcome}"
            ks = f"short term {0 if sl.short is None else sl.short.k} trial(s), long term " \
                 f"{0 if sl.long is None else sl.long.k} trial(s)"

            used = frame[frame["used"].astype(bool) & (frame["comparison"] == comp) & (frame["outcome"] == outcome)]
            arms_n = {w: used[used["window"] == w].drop_duplicates("study_id").set_index("study_id")[["n1", "n2"]]
                      for w in ("short", "long")}

            def draw(sl=sl, first=first, second=second, mid=mid, title=title, arms_n=arms_n):
                return P.plot_short_long(sl.short, sl.long, xlabel=xlabel, favours=(first, second), mid=mid,
                                         title=title, change_text=sl.summary(), info=arms_n)

            alt = (f"Forest plots side by side for {first} versus {second}, {outcome}: {ks}. "
                   + sl.summary())
            yield _slug(comp, outcome, "short_vs_long"), "short_vs_long", title, alt, draw
        for w in results:
            if w.comparison != comp or w.outcome not in outcomes:
                continue
            mid = config.thresholds.get(w.outcome) if measure == "md100" else None
            info = w.studies.set_index("study_id")[["n1", "n2", "rob_overall"]]
            title = f"{first.capitalize()} vs {second}: {w.outcome}, {config.window(w.window).label}"

            def draw_forest(w=w, info=info, mid=mid, title=title, first=first, second=second):
                ax = P.plot_forest(w.result, info=info, xlabel=xlabel, favours=(first, second), mid=mid,
                                   title=title)
                return ax.figure

            r = w.result
            alt = (f"Forest plot, {first} versus {second}, {w.outcome}, {w.window}: {r.k} trial(s), pooled "
                   f"{r.estimate:.1f} (95% CI {r.ci_low:.1f} to {r.ci_high:.1f}); negative favours {first}.")
            yield _slug(comp, w.outcome, w.window), "forest", title, alt, draw_forest
            if r.k >= 3:
                def draw_funnel(w=w, title=title):
                    ax = P.plot_funnel(w.result, xlabel=xlabel)
                    ax.figure.suptitle(title, fontsize=10)
                    return ax.figure

                yield (_slug(comp, w.outcome, w.window, "funnel"), "funnel", title + " (funnel)",
                       f"Contour-enhanced funnel plot, {first} versus {second}, {w.outcome}, {w.window}: {r.k} trials "
                       "(too few to judge small-study effects below 10).", draw_funnel)
            sub = A.control_subgroups(frame, comp, w.outcome, w.window, config)
            if sub is not None and len(sub.groups) >= 2:
                def draw_sub(sub=sub, info=info, mid=mid, title=title, first=first, second=second):
                    return P.plot_forest_subgroups(sub, info=info, xlabel=xlabel, favours=(first, second), mid=mid,
                                                   title=title + ", by control type").figure

                alt = (f"Forest plot by control type, {first} versus {second}, {w.outcome}, {w.window}: "
                       + P.subgroup_test_text(sub))
                yield _slug(comp, w.outcome, w.window, "by_control"), "forest_subgroups", title, alt, draw_sub

    def draw_rob():
        return P.plot_rob(ev.studies, ev.rob).figure

    yield "risk_of_bias", "rob", "Risk of bias", (
        "Traffic-light chart of the risk-of-bias judgements of each trial by domain: this review's own RoB 2 "
        "assessment by two independent readers, and published judgements (ringed); grey where none was made."), draw_rob


def _legacy_figures(folder: Path, entries: list[str]) -> bool:
    """A folder of figures written before figure folders carried an owner marker: only PNG/SVG/PDF files."""
    return all(Path(e).suffix in (".png", ".svg", ".pdf") and (folder / e).is_file() for e in entries)


def check_figures_output(out_dir: str | Path, ev: Evidence | None = None, data: str | Path | None = None) -> Path:
    """Refuse an output folder ``figures`` may not replace (``OutputRefused`` with the reason)."""
    from ..evidence.build import protected_inputs

    return atomic.check_output_folder(out_dir, "figures", protected=protected_inputs(ev, data),
                                       legacy=_legacy_figures)


def write_figures(ev: Evidence, out_dir: str | Path, config: A.AnalysisConfig | None = None,
                  formats=("png", "svg", "pdf"), dpi: int = 300, measure: str = "md100") -> pd.DataFrame:
    """Write every figure in ``formats`` to ``out_dir``; return name, kind, title, alt and paths.

    The folder is replaced as a whole (all or nothing); it must be one ``figures`` wrote, or new or empty.
    """
    import tempfile

    import matplotlib.pyplot as plt

    from ..evidence.build import protected_inputs

    out_dir = Path(out_dir)
    check_figures_output(out_dir, ev)
    rows, files = [], {}
    with tempfile.TemporaryDirectory(prefix="mt-evidence-figures-") as td:
        for name, kind, title, alt, draw in figure_specs(ev, config, measure):
            fig = draw()
            paths = P.save_figure(fig, Path(td) / name, formats=formats, dpi=dpi, alt=alt)
            plt.close(fig)
            for p in paths:
                files[Path(p).name] = Path(p).read_bytes()
            rows.append({"name": name, "kind": kind, "title": title, "alt": alt,
                         **{fmt: str(out_dir / Path(p).name) for fmt, p in zip(formats, paths)}})
    atomic.replace_owned_folder(out_dir, files, "figures", protected=protected_inputs(ev), legacy=_legacy_figures)
    return pd.DataFrame(rows)

"""The report: all rounding and wording for people, and HTML rendering (written atomically).

This first version pools every comparison x outcome x follow-up window the bundled evidence supports, lists
the included trials with their sources and everything left out with the reason. Later versions add forest
plots, summary-of-findings tables with certainty, the clinic claims, and the PDF.
"""

from __future__ import annotations

import datetime as _dt
import json
import platform
from collections.abc import Callable
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path

import numpy as np
import pandas as pd
from jinja2 import Environment, PackageLoader, select_autoescape

from . import _atomic
from .build import assemble
from .io import Evidence, load_evidence
from .pooling import pool

WINDOW_ORDER = {"short": 0, "intermediate": 1, "long": 2}


@dataclass(frozen=True)
class ReportOutput:
    html_path: Path
    n_pooled: int
    n_trials: int


def _fmt(x: float, digits: int = 1) -> str:
    return "" if x is None or not np.isfinite(x) else f"{x:.{digits}f}"


def pooled_table(ev: Evidence, *, method: str = "REML", test: str = "hksj") -> tuple[list[dict], str]:
    """Pool md100 per comparison x outcome x window (one time point per trial: the latest in the window)."""
    res = assemble(ev)
    df = res.primary()
    df = df[df["md100"].notna() & df["md100_se"].notna() & df["window"].notna()]
    rows = []
    conventions = ""
    for (comp, outcome, window), g in df.groupby(["comparison", "outcome", "window"], sort=False):
        # one row per trial: prefer the time point latest in the window, then arm-level over contrast data
        g = g.sort_values(["study_id", "timepoint_weeks", "source_kind"], ascending=[True, False, True])
        g = g.drop_duplicates("study_id", keep="first")
        r = pool(g["md100"].to_numpy(), sei=g["md100_se"].to_numpy(), method=method, test=test,
                 labels=list(g["study_id"]))
        conventions = r.conventions.describe()
        n = (g["n1"].fillna(0) + g["n2"].fillna(0)).sum()
        rows.append({
            "comparison": comp.replace("_vs_", " vs ").replace("_", " "),
            "outcome": outcome.replace("_", " "),
            "window": window,
            "k": r.k,
            "n": f"{int(n)}" if n > 0 else "not reported",
            "estimate": _fmt(r.estimate),
            "ci": f"{_fmt(r.ci_low)} to {_fmt(r.ci_high)}",
            "i2": f"{r.i2:.0f}%" if r.k > 1 else "",
            "studies": ", ".join(g["study_id"]),
            "_order": (comp, outcome, WINDOW_ORDER.get(window, 9)),
        })
    rows.sort(key=lambda d: d["_order"])
    return rows, conventions


def _software() -> str:
    parts = [f"Python {platform.python_version()}"]
    for pkg in ("numpy", "scipy", "pandas", "jinja2"):
        try:
            parts.append(f"{pkg} {metadata.version(pkg)}")
        except metadata.PackageNotFoundError:
            pass
    return ", ".join(parts)


def _reference_info() -> tuple[str, int]:
    ref = Path(__file__).resolve().parents[2] / "tests" / "reference" / "metafor_reference.json"
    try:
        data = json.loads(ref.read_text())
        return data["meta"]["metafor_version"], len(data["pool"]) + len(data["metareg"]) + len(data["escalc"])
    except (OSError, KeyError, ValueError):
        return "3.8", 0


def embedded_figures(ev: Evidence, kinds=("short_vs_long", "rob"), dpi: int = 110) -> list[dict]:
    """The report's figures as base64 PNG data URIs with their titles and alt texts (no network requests)."""
    import base64
    import io as _io

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from .figures import figure_specs

    out = []
    for name, kind, title, alt, draw in figure_specs(ev):
        if kind not in kinds:
            continue
        fig = draw()
        buf = _io.BytesIO()
        fig.savefig(buf, format="png", dpi=dpi, bbox_inches="tight", metadata={"Software": None})
        plt.close(fig)
        out.append({"name": name, "kind": kind, "title": title, "alt": alt,
                    "src": "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode("ascii")})
    return out


def render_html(ev: Evidence, *, generated: str | None = None) -> str:
    env = Environment(loader=PackageLoader("mt_evidence", "templates"), autoescape=select_autoescape(["html", "j2"]))
    tpl = env.get_template("report.html.j2")
    pooled, conventions = pooled_table(ev)
    res = assemble(ev)
    studies = [
        {
            "study_id": s.study_id,
            "citation": s.citation,
            "doi": s.doi,
            "population": s.population or "not stated",
            "n": "" if pd.isna(s.n_randomised) else f"{int(s.n_randomised)}",
            "sources": [u.strip() for u in (s.sources or "").split(";") if u.strip()],
        }
        for s in ev.studies.sort_values("study_id").itertuples()
    ]
    excl = res.exclusions.fillna("").to_dict("records")
    mf_version, n_ref = _reference_info()
    try:
        version = metadata.version("mt_evidence")
    except metadata.PackageNotFoundError:
        version = "unknown"
    return tpl.render(
        title="Manual therapy, exercise and combined care for low back pain: what the trials show",
        generated=generated or _dt.datetime.now(_dt.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        version=version,
        data_source=Path(ev.source).name,
        data_hash=ev.data_hash,
        status=(
            "Work in progress: this report pools what the bundled evidence supports so far. Forest plots, "
            "summary-of-findings tables with certainty of evidence, and the clinic claims checked are added "
            "in later versions."
        ),
        pooled=pooled,
        figures=embedded_figures(ev),
        conventions=conventions,
        studies=studies,
        exclusions=excl,
        metafor_version=mf_version,
        n_reference=n_ref,
        software=_software(),
    )


def build_report(data: str | Path | None = None, out: str | Path = "reports",
                 progress: Callable[[str], None] | None = None) -> ReportOutput:
    """Load the evidence (bundled when ``data`` is None), and write ``out/index.html`` atomically."""
    say = progress or (lambda _msg: None)
    say("loading and validating the evidence")
    ev = load_evidence(data)
    say("pooling and drawing the figures")
    html = render_html(ev)
    say("writing the report")
    out = Path(out)
    path = out / "index.html"
    _atomic.write_text(path, html)
    pooled, _ = pooled_table(ev)
    return ReportOutput(html_path=path, n_pooled=len(pooled), n_trials=len(ev.studies))

"""The command line (``mt-evidence``), thin over the library."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

app = typer.Typer(
    add_completion=False,
    no_args_is_help=True,
    help="mt_evidence: check clinic claims about manual therapy and exercise for back pain against the trials.",
)
console = Console(stderr=True)


def _load_or_exit(data: Optional[Path], out: Path):
    """Load and validate the evidence, or print every problem and exit 1 (nothing is written to ``out``)."""
    from .io import EvidenceError, load_evidence

    try:
        return load_evidence(data)
    except EvidenceError as err:
        console.print(f"{err}\nNothing was written to {out}.", style="red", markup=False, highlight=False)
        raise typer.Exit(1) from None


@app.command()
def validate(
    path: Annotated[Path, typer.Argument(help="An evidence folder (studies.csv, arms.csv, contrasts.csv) or .xlsx")],
) -> None:
    """List every problem in an evidence folder or workbook; exit code 0 only when it is clean."""
    from .io import validate_path

    problems = validate_path(path)
    if not problems:
        console.print(f"[green]OK[/green]: {path} has no problems.")
        raise typer.Exit(0)
    out = Console(soft_wrap=True)
    out.print(f"[bold red]{len(problems)} problem(s)[/bold red] in {path}:", highlight=False)
    for p in problems:
        out.print(f"  {p}", markup=False, highlight=False)
    raise typer.Exit(1)


@app.command()
def template(
    path: Annotated[Path, typer.Argument(help="An .xlsx workbook to write, or a folder for CSV files")],
) -> None:
    """Write an empty extraction template (with a sheet or file describing every column)."""
    from .io import write_template

    if path.exists() and path.is_file():
        console.print(f"[red]{path} exists; choose a new name (nothing was written)[/red]")
        raise typer.Exit(1)
    out = write_template(path)
    console.print(f"wrote an empty extraction template to {out}; check it with: mt-evidence validate {out}")


@app.command()
def build(
    data: Annotated[Optional[Path], typer.Option(help="Evidence folder or workbook (default: bundled)")] = None,
    out: Annotated[Path, typer.Option(help="Output folder")] = Path("data/processed"),
) -> None:
    """Write analysis-ready effect sizes to data/processed (all or nothing)."""
    from .build import build_processed

    ev = _load_or_exit(data, out)
    res = build_processed(ev, out)
    console.print(f"{ev.summary()}\nwrote {len(res.effects)} effect rows "
                  f"({(res.effects['role'] == 'primary').sum()} primary) to {out}")


@app.command()
def report(
    data: Annotated[Optional[Path], typer.Option(help="Evidence folder or workbook (default: bundled)")] = None,
    config: Annotated[Optional[Path], typer.Option(
        help="Settings (TOML): windows, thresholds, pooling, and a [report] table naming a claims file and a "
             "reviewer's certainty overrides (see src/mt_evidence/data/analysis.toml)")] = None,
    out: Annotated[Path, typer.Option(help="Output folder")] = Path("reports"),
) -> None:
    """Regenerate the clinician report (reports/index.html and reports/report.pdf) from the evidence."""
    from .io import EvidenceError
    from .report import build_report

    if config is not None and not config.exists():
        console.print(f"[red]{config}: no such configuration file[/red]")
        raise typer.Exit(2)
    from .report import REPORT_STEPS

    with Progress(SpinnerColumn(), TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                  TimeElapsedColumn(), console=console, transient=True) as progress:
        task = progress.add_task("starting", total=REPORT_STEPS)
        try:
            res = build_report(data, out, config=config,
                               progress=lambda msg: progress.update(task, description=msg, advance=1))
        except (EvidenceError, ValueError) as err:
            console.print(f"[red]{err}[/red]\nThe report was not changed.", markup=False)
            raise typer.Exit(1) from None
    console.print(f"wrote {res.html_path} and {res.pdf_path} ({res.n_trials} trials, {res.n_pooled} pooled "
                  "analyses)")


@app.command()
def figures(
    data: Annotated[Optional[Path], typer.Option(help="Evidence folder or workbook (default: bundled)")] = None,
    config: Annotated[Optional[Path], typer.Option(help="Analysis configuration (TOML)")] = None,
    out: Annotated[Path, typer.Option(help="Output folder")] = Path("reports/figures"),
    measure: Annotated[str, typer.Option(help="md100 (points on 0-100) or smd")] = "md100",
) -> None:
    """Write every figure (forest, short-vs-long, funnel, risk of bias) as PNG (300 dpi), SVG and PDF."""
    from .analysis import load_config
    from .figures import write_figures

    ev = _load_or_exit(data, out)
    table = write_figures(ev, out, load_config(config), measure=measure)
    console.print(f"wrote {len(table)} figures (PNG, SVG, PDF) to {out}")


@app.command()
def version() -> None:
    """Print the version."""
    from . import __version__

    typer.echo(__version__)


if __name__ == "__main__":  # pragma: no cover
    app()

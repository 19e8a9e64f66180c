"""The command line (``mt-evidence``), thin over the library."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer
from rich.console import Console
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

app = typer.Typer(
    add_completion=False,
    no_args_is_help=True,
    help="mt_evidence: check clinic claims about manual therapy and exercise for back pain against the trials.",
)
console = Console(stderr=True, soft_wrap=True)  # messages with paths are never broken mid-line


DataOption = Annotated[Optional[Path], typer.Option(help="Evidence folder or workbook (default: bundled)")]
ConfigOption = Annotated[Optional[Path], typer.Option(help="Analysis configuration (TOML)")]
MeasureOption = Annotated[str, typer.Option(
    help="md100 (points on 0-100), smd (final values) or smd_change (change scores)")]
VocabularyOption = Annotated[Optional[Path], typer.Option(
    "--vocabulary", help="A review.toml declaring the review's treatments, outcomes, populations and comparisons "
                         "(default: the evidence folder's review.toml, else manual therapy for back pain)")]


def _load_or_exit(data: Optional[Path], out: Path, vocabulary: Optional[Path] = None, progress=None):
    """Load and validate the evidence, or print every problem and exit 1 (nothing is written to ``out``)."""
    from .evidence.io import EvidenceError, load_evidence

    try:
        return load_evidence(data, vocabulary, progress=progress)
    except EvidenceError as err:
        console.print(f"{err}\nNothing was written to {out}.", style="red", markup=False, highlight=False)
        raise typer.Exit(1) from None


def _owned_output_and_evidence(out: Path, writer: str, data: Optional[Path], vocabulary: Optional[Path]):
    """Refuse ``out`` unless ``writer`` may replace it (before any work), then load the evidence or exit 1."""
    from .evidence import atomic
    from .evidence.atomic import OutputRefused
    from .evidence.build import protected_inputs

    try:
        atomic.check_output_folder(out, writer, protected=protected_inputs(data=data))
    except OutputRefused as err:
        _refused(err)
    return _load_or_exit(data, out, vocabulary)


def _progress() -> Progress:
    """A transient progress bar on standard error (hidden when not a terminal)."""
    return Progress(SpinnerColumn(), TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                    TimeElapsedColumn(), console=console, transient=True)


def _refused(err: Exception | str) -> None:
    console.print(str(err), style="red", markup=False, highlight=False)
    raise typer.Exit(1)


@app.command()
def validate(
    path: Annotated[Path, typer.Argument(help="An evidence folder (studies.csv, arms.csv, contrasts.csv) or .xlsx")],
    vocabulary: VocabularyOption = None,
) -> None:
    """List every problem in an evidence folder or workbook; exit code 0 only when it is clean."""
    from .evidence.io import VALIDATE_STEPS, check_path

    with _progress() as progress:
        task = progress.add_task("starting", total=VALIDATE_STEPS)
        problems, warnings = check_path(path, vocabulary,
                                        progress=lambda msg: progress.update(task, description=msg, advance=1))
    out = Console(soft_wrap=True)
    if not problems:
        console.print(f"[green]OK[/green]: {escape(str(path))} has no problems.")
        if warnings:
            out.print(f"[yellow]{len(warnings)} warning(s)[/yellow] (values allowed but probably wrong; loading "
                      "goes on):", highlight=False)
            for w in warnings:
                out.print(f"  {w}", markup=False, highlight=False)
        raise typer.Exit(0)
    out.print(f"[bold red]{len(problems)} problem(s)[/bold red] in {escape(str(path))}:", highlight=False)
    for p in problems:
        out.print(f"  {p}", markup=False, highlight=False)
    raise typer.Exit(1)


@app.command()
def template(
    path: Annotated[Path, typer.Argument(help="An .xlsx workbook to write, or a folder for CSV files")],
) -> None:
    """Write an empty extraction template (with a sheet or file describing every column)."""
    from .evidence.atomic import OutputRefused
    from .evidence.io import write_template

    try:
        res = write_template(path)
    except OutputRefused as err:
        _refused(err)
    if res.kept:
        console.print(f"{path} already holds {', '.join(res.kept)}: left unchanged (a template never overwrites).",
                      markup=False, highlight=False)
    if res.written:
        console.print(f"wrote {', '.join(res.written)} to {path}; check it with: mt-evidence validate {path}",
                      markup=False, highlight=False)
    else:
        console.print("nothing was written.", markup=False, highlight=False)


@app.command("import-wide")
def import_wide(
    sheet: Annotated[Path, typer.Argument(help="The wide extraction sheet: a .csv file or an .xlsx workbook")],
    mapping: Annotated[Path, typer.Argument(help="The mapping (TOML) from the sheet's columns to the evidence "
                                                 "tables; see docs/bring-your-own-review.md")],
    out: Annotated[Path, typer.Option(help="The evidence folder to write (new, empty, or written by import-wide "
                                           "before)")],
) -> None:
    """Write an evidence folder (studies.csv, arms.csv, contrasts.csv, rob.csv, review.toml) from a wide sheet,
    all or nothing; every problem is named by the mapping's key or the sheet's own row and column."""
    from .evidence.atomic import OutputRefused
    from .evidence.io import EvidenceError
    from .evidence.wide import import_wide as run

    try:
        res = run(sheet, mapping, out)
    except EvidenceError as err:
        console.print(f"{err}\nNothing was written to {out}.", style="red", markup=False, highlight=False)
        raise typer.Exit(1) from None
    except OutputRefused as err:
        _refused(err)
    except OSError as err:
        _refused(f"{out}: cannot be written ({err.strerror or err}); nothing was written")
    console.print(res.summary(), markup=False, highlight=False)
    if res.warnings:
        console.print(f"{len(res.warnings)} warning(s) (values allowed but probably wrong):", markup=False,
                      highlight=False)
        for w in res.warnings:
            console.print(f"  {w}", markup=False, highlight=False)
    console.print(f"check it with: mt-evidence validate {out}", markup=False, highlight=False)


@app.command()
def build(
    data: DataOption = None,
    out: Annotated[Path, typer.Option(help="Output folder")] = Path("data/processed"),
    vocabulary: VocabularyOption = None,
) -> None:
    """Write analysis-ready effect sizes to data/processed (all or nothing)."""
    from .evidence.atomic import OutputRefused
    from .evidence.build import BUILD_STEPS, build_processed, check_build_output
    from .evidence.io import VALIDATE_STEPS

    try:
        check_build_output(out, data=data)  # before loading: a wrong --out is refused at once
    except OutputRefused as err:
        _refused(err)
    with _progress() as progress:
        task = progress.add_task("starting", total=VALIDATE_STEPS + BUILD_STEPS)

        def step(msg: str) -> None:
            progress.update(task, description=msg, advance=1)

        ev = _load_or_exit(data, out, vocabulary, progress=step)
        try:
            res = build_processed(ev, out, progress=step)
        except OutputRefused as err:
            _refused(err)
        except OSError as err:
            _refused(f"{out}: cannot be written ({err.strerror or err}); nothing was written")
    console.print(f"{ev.summary()}\nwrote {len(res.effects)} effect rows "
                  f"({(res.effects['role'] == 'primary').sum()} primary) to {out}")


@app.command()
def report(
    data: DataOption = None,
    config: Annotated[Optional[Path], typer.Option(
        help="Settings (TOML): windows, thresholds, pooling, and a [report] table naming a claims file and a "
             "reviewer's certainty overrides (see src/mt_evidence/data/analysis.toml)")] = None,
    out: Annotated[Path, typer.Option(help="Output folder")] = Path("reports"),
    pdf: Annotated[bool, typer.Option(help="Also print report.pdf with headless Chromium")] = True,
    vocabulary: VocabularyOption = None,
) -> None:
    """Regenerate the clinician report (reports/index.html and reports/report.pdf) from the evidence."""
    from .evidence.io import EvidenceError
    from .reporting.report import ReportError, build_report

    if config is not None and not config.exists():
        console.print(f"{config}: no such configuration file", style="red", markup=False, highlight=False)
        raise typer.Exit(2)
    from .reporting.report import REPORT_STEPS

    with Progress(SpinnerColumn(), TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                  TimeElapsedColumn(), console=console, transient=True) as progress:
        task = progress.add_task("starting", total=REPORT_STEPS)
        try:
            res = build_report(data, out, config=config, pdf=pdf, vocabulary=vocabulary,
                               progress=lambda msg: progress.update(task, description=msg, advance=1))
        except (EvidenceError, ValueError, ReportError) as err:
            console.print(f"{err}\nThe report was not changed.", style="red", markup=False, highlight=False)
            raise typer.Exit(1) from None
        except OSError as err:
            console.print(f"{out}: cannot be written ({err.strerror or err}). The report was not changed.",
                          style="red", markup=False, highlight=False)
            raise typer.Exit(1) from None
    written = f"{res.html_path} and {res.pdf_path}" if res.pdf_path else f"{res.html_path} (no PDF)"
    console.print(f"wrote {written} ({res.n_trials} trials, {res.n_pooled} pooled analyses)")


@app.command()
def figures(
    data: DataOption = None,
    config: ConfigOption = None,
    out: Annotated[Path, typer.Option(help="Output folder")] = Path("reports/figures"),
    measure: MeasureOption = "md100",
    vocabulary: VocabularyOption = None,
) -> None:
    """Write every figure (forest, short-vs-long, funnel, risk of bias) as PNG (300 dpi), SVG and PDF."""
    from .evidence.atomic import OutputRefused
    from .reporting.figures import check_figures_output, write_figures
    from .synthesis.analysis import load_config

    try:
        check_figures_output(out, data=data)
    except OutputRefused as err:
        _refused(err)
    ev = _load_or_exit(data, out, vocabulary)
    try:
        table = write_figures(ev, out, load_config(config), measure=measure)
    except (OutputRefused, ValueError) as err:
        _refused(err)
    except OSError as err:
        _refused(f"{out}: cannot be written ({err.strerror or err}); nothing was written")
    console.print(f"wrote {len(table)} figures (PNG, SVG, PDF) to {out}")


@app.command()
def revman(
    review: Annotated[Path, typer.Argument(help="A RevMan 5 review file (.rm5)")],
    out: Annotated[Path, typer.Option(help="Output folder (new, empty, or one this command wrote)")],
    map_: Annotated[Optional[list[str]], typer.Option(
        "--map", help="LABEL=name:role: the treatment name (ASCII letters, digits, _) and role (active or control) of "
                      "a RevMan group label; repeat for several labels")] = None,
    map_file: Annotated[Optional[Path], typer.Option(
        "--map-file", help="A text file with one LABEL=name:role per line (# starts a comment)")] = None,
    tolerance: Annotated[float, typer.Option(help="Absolute difference counted as agreement with RevMan")] = 1e-6,
) -> None:
    """Read every analysis of a RevMan 5 review into an evidence folder (studies, arms, contrasts, review.toml) and
    re-run its meta-analyses under RevMan 5's settings (revman_concordance.csv)."""
    from .evidence.atomic import OutputRefused
    from .evidence.revman import RevManError
    from .evidence.revman_review import (check_revman_output, parse_treatment_map, read_revman_review,
                                         read_treatment_map_file, write_revman_folder)

    try:
        check_revman_output(out, review)  # before reading: a wrong --out is refused at once
    except OutputRefused as err:
        _refused(err)
    try:
        tmap = read_treatment_map_file(map_file) if map_file is not None else {}
        tmap.update(parse_treatment_map(map_ or []))
        res = read_revman_review(review, treatment_map=tmap)
    except (RevManError, FileNotFoundError, ValueError, OSError) as err:
        _refused(f"{err}\nNothing was written to {out}.")
    try:
        folder = write_revman_folder(res, out, tolerance=tolerance)
    except OutputRefused as err:
        _refused(err)
    except OSError as err:
        _refused(f"{out}: cannot be written ({err.strerror or err}); nothing was written")
    say = Console(soft_wrap=True)
    say.print(f"{res.summary()}\nwrote {out}: {', '.join(f for f in folder.files)}; check it with: mt-evidence "
              f"validate {out}", markup=False, highlight=False)
    if res.warnings:
        say.print(f"{len(res.warnings)} warning(s), listed in {out / 'revman_warnings.txt'}; the first:",
                  markup=False, highlight=False)
        for w in res.warnings[:3]:
            say.print(f"  {w}", markup=False, highlight=False)
    say.print(folder.summary_line(), markup=False, highlight=False)


@app.command()
def multiverse(
    data: DataOption = None,
    config: ConfigOption = None,
    out: Annotated[Path, typer.Option(help="Output folder")] = Path("reports/multiverse"),
    measure: MeasureOption = "md100",
    vocabulary: VocabularyOption = None,
) -> None:
    """Every combination of reasonable analysis choices for every analysis (docs/methods.md section 19): writes
    multiverse.csv (one row per combination) and multiverse_summary.csv (how many agree with the plan)."""
    from .evidence.atomic import OutputRefused
    from .evidence.build import protected_inputs
    from .synthesis import multiverse as MV
    from .synthesis.analysis import comparison_frame, load_config

    ev = _owned_output_and_evidence(out, MV.WRITER, data, vocabulary)
    try:
        cfg = load_config(config)
        frame = comparison_frame(ev, cfg, measure=measure)
        with _progress() as progress:
            task = progress.add_task("multiverse", total=None)
            result = MV.multiverse(frame, cfg, measure=measure,
                                   progress=lambda done, total: progress.update(task, completed=done, total=total))
        counts = MV.write_multiverse(result, out, protected=protected_inputs(ev, data))
    except (OutputRefused, ValueError) as err:
        _refused(err)
    except OSError as err:
        _refused(f"{out}: cannot be written ({err.strerror or err}); nothing was written")
    summary = result.summary()
    flips = int(summary["flips"].sum()) if len(summary) else 0
    console.print(f"{len(summary)} analyses, {counts['multiverse.csv']} combinations; the conclusion of {flips} "
                  f"changes under some reasonable choices. Wrote multiverse.csv and multiverse_summary.csv to {out}",
                  markup=False, highlight=False)


@app.command()
def robustness(
    comparison: Annotated[Optional[str], typer.Option(help="The comparison, e.g. exercise_vs_control")] = None,
    outcome: Annotated[Optional[str], typer.Option(help="The outcome, e.g. disability")] = None,
    window: Annotated[Optional[str], typer.Option(help="The follow-up window, e.g. short")] = None,
    data: DataOption = None,
    config: ConfigOption = None,
    out: Annotated[Path, typer.Option(help="Output folder")] = Path("reports/robustness"),
    measure: MeasureOption = "md100",
    gosh_method: Annotated[str, typer.Option(help="Model fitted to every GOSH subset: DL, FE or any estimator")] = "DL",
    permutations: Annotated[int, typer.Option(help="Random permutations when exact enumeration is too large")] = 1000,
    seed: Annotated[int, typer.Option(help="Seed of random GOSH subsets and permutations")] = 1,
    vocabulary: VocabularyOption = None,
) -> None:
    """Every robustness check of one analysis (leave-one-out, influence, Baujat, cumulative, GOSH, permutation test,
    small-study checks) with the plan's conventions: writes summary.txt, the tables as CSV and the figures as PNG.
    Without --comparison, --outcome and --window it lists the analyses."""
    from .evidence.atomic import OutputRefused
    from .evidence.build import protected_inputs
    from .reporting import robustness as RR
    from .reporting.figures import MEASURE_LABELS
    from .synthesis import robustness as R
    from .synthesis.analysis import comparison_frame, load_config

    if measure not in MEASURE_LABELS:
        _refused(f"--measure {measure!r}: expected one of {', '.join(MEASURE_LABELS)}")
    ev = _owned_output_and_evidence(out, RR.WRITER, data, vocabulary)
    try:
        cfg = load_config(config)
        frame = comparison_frame(ev, cfg, measure=measure)
        if None in (comparison, outcome, window):
            table = R.analyses_table(frame, cfg)
            Console(soft_wrap=True).print(table.to_string(index=False), markup=False, highlight=False)
            _refused("name one analysis with --comparison, --outcome and --window (the analyses are listed above)")
        with _progress() as progress:
            task = progress.add_task("starting", total=None)

            def step(name: str, done: int, total: int) -> None:
                progress.update(task, description=name.replace("_", " "), completed=done, total=total)

            result = R.robustness(frame, cfg, comparison, outcome, window, studies=ev.studies,
                                  gosh_method=gosh_method, permutations=permutations, seed=seed, progress=step)
        written = RR.write_robustness(result, out, protected=protected_inputs(ev, data),
                                      xlabel=MEASURE_LABELS[measure])
    except (OutputRefused, ValueError) as err:
        _refused(err)
    except OSError as err:
        _refused(f"{out}: cannot be written ({err.strerror or err}); nothing was written")
    ran = len(R.ROBUSTNESS_STEPS) - len(result.skipped)
    console.print(f"{result.title}: {ran} of {len(R.ROBUSTNESS_STEPS)} checks ran"
                  + (f" ({', '.join(result.skipped)} did not: see summary.txt)" if result.skipped else "")
                  + f". Wrote {len(written)} files to {out}", markup=False, highlight=False)


@app.command()
def version() -> None:
    """Print the version."""
    from . import __version__

    typer.echo(__version__)


if __name__ == "__main__":  # pragma: no cover
    app()

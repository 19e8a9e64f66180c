"""The robustness of one analysis: every check of notebook 5 run at once, for the command line and for scripts.

``robustness(frame, config, comparison, outcome, window)`` takes one analysis of a :func:`comparison_frame`
(the trials the plan pools for that comparison, outcome and follow-up window) and runs, with the plan's own
conventions (the estimator and test of the pooled result):

- leave-one-out and influence diagnostics (metafor ``leave1out``, ``influence``);
- the Baujat data and a cumulative meta-analysis by year of publication (metafor ``baujat``, ``cumul``);
- GOSH (every subset, or a random sample of them for many trials; metafor ``gosh``);
- a permutation test of the pooled effect (metafor ``permutest``);
- the small-study checks (Egger, Begg, trim and fill, PET-PEESE, the step-function selection model, whose
  p-values are one-sided towards negative effects, those favouring the first-named care), which refuse below 10 trials (Cochrane Handbook 13.3.5.4): the refusal is recorded, not hidden.

A check that cannot run on this analysis (too few trials for it) is kept in ``skipped`` with the reason. Nothing is
drawn here: :func:`mt_evidence.reporting.robustness.write_robustness` writes the tables, the printed results and the
figures.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from ..stats.bias import begg_test, egger_test, influence, leave_one_out, trim_and_fill
from ..stats.gosh import GoshResult, gosh
from ..stats.permutation import PermutationResult, permutation_test
from ..stats.pooling import PoolResult
from ..stats.robust import BaujatResult, CumulativeResult, baujat, cumulative, pet_peese
from ..stats.selection import selection_model
from .analysis import AnalysisConfig, WindowResult, load_config, pool_windows

__all__ = ["Robustness", "robustness", "find_analysis", "analyses_table", "ROBUSTNESS_STEPS"]

#: the checks, in the order they run (each reports progress under this name)
ROBUSTNESS_STEPS = ("leave_one_out", "influence", "baujat", "cumulative", "gosh", "permutation", "egger", "begg",
                    "trim_and_fill", "pet_peese", "selection_model")

Progress = Callable[[str, int, int], object]


@dataclass
class Robustness:
    """Every robustness check of one analysis (``None`` where a check did not run: see ``skipped``)."""

    comparison: str
    outcome: str
    window: str
    labels: list[str]
    yi: np.ndarray = field(repr=False)
    vi: np.ndarray = field(repr=False)
    years: list[float] = field(repr=False)
    pooled: PoolResult = field(repr=False)
    leave_one_out: pd.DataFrame | None = field(default=None, repr=False)
    influence: pd.DataFrame | None = field(default=None, repr=False)
    baujat: BaujatResult | None = field(default=None, repr=False)
    cumulative: CumulativeResult | None = field(default=None, repr=False)
    gosh: GoshResult | None = field(default=None, repr=False)
    permutation: PermutationResult | None = field(default=None, repr=False)
    #: small-study checks that ran: name -> result
    bias: dict = field(default_factory=dict, repr=False)
    #: checks that did not run: name -> why
    skipped: dict = field(default_factory=dict)

    @property
    def k(self) -> int:
        return len(self.labels)

    @property
    def title(self) -> str:
        return f"{self.comparison}, {self.outcome}, {self.window} ({self.k} trials)"

    def tables(self) -> dict[str, pd.DataFrame]:
        """The tables of the checks that ran, by file stem."""
        out = {}
        if self.leave_one_out is not None:
            out["leave_one_out"] = self.leave_one_out
        if self.influence is not None:
            out["influence"] = self.influence
        if self.baujat is not None:
            out["baujat"] = self.baujat.table
        if self.cumulative is not None:
            out["cumulative"] = self.cumulative.table
        if self.permutation is not None:
            out["permutation"] = self.permutation.coefficients.reset_index(names="term")
        return out

    def summary_text(self) -> str:
        """Every result as printed (with its conventions), and every check that did not run with the reason."""
        rule = "-" * 100
        parts = [f"Robustness of {self.title}", f"trials: {', '.join(self.labels)}", rule, "Pooled as planned:",
                 repr(self.pooled)]
        printed = [("Leave one out", self.leave_one_out), ("Influence", self.influence),
                   ("Baujat", self.baujat), ("Cumulative by year", self.cumulative), ("GOSH", self.gosh),
                   ("Permutation test", self.permutation)]
        printed += [(name, res) for name, res in self.bias.items()]
        for name, res in printed:
            if res is None:
                continue
            if isinstance(res, pd.DataFrame):
                text = res.to_string()
            elif isinstance(res, dict):  # Egger's and Begg's tests
                text = "\n".join(f"{key} = {val}" for key, val in res.items())
            else:
                text = repr(res)
            parts += [rule, f"{name}:", text]
        if self.skipped:
            parts += [rule, "Not run on this analysis:"]
            parts += [f"- {name}: {why}" for name, why in self.skipped.items()]
        return "\n".join(parts) + "\n"


def analyses_table(frame: pd.DataFrame, config: AnalysisConfig | None = None) -> pd.DataFrame:
    """Every analysis of a comparison frame with its number of trials (the analyses ``robustness`` can take)."""
    rows = [{"comparison": w.comparison, "outcome": w.outcome, "window": w.window, "k": w.k}
            for w in pool_windows(frame, config)]
    return pd.DataFrame(rows, columns=["comparison", "outcome", "window", "k"])


def find_analysis(frame: pd.DataFrame, config: AnalysisConfig | None, comparison: str, outcome: str,
                  window: str) -> WindowResult:
    """The analysis (comparison, outcome, window) of a comparison frame, or a ValueError listing those there are."""
    results = pool_windows(frame, config)
    for w in results:
        if (w.comparison, w.outcome, w.window) == (comparison, outcome, window):
            return w
    known = "; ".join(f"{w.comparison} / {w.outcome} / {w.window} ({w.k} trials)" for w in results)
    raise ValueError(f"no analysis {comparison} / {outcome} / {window} in this evidence; the analyses are: "
                     f"{known or 'none'}")


def _years(labels: list[str], studies: pd.DataFrame | None) -> list[float]:
    """Each trial's year of publication (a label may name an arm: 'Cherkin2011 (structural_massage)')."""
    if studies is None or "year" not in studies.columns:
        return [np.nan] * len(labels)
    years = studies.set_index("study_id")["year"]
    out = []
    for label in labels:
        y = years.get(label.split(" (")[0])
        out.append(float(y) if y is not None and not pd.isna(y) else np.nan)
    return out


def robustness(frame: pd.DataFrame, config: AnalysisConfig | None, comparison: str, outcome: str, window: str, *,
               studies: pd.DataFrame | None = None, gosh_method: str = "DL", gosh_subsets: int | None = None,
               permutations: int = 1000, seed: int | None = 1, progress: Progress | None = None) -> Robustness:
    """Run every robustness check of one analysis with the plan's conventions.

    Parameters
    ----------
    frame, config : the comparison frame (:func:`comparison_frame`) and the analysis plan (default: the package's).
    comparison, outcome, window : which analysis (``find_analysis`` lists them when the name is wrong).
    studies : the evidence's studies table, for the year of each trial (the order of the cumulative analysis);
        without it the cumulative analysis keeps the analysis's order.
    gosh_method : the model fitted to every subset: "DL" (default) or "FE" by closed form, or any estimator of
        :func:`pool`.
    gosh_subsets : at most this many subsets (all of them when 2^k - 1 is no more; default 10^6, as metafor).
    permutations, seed : random permutations when exact enumeration is too large, and their seed.
    progress : called as ``progress(step, done, total)``; steps are :data:`ROBUSTNESS_STEPS`.
    """
    config = config or load_config()
    w = find_analysis(frame, config, comparison, outcome, window)
    say = progress or (lambda step, done, total: None)
    labels = list(w.studies["study_id"])
    yi, vi = w.studies["yi"].to_numpy(float), w.studies["vi"].to_numpy(float)
    conv = w.result.conventions
    out = Robustness(comparison, outcome, window, labels, yi, vi, _years(labels, studies), w.result)

    def attempt(name: str, run: Callable[[], object]):
        say(name, 0, 1)
        try:
            res = run()
        except ValueError as err:  # too few trials for this check (TooFewTrials is a ValueError), or k = 1
            out.skipped[name] = str(err)
            res = None
        say(name, 1, 1)
        return res

    def step_progress(name: str):
        return lambda done, total: say(name, done, total)

    if len(labels) < 2:
        for name in ROBUSTNESS_STEPS:
            out.skipped[name] = "one trial: there is nothing to pool, leave out or permute"
        return out
    method = conv.method
    plan = dict(method=method, test=conv.test, adhoc=conv.adhoc, level=conv.level)  # the pooled result's own
    out.leave_one_out = attempt("leave_one_out", lambda: leave_one_out(yi, vi, labels=labels, **plan))
    out.influence = attempt("influence", lambda: influence(yi, vi, method=method, labels=labels))
    out.baujat = attempt("baujat", lambda: baujat(yi, vi, labels=labels, **plan))
    order = out.years if not all(np.isnan(out.years)) else None
    out.cumulative = attempt("cumulative", lambda: cumulative(yi, vi, order=order, labels=labels, **plan))
    out.gosh = attempt("gosh", lambda: gosh(yi, vi, method=gosh_method, subsets=gosh_subsets, seed=seed,
                                            labels=labels, progress=step_progress("gosh")))
    out.permutation = attempt("permutation", lambda: permutation_test(
        yi, vi, iter=permutations, seed=seed, progress=step_progress("permutation"), **plan))
    checks = {"egger": lambda: egger_test(yi, vi), "begg": lambda: begg_test(yi, vi),
              "trim_and_fill": lambda: trim_and_fill(yi, vi, method=method),
              "pet_peese": lambda: pet_peese(yi, vi),
              # effects are oriented so that negative favours the first-named care: selection favours small p-values
              # of negative effects
              "selection_model": lambda: selection_model(yi, vi, alternative="less")}
    for name, run in checks.items():
        res = attempt(name, run)
        if res is not None:
            out.bias[name] = res
    return out

"""How robust a pooled conclusion is: small-study adjustment, accumulation over time, and influence.

* :func:`pet_peese`: PET and PEESE (Stanley & Doucouliagos 2014) and the conditional PET-PEESE estimate.
* :func:`cumulative`: cumulative meta-analysis (metafor ``cumul``), e.g. by year of publication.
* :func:`baujat`: the data of a Baujat plot (metafor ``baujat``): each trial's contribution to the heterogeneity
  and its influence on the pooled estimate.

The selection model, the permutation test and GOSH live in ``selection``, ``permutation`` and ``gosh``.
Validated against metafor 3.8 (tests/reference/make_robust_reference.R -> robust_reference.json).
"""

from __future__ import annotations

import html
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
from scipy import stats

from .printing import PrintedResult, WithConventions, format_p
from .bias import MIN_K_BIAS, check_studies, weighted_least_squares
from .conventions import Conventions
from .pooling import pool, pool_many

__all__ = ["PET_PEESE_RULES", "PetPeeseResult", "pet_peese", "CumulativeResult", "cumulative", "BaujatResult",
           "baujat"]


def _labels(labels, k: int) -> list[str]:
    if labels is None:
        return [str(i + 1) for i in range(k)]
    labels = [str(x) for x in labels]
    if len(labels) != k:
        raise ValueError(f"labels has {len(labels)} entries but there are {k} studies")
    return labels


# -------------------------------------------------------------------------------------------------- PET-PEESE

PET_PEESE_RULES = {
    "two-sided": "PEESE when PET's intercept differs from 0 in a two-sided t test at alpha",
    "greater": "PEESE when PET's intercept is above 0 in a one-sided t test at alpha",
    "less": "PEESE when PET's intercept is below 0 in a one-sided t test at alpha",
}


@dataclass(frozen=True, repr=False)
class PetPeeseResult(PrintedResult):
    """PET and PEESE fits and the conditional PET-PEESE estimate (the chosen model's intercept).

    ``pet`` and ``peese`` are coefficient tables (``intrcpt`` and ``sei`` or ``vi``): estimate, se, t statistic,
    p, CI (t with k - 2 df) and df. ``chosen`` is "PET" or "PEESE"; ``estimate`` ... ``ci_high`` are that model's
    intercept, the effect of a study with standard error 0. ``rule_p`` is the p-value of PET's intercept test that
    the rule compared with ``alpha``.
    """

    estimate: float
    se: float
    stat: float
    p: float
    ci_low: float
    ci_high: float
    df: float
    chosen: str
    rule: str
    alpha: float
    rule_p: float
    k: int
    level: float
    pet: pd.DataFrame = field(repr=False)
    peese: pd.DataFrame = field(repr=False)

    def to_frame(self) -> pd.DataFrame:
        """Both fits' coefficients, one row per model and term, with a ``chosen`` flag on the chosen model."""
        parts = []
        for name, tab in (("PET", self.pet), ("PEESE", self.peese)):
            t = tab.reset_index()
            t.insert(0, "model", name)
            t["chosen"] = name == self.chosen
            parts.append(t)
        out = pd.concat(parts, ignore_index=True)
        out["rule"], out["alpha"], out["level"] = self.rule, self.alpha, self.level
        return out

    def _lines(self) -> list[str]:
        lvl = f"{100 * self.level:g}%"
        lines = [f"PET-PEESE (k = {self.k}; weighted least squares, weights 1/vi, t with {self.df:g} df)", ""]
        for name, tab, slope in (("PET  ", self.pet, "sei"), ("PEESE", self.peese, "vi")):
            a, b = tab.iloc[0], tab.iloc[1]
            lines.append(f"{name} intercept = {a['estimate']:.4f} (se {a['se']:.4f}, t = {a['stat']:.3f}, "
                         f"p {format_p(a['p'])}); {lvl} CI [{a['ci_low']:.4f}, {a['ci_high']:.4f}]; "
                         f"slope on {slope} = {b['estimate']:.4f} (p {format_p(b['p'])})")
        lines += ["", f"Chosen: {self.chosen}: estimate = {self.estimate:.4f}, {lvl} CI [{self.ci_low:.4f}, "
                      f"{self.ci_high:.4f}]",
                  f"Rule: {PET_PEESE_RULES[self.rule]} = {self.alpha:g} (PET intercept p {format_p(self.rule_p)})"]
        return lines



def pet_peese(yi, vi, *, rule: str = "two-sided", alpha: float = 0.05, level: float = 0.95,
              min_k: int | None = MIN_K_BIAS) -> PetPeeseResult:
    """PET, PEESE and the conditional PET-PEESE estimate of the effect adjusted for small-study effects.

    PET (precision-effect test) regresses ``yi`` on the standard errors ``sqrt(vi)``, PEESE (precision-effect
    estimate with standard error) on the variances ``vi``; both by weighted least squares with weights ``1/vi`` and
    a multiplicative error variance estimated from the residuals (Stanley & Doucouliagos 2014), i.e. R's
    ``lm(yi ~ sqrt(vi), weights = 1/vi)``, not a meta-regression with additive tau^2. The intercept is the effect
    expected of a study with standard error 0.

    The conditional rule: when PET's intercept test rejects H0: intercept = 0 at ``alpha`` there is an effect, and
    PEESE (less biased then) gives the estimate; otherwise PET does.

    Parameters
    ----------
    yi, vi : array-like
        Effect sizes and their sampling variances (the sign of ``yi`` is kept).
    rule : {"two-sided", "greater", "less"}
        How PET's intercept is tested: two-sided (default), or one-sided in the direction of the expected effect.
        Stanley & Doucouliagos state the test without a direction; one-sided use is common where the direction of
        the effect is known in advance.
    alpha : float
        Significance level of that test (0.05).
    level : float
        Confidence level of the reported intervals (t quantiles with k - 2 df).
    min_k : int or None
        Refuse (``TooFewTrials``) below this many trials (10, as the other small-study methods).

    Returns
    -------
    PetPeeseResult

    Validated against: R ``lm(yi ~ sqrt(vi), weights = 1/vi)`` and ``lm(yi ~ vi, weights = 1/vi)`` (equal to
    metafor ``rma(yi, vi, mods = ~ sqrt(vi), method = "FE", test = "knha")``), tests/reference/make_robust_reference.R.
    """
    y, v = check_studies(yi, vi, min_k=min_k, what="PET-PEESE")
    if rule not in PET_PEESE_RULES:
        raise ValueError(f"rule must be one of {', '.join(map(repr, PET_PEESE_RULES))}; got {rule!r}")
    if not 0 < alpha < 1:
        raise ValueError(f"alpha must be in (0, 1); got {alpha!r}")
    if not 0 < level < 1:
        raise ValueError(f"level must be in (0, 1); got {level!r}")
    if len(y) < 3:
        raise ValueError(f"PET-PEESE needs at least 3 studies (two coefficients and a residual variance); got {len(y)}")
    if np.ptp(v) == 0:
        raise ValueError("PET-PEESE needs studies of different precision: every vi is the same")
    pet = weighted_least_squares(y, np.sqrt(v), v, level, ("intrcpt", "sei"))
    peese = weighted_least_squares(y, v, v, level, ("intrcpt", "vi"))
    t, df = float(pet["stat"].iloc[0]), float(pet["df"].iloc[0])
    rule_p = {"two-sided": 2 * stats.t.sf(abs(t), df), "greater": stats.t.sf(t, df),
              "less": stats.t.cdf(t, df)}[rule]
    chosen = "PEESE" if rule_p < alpha else "PET"
    c = (peese if chosen == "PEESE" else pet).iloc[0]
    return PetPeeseResult(estimate=float(c["estimate"]), se=float(c["se"]), stat=float(c["stat"]), p=float(c["p"]),
                          ci_low=float(c["ci_low"]), ci_high=float(c["ci_high"]), df=df, chosen=chosen, rule=rule,
                          alpha=float(alpha), rule_p=float(rule_p), k=len(y), level=float(level), pet=pet,
                          peese=peese)


# ------------------------------------------------------------------------------------------------- cumulative


@dataclass(frozen=True)
class CumulativeResult(WithConventions):
    """A cumulative meta-analysis: row i pools the first i studies in the given order.

    ``table`` columns: study, order (the sorting key), k, estimate, se, stat, p, ci_low, ci_high, q, q_p, tau2,
    i2 (percent), h2. ``test_used`` per row is in the table as well (t/HKSJ falls back to z for one study, as
    metafor does).
    """

    table: pd.DataFrame
    conventions: Conventions
    decreasing: bool
    order_given: bool

    def to_frame(self) -> pd.DataFrame:
        return self.table.copy()

    def __repr__(self) -> str:
        t = self.table
        body = t[["study", "order", "k", "estimate", "ci_low", "ci_high", "p", "tau2", "i2"]].to_string(
            index=False, float_format=lambda x: f"{x:.4f}")
        how = (f"ordered by the key, {'decreasing' if self.decreasing else 'increasing'}" if self.order_given
               else "in the given order")
        return "\n".join([f"Cumulative meta-analysis (k = {len(t)}; {how})", "", body, "",
                          "Conventions: " + self.conventions.describe()])

    def _repr_html_(self) -> str:
        return (f"<div><p>Cumulative meta-analysis (k = {len(self.table)})</p>"
                + self.table.to_html(index=False, float_format=lambda x: f"{x:.4f}")
                + f"<p><small>{html.escape(self.conventions.describe())}</small></p></div>")


def cumulative(yi, vi, *, order=None, decreasing: bool = False, labels=None, method: str | None = None,
               test: str | None = None, level: float | None = None, adhoc: bool | None = None,
               preset: str | None = None) -> CumulativeResult:
    """Cumulative meta-analysis: the studies sorted by ``order`` (e.g. year of publication; ties keep their given
    order), then pooled one study at a time.

    Parameters
    ----------
    yi, vi : array-like
        Effect sizes and sampling variances, one per study.
    order : array-like, optional
        A sorting key per study (year, sample size, ...); default: the given order.
    decreasing : bool
        Sort the key from largest to smallest.
    labels : sequence of str, optional
        Study labels (default "1", "2", ... in the given order, as metafor's ids).
    method, test, level, adhoc, preset
        As :func:`pool` (REML and Wald z by default).

    Returns
    -------
    CumulativeResult
        One row per step: the pooled estimate, CI, test, Q, tau^2, I^2 and H^2 of the first i studies.

    Validated against: metafor 3.8 ``cumul(rma(yi, vi, method=, test=), order = year)`` (every column).
    """
    y, v = check_studies(yi, vi, what="cumulative meta-analysis")
    k = len(y)
    names = _labels(labels, k)
    key = np.arange(k) if order is None else np.asarray(order)
    if key.shape != (k,):
        raise ValueError(f"order must give one sorting key per study ({k}); got shape {key.shape}")
    if key.dtype.kind in "fc" and np.isnan(key).any():
        raise ValueError(f"order has missing values at positions {np.flatnonzero(np.isnan(key))[:5].tolist()}")
    try:
        rank = np.unique(key, return_inverse=True)[1].ravel()  # numbers, dates or text alike
    except TypeError:
        raise ValueError("order must hold keys of one kind that can be sorted (numbers, dates or text)") from None
    idx = np.argsort(-rank if decreasing else rank, kind="stable")  # ties keep the given order, as R's order()
    ys, vs = y[idx], v[idx]
    tri = np.tril(np.ones((k, k), bool))
    Y = np.where(tri, ys[None, :], np.nan)
    V = np.where(tri, vs[None, :], np.nan)
    r = pool_many(Y, V, method=method, test=test, level=level, adhoc=adhoc, preset=preset, tau2_ci=False)
    table = pd.DataFrame({
        "study": [names[i] for i in idx], "order": key[idx], "k": r.k, "estimate": r.estimate, "se": r.se,
        "stat": r.stat, "p": r.p, "ci_low": r.ci_low, "ci_high": r.ci_high, "q": r.q, "q_p": r.q_p, "tau2": r.tau2,
        "i2": r.i2, "h2": r.h2, "test_used": r.test_used,
    })
    return CumulativeResult(table=table, conventions=r.conventions, decreasing=bool(decreasing),
                            order_given=order is not None)


# ----------------------------------------------------------------------------------------------------- Baujat


@dataclass(frozen=True)
class BaujatResult(PrintedResult):
    """The data of a Baujat plot: ``table`` with study, x (contribution to the heterogeneity: squared Pearson
    residual ``(yi - estimate)^2 / (vi + tau^2)``, which for the common-effect model sums to Q) and y (influence on
    the pooled estimate: the squared change of the estimate when the study is left out, over the variance of the
    leave-one-out estimate)."""

    table: pd.DataFrame
    estimate: float
    tau2: float
    q: float
    conventions: Conventions

    @property
    def method(self) -> str:
        return self.conventions.method

    def to_frame(self) -> pd.DataFrame:
        return self.table.copy()

    def __repr__(self) -> str:
        return "\n".join([f"Baujat diagnostics (k = {len(self.table)}; estimate = {self.estimate:.4f}, "
                          f"tau^2 = {self.tau2:.4f}, Q = {self.q:.4f})", "",
                          self.table.to_string(index=False, float_format=lambda x: f"{x:.4f}"), "",
                          "x: contribution to heterogeneity; y: influence on the pooled estimate",
                          "Conventions: " + self.conventions.describe()])



def baujat(yi, vi, *, labels=None, method: str | None = None, test: str | None = None, level: float | None = None,
           adhoc: bool | None = None, preset: str | None = None) -> BaujatResult:
    """Each study's contribution to the heterogeneity (x) and influence on the pooled result (y), as metafor's
    ``baujat``.

    x_i = (y_i - mu)^2 / (v_i + tau^2) with the full model's estimate mu and tau^2 (for a common-effect model the
    x_i sum to Q); y_i = (mu_(-i) - mu)^2 / Var(mu_(-i)), with the estimate and its variance from the model refitted
    without study i (tau^2 re-estimated; under Knapp-Hartung the variance is the rescaled one, as metafor).

    Parameters
    ----------
    yi, vi : array-like
        Effect sizes and sampling variances, one per study (at least 2).
    labels : sequence of str, optional
        Study labels (default "1", "2", ...).
    method, test, level, adhoc, preset
        The model, as :func:`pool` (REML and Wald z by default).

    Returns
    -------
    BaujatResult
        ``table`` with study, x and y; the full model's estimate, tau^2 and Q.

    Validated against: metafor 3.8 ``baujat(rma(yi, vi, method=, test=))`` (its returned x and y).
    """
    y, v = check_studies(yi, vi, what="Baujat diagnostics")
    k = len(y)
    if k < 2:
        raise ValueError("Baujat diagnostics need at least 2 studies")
    names = _labels(labels, k)
    full = pool(y, v, method=method, test=test, level=level, adhoc=adhoc, preset=preset)
    keep = ~np.eye(k, dtype=bool)
    loo = pool_many(np.where(keep, y[None, :], np.nan), np.where(keep, v[None, :], np.nan), method=method,
                    test=test, level=level, adhoc=adhoc, preset=preset, tau2_ci=False)
    x = (y - full.estimate) ** 2 / (v + full.tau2)
    infl = (loo.estimate - full.estimate) ** 2 / loo.se**2
    table = pd.DataFrame({"study": names, "x": x, "y": infl})
    return BaujatResult(table=table, estimate=full.estimate, tau2=full.tau2, q=full.q, conventions=full.conventions)

"""The Vevea-Hedges step-function selection model (metafor ``selmodel(type = "stepfun")``), fitted by maximum
likelihood.

Studies are assumed to be published with a probability that depends only on the interval their (one-sided by
default) p-value falls in: relative probability ``delta_j`` in interval j of ``steps``, with ``delta_1 = 1`` for
the first interval (the most significant results). The effects follow the random-effects model ``N(mu, vi +
tau^2)``, weighted by ``delta`` and renormalised, so the fit estimates mu and tau^2 adjusted for that selection,
and the deltas. The likelihood-ratio test against the model without selection (all delta = 1) tests for it.

With moderators (``mods=``) the mean of study i is ``X_i beta`` (the location model of metafor's ``selmodel`` on
``rma(yi, vi, mods =)``): tau^2 becomes the residual heterogeneity, the deltas are as before (the p-values that drive
selection are still those of yi against 0), and the likelihood-ratio test for selection is against the same
meta-regression without selection. As metafor, the fit runs on scaled moderators (continuous columns centred and
divided by their SD), and coefficients and their covariance are transformed back.

Validated against metafor 3.8 ``selmodel`` (tests/reference/make_robust_reference.R -> robust_reference.json).
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
from scipy import optimize, stats

from .printing import PrintedResult, format_p
from .bias import MIN_K_BIAS, TooFewTrials, check_studies
from .pooling import pool
from .regression import design_matrix, meta_regression

__all__ = ["SelectionModelResult", "selection_model", "EmptyIntervalError", "ALTERNATIVES"]

ALTERNATIVES = {
    "greater": "one-sided p-values, small when the effect is positive: p = 1 - Phi(yi / sei)",
    "less": "one-sided p-values, small when the effect is negative: p = Phi(yi / sei)",
    "two-sided": "two-sided p-values: p = 2 (1 - Phi(|yi| / sei))",
}
DELTA_MAX = 100.0  # metafor's bounds for the step function's deltas: [0, 100], reached through a logistic map
_ALT_ALIASES = {"two.sided": "two-sided", "two_sided": "two-sided"}


class EmptyIntervalError(ValueError):
    """An interval of p-values without any study: its selection weight cannot be estimated."""


# ---------------------------------------------------------------------------------------------- likelihood


def _pvalues(y: np.ndarray, v: np.ndarray, alternative: str) -> np.ndarray:
    z = y / np.sqrt(v)
    if alternative == "two-sided":
        return 2 * stats.norm.sf(np.abs(z))
    return stats.norm.sf(z) if alternative == "greater" else stats.norm.cdf(z)


def _segments(v: np.ndarray, steps: np.ndarray, alternative: str) -> list[list[tuple[np.ndarray, np.ndarray]]]:
    """For every interval j, the pieces [lo, hi) of the effect axis (per study) whose p-value falls in it."""
    sei = np.sqrt(v)[:, None]
    s = np.concatenate([[0.0], steps])
    n = len(steps)
    if alternative == "greater":  # p <= s  <=>  y >= sei * z_(1-s)
        c = sei * stats.norm.isf(s)[None, :]  # c_0 = +inf ... c_N = -inf
        return [[(c[:, j + 1], c[:, j])] for j in range(n)]
    if alternative == "less":  # p <= s  <=>  y <= sei * z_s
        d = sei * stats.norm.ppf(s)[None, :]
        return [[(d[:, j], d[:, j + 1])] for j in range(n)]
    e = sei * stats.norm.isf(s / 2)[None, :]  # |y| >= e: e_0 = +inf ... e_N = 0
    return [[(e[:, j + 1], e[:, j]), (-e[:, j], -e[:, j + 1])] for j in range(n)]


def _phi_diff(a_lo: np.ndarray, a_hi: np.ndarray) -> np.ndarray:
    """Phi(a_hi) - Phi(a_lo), with the upper tail used where both are positive (no cancellation)."""
    upper = a_lo > 0
    return np.where(upper, stats.norm.sf(a_lo) - stats.norm.sf(a_hi), stats.norm.cdf(a_hi) - stats.norm.cdf(a_lo))


def _dens_terms(a: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """phi(a) and a * phi(a), both 0 at infinite a."""
    fin = np.isfinite(a)
    af = np.where(fin, a, 0.0)
    ph = np.where(fin, stats.norm.pdf(af), 0.0)
    return ph, af * ph


@dataclass
class _Model:
    y: np.ndarray
    v: np.ndarray
    grp: np.ndarray  # interval of each study (0-based)
    segs: list
    n: int
    X: np.ndarray | None = None  # design matrix (k x p); None: the mean is one number (p = 1)

    @property
    def p(self) -> int:
        return 1 if self.X is None else self.X.shape[1]

    def loglik(self, beta, tau2: float, delta: np.ndarray, grad: bool = False):
        """Log-likelihood and (optionally) its gradient in (beta, tau2, delta_1..delta_N); without a design matrix
        ``beta`` is the mean mu, else the means are ``X @ beta``."""
        y, v = self.y, self.v
        mu = beta if self.X is None else self.X @ beta
        s2 = v + tau2
        s = np.sqrt(s2)
        P = np.empty((len(y), self.n))
        dPm = np.zeros_like(P)
        dPt = np.zeros_like(P)
        for j, pieces in enumerate(self.segs):
            P[:, j] = 0.0
            for lo, hi in pieces:
                a_lo, a_hi = (lo - mu) / s, (hi - mu) / s
                P[:, j] += _phi_diff(a_lo, a_hi)
                if grad:
                    ph_lo, aph_lo = _dens_terms(a_lo)
                    ph_hi, aph_hi = _dens_terms(a_hi)
                    dPm[:, j] += -(ph_hi - ph_lo) / s
                    dPt[:, j] += -(aph_hi - aph_lo) / (2 * s2)
        A = P @ delta
        r = y - mu
        ll = float(np.sum(np.log(delta[self.grp]) - 0.5 * np.log(2 * np.pi * s2) - 0.5 * r**2 / s2 - np.log(A)))
        if not grad:
            return ll
        if self.X is None:
            g_mu = [np.sum(r / s2 - (dPm @ delta) / A)]
        else:
            g_mu = self.X.T @ (r / s2 - (dPm @ delta) / A)
        g_t2 = np.sum(-0.5 / s2 + 0.5 * r**2 / s2**2 - (dPt @ delta) / A)
        counts = np.bincount(self.grp, minlength=self.n)
        g_delta = counts / delta - (P / A[:, None]).sum(axis=0)
        return ll, np.concatenate([g_mu, [g_t2], g_delta])


def _to_delta(x: np.ndarray) -> np.ndarray:
    return DELTA_MAX / (1 + np.exp(-x))


def _fit(model: _Model, beta0, tau2_0: float | None, *, estimate_tau2: bool):
    """Maximise over beta, log tau^2 (when estimated) and the logits of delta_2..delta_N (metafor's scales).
    Returns (beta, tau2, delta, loglik, converged); beta is a float without a design matrix, else an array."""
    nd = model.n - 1
    p = model.p

    def unpack(th):
        beta = th[0] if model.X is None else th[:p]
        tau2 = float(np.exp(th[p])) if estimate_tau2 else 0.0
        xd = th[p + estimate_tau2:]
        delta = np.concatenate([[1.0], _to_delta(xd)])
        return beta, tau2, delta, xd

    def negll(th):
        beta, tau2, delta, xd = unpack(th)
        if estimate_tau2 and tau2 < np.finfo(float).eps * 10:
            tau2 = 0.0
        ll, g = model.loglik(beta, tau2, delta, grad=True)
        gd = g[p + 2:] * delta[1:] * (DELTA_MAX - delta[1:]) / DELTA_MAX
        gt = [g[p] * tau2] if estimate_tau2 else []
        return -ll, -np.concatenate([g[:p], gt, gd])

    start = (list(np.atleast_1d(beta0)) + ([np.log(tau2_0 + 0.001)] if estimate_tau2 else [])
             + [np.log(1 / (DELTA_MAX - 1))] * nd)
    th = np.asarray(start, float)
    ok = False
    for _ in range(3):  # restart BFGS from its own end point: its inverse-Hessian guess resets
        res = optimize.minimize(negll, th, jac=True, method="BFGS", options={"gtol": 1e-10, "maxiter": 10000})
        ok = bool(res.success) or np.max(np.abs(res.jac)) < 1e-6
        if np.allclose(res.x, th, rtol=1e-12, atol=1e-12):
            th = res.x
            break
        th = res.x
    beta, tau2, delta, _ = unpack(th)
    if estimate_tau2 and tau2 < np.finfo(float).eps * 10:
        tau2 = 0.0
    beta = float(beta) if model.X is None else np.array(beta, float)
    return beta, float(tau2), delta, model.loglik(beta, tau2, delta), ok


def _standardise(X: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """metafor's ``scaleX``: every column but the intercept (first) and the 0/1 dummies centred and divided by its
    SD. Returns the scaled matrix and M with ``beta = M @ beta_scaled`` (so ``X @ M == X_scaled``)."""
    Xs, M = X.copy(), np.eye(X.shape[1])
    for j in range(1, X.shape[1]):
        col = X[:, j]
        if np.all((col == 0) | (col == 1)):
            continue
        mean, sd = col.mean(), col.std(ddof=1)
        Xs[:, j] = (col - mean) / sd
        M[0, j], M[j, j] = -mean / sd, 1 / sd
    return Xs, M


def _num_hessian(fun, x: np.ndarray, rel: float = 1e-4, i_tau2: int = 1) -> np.ndarray:
    """Hessian from an analytic gradient by central differences with one Richardson step (``x[i_tau2]`` is tau^2,
    never stepped below 0)."""
    p = len(x)
    H = np.empty((p, p))
    for i in range(p):
        h = rel * max(abs(x[i]), 1e-2)
        if i == i_tau2 and x[i] > 0:  # never step tau^2 below 0
            h = min(h, 0.25 * x[i])

        def d(hh, i=i):
            e = np.zeros(p)
            e[i] = hh
            return (fun(x + e) - fun(x - e)) / (2 * hh)

        H[:, i] = (4 * d(h / 2) - d(h)) / 3
    return (H + H.T) / 2


# -------------------------------------------------------------------------------------------------- results


@dataclass(frozen=True, repr=False)
class SelectionModelResult(PrintedResult):
    """A fitted step-function selection model.

    ``estimate`` ... ``ci_high`` are the selection-adjusted mean effect with Wald z inference from the observed
    information (the inverse numerical Hessian, as metafor); ``tau2`` with its SE and Wald CI (truncated at 0);
    ``intervals`` holds one row per interval of p-values: its bounds, the number of studies ``k``, the selection
    weight ``delta`` (relative to the first interval, fixed at 1), its SE, the z test of delta = 1 and the CI
    (truncated at 0). ``lrt`` is the likelihood-ratio test of the selection model against the same model without
    selection (``lrt_df`` free deltas); ``lrt_tau2`` tests tau^2 = 0 within the selection model (ML only).

    ``coefficients`` has one row per coefficient (index ``term``: estimate, se, zval, p, ci_low, ci_high); without
    moderators its single row ``intrcpt`` repeats ``estimate`` ... ``ci_high``. With moderators (``moderators``
    names the terms) there is no single adjusted mean: ``estimate`` ... ``ci_high`` are NaN unless the design is
    the intercept alone, ``qm`` is the Wald test of every coefficient but the intercept (chi-square on ``qm_df``),
    ``tau2`` is the residual heterogeneity and ``lrt`` tests against the meta-regression without selection.
    ``vcov`` is the inverse observed information over (coefficients, tau^2 unless fixed or at 0, delta_2..N).
    """

    estimate: float
    se: float
    zval: float
    p: float
    ci_low: float
    ci_high: float
    tau2: float
    tau2_se: float
    tau2_ci_low: float
    tau2_ci_high: float
    loglik: float
    loglik_unadjusted: float
    lrt: float
    lrt_df: int
    lrt_p: float
    lrt_tau2: float
    lrt_tau2_p: float
    k: int
    steps: tuple[float, ...]
    alternative: str
    method: str
    level: float
    converged: bool
    intervals: pd.DataFrame = field(repr=False)
    vcov: np.ndarray = field(repr=False)
    notes: tuple[str, ...] = ()
    coefficients: pd.DataFrame | None = field(default=None, repr=False)
    moderators: tuple[str, ...] = ()
    qm: float = float("nan")
    qm_df: int = 0
    qm_p: float = float("nan")

    @property
    def beta(self) -> pd.Series:
        """The coefficients' estimates, indexed by term."""
        return self.coefficients["estimate"]

    @property
    def delta(self) -> np.ndarray:
        return self.intervals["delta"].to_numpy()

    @property
    def delta_se(self) -> np.ndarray:
        return self.intervals["se"].to_numpy()

    def to_frame(self) -> pd.DataFrame:
        """One row per parameter: the adjusted estimate, tau^2 and each interval's delta (estimate, se, z, p, CI,
        studies in the interval). With moderators, one row per coefficient (named by its term) replaces
        ``estimate``."""
        if self.moderators:
            rows = [{"parameter": term, "interval": "", "k": self.k, "estimate": r.estimate, "se": r.se,
                     "stat": r.zval, "p": r.p, "ci_low": r.ci_low, "ci_high": r.ci_high}
                    for term, r in zip(self.coefficients.index, self.coefficients.itertuples())]
        else:
            rows = [{"parameter": "estimate", "interval": "", "k": self.k, "estimate": self.estimate, "se": self.se,
                     "stat": self.zval, "p": self.p, "ci_low": self.ci_low, "ci_high": self.ci_high}]
        if self.method != "FE":
            rows.append({"parameter": "tau2", "interval": "", "k": self.k, "estimate": self.tau2, "se": self.tau2_se,
                         "stat": np.nan, "p": np.nan, "ci_low": self.tau2_ci_low, "ci_high": self.tau2_ci_high})
        for j, r in enumerate(self.intervals.itertuples()):
            rows.append({"parameter": f"delta{j + 1}", "interval": r.interval, "k": r.k, "estimate": r.delta,
                         "se": r.se, "stat": r.zval, "p": r.p, "ci_low": r.ci_low, "ci_high": r.ci_high})
        out = pd.DataFrame(rows)
        out["alternative"], out["method"], out["level"] = self.alternative, self.method, self.level
        return out

    def _lines(self) -> list[str]:
        lvl = f"{100 * self.level:g}%"
        model = "common-effect" if self.method == "FE" else "random-effects (ML)"
        if self.moderators:
            lines = [f"Step-function selection model (Vevea & Hedges 1995), {model} meta-regression, k = {self.k}",
                     "", "Coefficients (selection-adjusted; Wald z):",
                     self.coefficients.to_string(float_format=lambda x: f"{x:.4f}")]
            if self.qm_df:
                lines.append(f"Test of moderators (every coefficient but the intercept): QM({self.qm_df}) = "
                             f"{self.qm:.4f}, p {format_p(self.qm_p)}")
        else:
            lines = [f"Step-function selection model (Vevea & Hedges 1995), {model}, k = {self.k}", "",
                     f"adjusted estimate = {self.estimate:.4f}  se = {self.se:.4f}  z = {self.zval:.4f}  "
                     f"p {format_p(self.p)}",
                     f"{lvl} CI: [{self.ci_low:.4f}, {self.ci_high:.4f}]"]
        if self.method != "FE":
            residual = " (residual)" if self.moderators else ""
            lines.append(f"tau^2{residual} = {self.tau2:.4f} (SE = {self.tau2_se:.4f}; {lvl} CI "
                         f"[{self.tau2_ci_low:.4f}, {self.tau2_ci_high:.4f}]); test of tau^2 = 0: "
                         f"LRT = {self.lrt_tau2:.4f}, p {format_p(self.lrt_tau2_p)}")
        against = " (against the same meta-regression without selection)" if self.moderators else ""
        lines += [f"Test for selection: LRT({self.lrt_df}) = {self.lrt:.4f}, p {format_p(self.lrt_p)}{against}", "",
                  self.intervals.to_string(index=False, float_format=lambda x: f"{x:.4f}"), "",
                  f"Conventions: steps = {list(self.steps)}; p-values: {ALTERNATIVES[self.alternative]}; "
                  f"delta_1 fixed at 1, others in [0, {DELTA_MAX:g}]; Wald CIs from the observed information; "
                  f"level: {self.level:g}"
                  + ("; moderators: mu_i = X_i beta, an intercept added, non-numeric columns treatment-coded with "
                     "the first sorted level as reference" if self.moderators else "")]
        lines += ["Note: " + n for n in self.notes]
        return lines



# ------------------------------------------------------------------------------------------------------ API


def selection_model(yi, vi, *, mods=None, steps=(0.025, 1.0), alternative: str = "greater", method: str = "ML",
                    level: float = 0.95, on_empty: str = "error", min_k: int | None = MIN_K_BIAS,
                    ) -> SelectionModelResult:
    """Vevea-Hedges step-function selection model, fitted by maximum likelihood.

    Parameters
    ----------
    yi, vi : array-like
        Effect sizes and sampling variances.
    mods : DataFrame, mapping or array, optional
        Moderators, as :func:`meta_regression`: the mean of study i is ``X_i beta`` (a location model), with an
        intercept added and non-numeric columns treatment-coded (first sorted level as reference, as R's
        ``factor``); coefficient names are kept. tau^2 and the selection weights are as without moderators, and
        the p-values that drive selection are still those of ``yi`` against 0. One row per study, finite, and not
        collinear with the intercept or each other.
    steps : sequence of float
        Upper bounds of the p-value intervals, increasing in (0, 1]; 1 is added when missing. The default
        (0.025, 1) separates results significant at 5% two-sided in the expected direction from the rest.
    alternative : {"greater", "less", "two-sided"}
        Which p-values drive selection: one-sided favouring positive effects (metafor's default), one-sided
        favouring negative effects (use it when negative effects are the "significant" direction, e.g. lower
        pain), or two-sided.
    method : {"ML", "FE"}
        Random-effects model with tau^2 by ML, or the common-effect model (tau^2 = 0). metafor refits any other
        estimator by ML, so only these two are offered.
    level : float
        Confidence level of the Wald intervals.
    on_empty : {"error", "warn"}
        An interval without studies gives its weight nothing to be estimated from. "error" (default) refuses with
        ``EmptyIntervalError`` naming the interval. "warn" fits anyway, as metafor does, when only the first
        interval (whose weight is fixed at 1) is empty; the other weights then run to a bound. An empty interval
        with an estimated weight is always refused (as metafor does).
    min_k : int or None
        Refuse (``TooFewTrials``) below this many trials (10).

    Returns
    -------
    SelectionModelResult

    Validated against: metafor 3.8 ``selmodel(rma(yi, vi, mods =, method = "ML" | "FE"), type = "stepfun",
    steps =, alternative =)``, maximised there with ``control = list(reltol = 1e-15)``
    (tests/reference/make_robust_reference.R).
    """
    y, v = check_studies(yi, vi, min_k=min_k, what="The selection model")
    alternative = _ALT_ALIASES.get(alternative, alternative)
    if alternative not in ALTERNATIVES:
        raise ValueError(f"alternative must be one of {', '.join(map(repr, ALTERNATIVES))}; got {alternative!r}")
    m = str(method).upper()
    m = {"EE": "FE", "CE": "FE"}.get(m, m)
    if m not in ("ML", "FE"):
        raise ValueError(f"method must be 'ML' (random effects) or 'FE' (common effect); got {method!r}. metafor "
                         "refits every other estimator by ML before fitting a selection model")
    if not 0 < level < 1:
        raise ValueError(f"level must be in (0, 1); got {level!r}")
    if on_empty not in ("error", "warn"):
        raise ValueError(f"on_empty must be 'error' or 'warn'; got {on_empty!r}")
    st = np.asarray(steps, float).ravel()
    if st.size == 0 or not np.isfinite(st).all() or (st <= 0).any() or (st > 1).any():
        raise ValueError(f"steps must be p-values in (0, 1]; got {list(np.atleast_1d(steps))}")
    st = np.unique(st)
    if st[-1] != 1:
        st = np.append(st, 1.0)
    if len(st) < 2:
        raise ValueError("steps must cut the p-values into at least two intervals, e.g. steps=(0.025, 1)")
    k, n = len(y), len(st)
    if mods is None:
        X, names, p = None, ["intrcpt"], 1
    else:
        X, names = _moderators(mods, k)
        p = X.shape[1]
    n_free = (m == "ML") + p + (n - 1)
    if k < n_free:
        what = f"{p} coefficients, " if mods is not None else ""
        raise TooFewTrials(f"{k} studies cannot estimate the {n_free} parameters of this selection model ({what}"
                           f"{'tau^2 and ' if m == 'ML' else ''}{n - 1} selection weight{'s' * (n > 2)})")

    pv = _pvalues(y, v, alternative)
    grp = np.searchsorted(st, pv, side="left")  # first j with p <= steps[j]
    counts = np.bincount(grp, minlength=n)
    left = np.concatenate([[0.0], st[:-1]])
    labels = [f"{lo:g} < p <= {hi:g}" for lo, hi in zip(left, st)]
    notes = []
    empty = [labels[j] for j in range(n) if counts[j] == 0]
    if empty:
        free_empty = [labels[j] for j in range(1, n) if counts[j] == 0]
        msg = (f"no study has a p-value in {', '.join(empty)} (p-values: {ALTERNATIVES[alternative]}; counts per "
               f"interval {dict(zip(labels, counts.tolist()))})")
        if free_empty or on_empty == "error":
            raise EmptyIntervalError(msg + ": the selection weight of an empty interval cannot be estimated. "
                                     "Choose other steps, or the other alternative if the effects point the other way"
                                     + ("" if free_empty else "; on_empty='warn' fits anyway, as metafor does"))
        warnings.warn(msg + "; fitted anyway (on_empty='warn'): the weights are relative to an empty interval and "
                      "will run to a bound", UserWarning, stacklevel=2)
        notes.append(msg)

    if X is None:
        base = pool(y, v, method=m)
        beta0, tau2_0, ll_unadj, Xs, M = base.estimate, base.tau2, float(base.loglik), None, None
    else:
        # the same meta-regression without selection: start of the fit and the null model of the LRT. The fit runs
        # on metafor's scaled moderators (beta = M @ beta_scaled), as metafor does, for a better-conditioned problem
        base = meta_regression(y, v, X[:, 1:], method=m)
        Xs, M = _standardise(X)
        beta0, tau2_0 = np.linalg.solve(M, base.coefficients["estimate"].to_numpy()), base.tau2
        ll_unadj = float(base.loglik)
    model = _Model(y=y, v=v, grp=grp, segs=_segments(v, st, alternative), n=n, X=Xs)
    est_tau2 = m == "ML"
    mu, tau2, delta, ll, ok = _fit(model, beta0, tau2_0, estimate_tau2=est_tau2)
    on_boundary = est_tau2 and tau2 < 1e-10 * float(np.median(v))
    if est_tau2:
        mu0, _, delta0, ll0_tau, _ = _fit(model, mu, 0.0, estimate_tau2=False)
        if on_boundary or ll0_tau >= ll:
            mu, tau2, delta, ll, on_boundary = mu0, 0.0, delta0, ll0_tau, True
        lrt_tau2 = max(0.0, -2 * (ll0_tau - ll))
        lrt_tau2_p = float(stats.chi2.sf(lrt_tau2, 1))
    else:
        lrt_tau2 = lrt_tau2_p = float("nan")
    if not ok:
        notes.append("the optimiser stopped before the gradient fell below its tolerance; treat with caution")

    # observed information on the natural scale (beta, tau2, delta_2..N), as metafor (numDeriv on -ll); with
    # moderators on the scaled coefficients, then transformed (as metafor)
    use_t2 = est_tau2 and not on_boundary

    def grad_nat(x):
        b = x[0] if X is None else x[:p]
        t2 = x[p] if use_t2 else 0.0
        d = np.concatenate([[1.0], x[p + use_t2:]])
        g = model.loglik(b, t2, d, grad=True)[1]
        return -np.concatenate([g[:p], [g[p]] if use_t2 else [], g[p + 2:]])

    x_hat = np.concatenate([np.atleast_1d(mu), [tau2] if use_t2 else [], delta[1:]])
    H = _num_hessian(grad_nat, x_hat, i_tau2=p)
    try:
        V = np.linalg.inv(H)
        if not np.all(np.isfinite(V)) or np.any(np.diag(V) < 0):
            raise np.linalg.LinAlgError
    except np.linalg.LinAlgError:
        V = np.full_like(H, np.nan)
        notes.append("the Hessian could not be inverted: no standard errors")
    if X is not None:
        T = np.eye(len(x_hat))
        T[:p, :p] = M
        V = T @ V @ T.T
        mu = M @ mu
    crit = stats.norm.ppf(1 - (1 - level) / 2)
    b_se = np.sqrt(np.diag(V)[:p])
    tau2_se = float(np.sqrt(V[p, p])) if use_t2 else float("nan")
    d_se = np.concatenate([[np.nan], np.sqrt(np.diag(V)[p + use_t2:])])
    if on_boundary:
        notes.append("tau^2 is estimated at 0 (boundary): its SE is not given and the other SEs treat it as fixed")
    b_z = np.atleast_1d(mu) / b_se
    coefficients = pd.DataFrame({"estimate": np.atleast_1d(mu), "se": b_se, "zval": b_z,
                                 "p": 2 * stats.norm.sf(np.abs(b_z)), "ci_low": np.atleast_1d(mu) - crit * b_se,
                                 "ci_high": np.atleast_1d(mu) + crit * b_se}, index=pd.Index(names, name="term"))
    qm, qm_p = float("nan"), float("nan")
    if p > 1:
        bb = np.asarray(mu)[1:]
        with np.errstate(invalid="ignore"):
            qm = float(bb @ np.linalg.solve(V[1:p, 1:p], bb)) if np.isfinite(V[1:p, 1:p]).all() else float("nan")
        qm_p = float(stats.chi2.sf(qm, p - 1))
    if p == 1:
        est, se, z = float(np.atleast_1d(mu)[0]), float(b_se[0]), float(b_z[0])
    else:
        est = se = z = float("nan")
    with np.errstate(invalid="ignore", divide="ignore"):
        dz = (delta - 1) / d_se
    at_bound = (delta[1:] <= np.finfo(float).eps ** 0.25) | (delta[1:] >= DELTA_MAX - 100 * np.finfo(float).eps ** 0.25)
    if at_bound.any():
        msg = (f"delta of {', '.join(labels[j + 1] for j in np.flatnonzero(at_bound))} is at its bound (0 or "
               f"{DELTA_MAX:g}): treat the results with caution")
        warnings.warn(msg, UserWarning, stacklevel=2)
        notes.append(msg)
    intervals = pd.DataFrame({
        "interval": labels, "k": counts, "delta": delta, "se": d_se, "zval": dz,
        "p": 2 * stats.norm.sf(np.abs(dz)), "ci_low": np.maximum(delta - crit * d_se, 0.0),
        "ci_high": delta + crit * d_se})
    intervals.loc[0, ["se", "zval", "p", "ci_low", "ci_high"]] = np.nan
    intervals.loc[0, "delta"] = 1.0
    lrt = max(0.0, -2 * (ll_unadj - ll))
    return SelectionModelResult(
        estimate=est, se=se, zval=z, p=float(2 * stats.norm.sf(abs(z))), ci_low=est - crit * se,
        ci_high=est + crit * se, tau2=tau2, tau2_se=tau2_se,
        tau2_ci_low=max(0.0, tau2 - crit * tau2_se) if use_t2 else float("nan"),
        tau2_ci_high=tau2 + crit * tau2_se if use_t2 else float("nan"), loglik=float(ll),
        loglik_unadjusted=ll_unadj, lrt=lrt, lrt_df=n - 1, lrt_p=float(stats.chi2.sf(lrt, n - 1)),
        lrt_tau2=float(lrt_tau2), lrt_tau2_p=float(lrt_tau2_p), k=k, steps=tuple(float(s) for s in st),
        alternative=alternative, method=m, level=float(level), converged=ok, intervals=intervals, vcov=V,
        notes=tuple(notes), coefficients=coefficients, moderators=tuple(names) if mods is not None else (),
        qm=qm, qm_df=p - 1, qm_p=qm_p)


def _moderators(mods, k: int) -> tuple[np.ndarray, list[str]]:
    """The design matrix (intercept first) and its column names, or a ValueError naming what is wrong with ``mods``
    and what is expected."""
    if isinstance(mods, (pd.DataFrame, pd.Series)) or hasattr(mods, "keys"):
        frame = pd.DataFrame(mods) if not isinstance(mods, pd.Series) else mods.to_frame(name=mods.name or "x")
        n_rows = len(frame)
    else:
        try:
            arr = np.asarray(mods, dtype=float)
        except (TypeError, ValueError) as exc:
            raise ValueError("mods must be numeric when given as an array (a DataFrame dummy-codes text columns); "
                             f"could not convert: {exc}") from None
        if arr.ndim not in (1, 2):
            raise ValueError(f"mods must be one column (1-D) or one column per moderator (2-D); got {arr.ndim}-D")
        n_rows = arr.shape[0]
        if np.isinf(arr).any():
            rows = np.flatnonzero(np.isinf(arr.reshape(n_rows, -1)).any(axis=1))[:10].tolist()
            raise ValueError(f"mods have infinite values in rows {rows}; every moderator must be finite")
    if n_rows != k:
        raise ValueError(f"mods have {n_rows} rows but there are {k} studies: one row per study is expected, in "
                         "the order of yi")
    try:
        X, names = design_matrix(mods, k, intercept=True)
    except ValueError as exc:
        hint = ("; drop a column that is constant or a linear combination of the others (an intercept is always "
                "added)") if "collinear" in str(exc) else ""
        raise ValueError(f"mods: {exc}{hint}") from None
    if not np.isfinite(X).all():
        rows = np.flatnonzero(~np.isfinite(X).all(axis=1))[:10].tolist()
        raise ValueError(f"mods have infinite values in rows {rows}; every moderator must be finite")
    return X, names

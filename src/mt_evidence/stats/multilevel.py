"""A multilevel model for effects measured on the same trials at several follow-ups.

``fit_random_intercept`` fits y = X b + u_trial + e with u ~ N(0, sigma^2) shared by a trial's estimates and
e ~ N(0, V), V block-diagonal with the within-trial covariance of a trial's estimates (known or assumed), by
restricted maximum likelihood over sigma^2 >= 0 (a bounded one-dimensional search, global on a grid first).

Validated against: metafor 3.8 ``rma.mv(yi, V, mods = ~ long, random = ~ 1 | trial, method = "REML")``.

``fit_window_heterogeneity`` lets the between-trial variance differ by follow-up window (short and long term
need not be equally heterogeneous): y = X b + u + e with u_i ~ N(0, tau2[window_i]) independent and e ~ N(0, V),
by REML over (tau2_short, tau2_long) >= 0, with t-based inference on k - p degrees of freedom.
Validated against: metafor 3.8 ``rma.mv(yi, V, mods = ~ long, random = ~ factor(long) | trial, struct = "DIAG",
method = "REML", test = "t")`` (tests/reference/window_model_reference.json).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy import optimize, stats


@dataclass(frozen=True)
class MultilevelResult:
    coefficients: pd.DataFrame  # estimate, se, stat, p, ci_low, ci_high by term
    sigma2: float
    loglik: float
    k: int
    n_groups: int
    level: float

    def __repr__(self) -> str:
        return (f"Multilevel model (REML; k = {self.k} estimates in {self.n_groups} trials; trial variance "
                f"sigma^2 = {self.sigma2:.4f})\n" + self.coefficients.to_string(float_format=lambda v: f"{v:.4f}"))


def _reml(y, S, X):
    """(restricted log-likelihood without constants, coefficients, their covariance) for marginal covariance S."""
    Si = np.linalg.inv(S)
    XtSiX = X.T @ Si @ X
    A = np.linalg.inv(XtSiX)
    b = A @ X.T @ Si @ y
    r = y - X @ b
    ll = -0.5 * (np.linalg.slogdet(S)[1] + np.linalg.slogdet(XtSiX)[1] + r @ Si @ r)
    return ll, b, A


def _parts(y, V, X, ZZ, s2):
    return _reml(y, V + s2 * ZZ, X)


def fit_random_intercept(yi, V, X, groups, *, names=None, level: float = 0.95) -> MultilevelResult:
    """REML fit with a random intercept per group (trial). ``V`` is the sampling covariance matrix."""
    y = np.asarray(yi, float)
    V = np.asarray(V, float)
    X = np.asarray(X, float)
    g = pd.factorize(pd.Series(list(groups)))[0]
    k, p = X.shape
    if V.shape != (k, k) or len(g) != k:
        raise ValueError(f"yi ({k}), V {V.shape} and groups ({len(g)}) do not match")
    if k - p < 1:
        raise ValueError(f"{k} estimates cannot fit {p} coefficients and a variance component")
    Z = (g[:, None] == np.arange(g.max() + 1)[None, :]).astype(float)
    ZZ = Z @ Z.T
    spread = float(np.var(y)) + float(np.max(np.diag(V)))
    ub = 10 * spread + 1e-8
    grid = np.concatenate([[0.0], ub * np.logspace(-8, 0, 60)])
    lls = np.array([_parts(y, V, X, ZZ, s)[0] for s in grid])
    j = int(np.argmax(lls))
    lo, hi = grid[max(j - 1, 0)], grid[min(j + 1, len(grid) - 1)]
    if hi > lo:
        res = optimize.minimize_scalar(lambda s: -_parts(y, V, X, ZZ, s)[0], bounds=(lo, hi), method="bounded",
                                       options={"xatol": 1e-12 * max(hi, 1.0), "maxiter": 2000})
        s2 = float(res.x) if -res.fun >= lls[j] else float(grid[j])
    else:
        s2 = float(grid[j])
    ll, b, A = _parts(y, V, X, ZZ, s2)
    se = np.sqrt(np.diag(A))
    z = b / se
    crit = stats.norm.ppf(1 - (1 - level) / 2)
    # metafor's REML log-likelihood constant: -(k - p)/2 log(2 pi) + 1/2 log|X'X|
    ll_full = ll - 0.5 * (k - p) * np.log(2 * np.pi) + 0.5 * np.linalg.slogdet(X.T @ X)[1]
    coef = pd.DataFrame({"estimate": b, "se": se, "stat": z, "p": 2 * stats.norm.sf(np.abs(z)),
                         "ci_low": b - crit * se, "ci_high": b + crit * se},
                        index=pd.Index(names or [f"b{i}" for i in range(p)], name="term"))
    return MultilevelResult(coef, s2, float(ll_full), k, int(g.max() + 1), level)


@dataclass(frozen=True)
class WindowModelResult:
    coefficients: pd.DataFrame  # estimate, se, stat (t), p, ci_low, ci_high by term
    tau2: tuple[float, ...]  # between-trial variance in each window, in the order of ``window_names``
    window_names: tuple[str, ...]
    loglik: float
    k: int
    n_groups: int
    df: int
    level: float

    def __repr__(self) -> str:
        taus = ", ".join(f"tau^2 {n} = {t:.4f}" for n, t in zip(self.window_names, self.tau2))
        return (f"Window-specific heterogeneity model (REML, t on {self.df} df; k = {self.k} estimates in "
                f"{self.n_groups} trials; {taus})\n"
                + self.coefficients.to_string(float_format=lambda v: f"{v:.4f}"))


def _parts_diag(y, V, X, w, tau2):
    return _reml(y, V + np.diag(np.asarray(tau2, float)[w]), X)


def fit_window_heterogeneity(yi, V, X, windows, groups, *, names=None, level: float = 0.95) -> WindowModelResult:
    """REML fit with a between-trial variance per window (see the module docstring); t-based inference.

    ``windows``: the window of each estimate (two or more distinct values); ``groups``: its trial (for counting).
    Raises ValueError when there are fewer than 3 trials or not more estimates than coefficients and variances.
    """
    y = np.asarray(yi, float)
    V = np.asarray(V, float)
    X = np.asarray(X, float)
    w, wnames = pd.factorize(pd.Series(list(windows)), sort=True)
    k, p = X.shape
    n_groups = len(set(groups))
    m = len(wnames)
    if n_groups < 3:
        raise ValueError(f"{n_groups} trial(s): the window-specific model needs 3 or more (docs/methods.md)")
    if k - p < m:
        raise ValueError(f"{k} estimates cannot fit {p} coefficients and {m} variance components")
    spread = float(np.var(y)) + float(np.max(np.diag(V)))
    ub = 10 * spread + 1e-8
    grid1 = np.concatenate([[0.0], ub * np.logspace(-6, 0, 13)])
    best = None
    for combo in np.array(np.meshgrid(*[grid1] * m)).T.reshape(-1, m):
        ll = _parts_diag(y, V, X, w, combo)[0]
        if best is None or ll > best[0]:
            best = (ll, combo)
    res = optimize.minimize(lambda t: -_parts_diag(y, V, X, w, t)[0], best[1], method="L-BFGS-B",
                            bounds=[(0.0, ub)] * m, options={"ftol": 1e-15, "gtol": 1e-12, "maxiter": 5000})
    tau2 = np.maximum(res.x, 0.0) if -res.fun >= best[0] else best[1]
    # polish each variance at the boundary: a tau^2 within numerical noise of 0 is 0
    for j in range(m):
        t0 = tau2.copy()
        t0[j] = 0.0
        if _parts_diag(y, V, X, w, t0)[0] >= _parts_diag(y, V, X, w, tau2)[0] - 1e-12:
            tau2 = t0
    ll, b, A = _parts_diag(y, V, X, w, tau2)
    se = np.sqrt(np.diag(A))
    df = k - p
    t = b / se
    crit = stats.t.ppf(1 - (1 - level) / 2, df)
    ll_full = ll - 0.5 * (k - p) * np.log(2 * np.pi) + 0.5 * np.linalg.slogdet(X.T @ X)[1]
    coef = pd.DataFrame({"estimate": b, "se": se, "stat": t, "p": 2 * stats.t.sf(np.abs(t), df),
                         "ci_low": b - crit * se, "ci_high": b + crit * se},
                        index=pd.Index(names or [f"b{i}" for i in range(p)], name="term"))
    return WindowModelResult(coef, tuple(float(x) for x in tau2), tuple(str(x) for x in wnames), float(ll_full),
                             k, n_groups, df, level)

"""A multilevel model for effects measured on the same trials at several follow-ups.

``fit_random_intercept`` fits y = X b + u_trial + e with u ~ N(0, sigma^2) shared by a trial's estimates and
e ~ N(0, V), V block-diagonal with the within-trial covariance of a trial's estimates (known or assumed), by
restricted maximum likelihood over sigma^2 >= 0 (a bounded one-dimensional search, global on a grid first).

Validated against: metafor 3.8 ``rma.mv(yi, V, mods = ~ long, random = ~ 1 | trial, method = "REML")``.
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


def _parts(y, V, X, ZZ, s2):
    S = V + s2 * ZZ
    Si = np.linalg.inv(S)
    XtSiX = X.T @ Si @ X
    A = np.linalg.inv(XtSiX)
    b = A @ X.T @ Si @ y
    r = y - X @ b
    ll = -0.5 * (np.linalg.slogdet(S)[1] + np.linalg.slogdet(XtSiX)[1] + r @ Si @ r)
    return ll, b, A


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

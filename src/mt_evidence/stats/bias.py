"""Small-study effects and the influence of single trials.

* :func:`egger_test`: Egger's regression test (metafor ``regtest``): ``model="lm"`` the weighted regression of the
  effects on their standard errors (Egger 1997), ``model="rma"`` the meta-regression with the SE as moderator.
* :func:`rank_test`: Begg and Mazumdar's rank correlation (metafor ``ranktest``).
* :func:`leave_one_out`: the pooled result without each trial in turn (metafor ``leave1out``).
* :func:`influence`: influence diagnostics (metafor ``influence``): studentised deleted residuals, DFFITS, Cook's
  distance, covariance ratios, tau^2 and Q without each trial, hat values, weights, DFBETAS, and metafor's rule
  for marking a trial influential.

Bias tests refuse to run on fewer than ``min_k`` trials (10 by default, Cochrane Handbook 13.3.5.4): with fewer,
they cannot tell chance from asymmetry.

Validated against metafor 3.8 (tests/reference/make_bias_reference.R -> bias_reference.json).
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from scipy import stats

from .pooling import pool

__all__ = ["TooFewTrials", "egger_test", "rank_test", "leave_one_out", "influence"]

MIN_K_BIAS = 10


class TooFewTrials(ValueError):
    """A small-study test asked of fewer trials than it needs."""


def _arrays(yi, vi, min_k: int | None, what: str):
    y, v = np.asarray(yi, float), np.asarray(vi, float)
    if y.shape != v.shape or y.ndim != 1:
        raise ValueError(f"yi ({y.shape}) and vi ({v.shape}) must be one-dimensional and of the same length")
    if not (np.isfinite(y).all() and np.isfinite(v).all() and (v > 0).all()):
        raise ValueError("yi must be finite and vi finite and positive")
    if min_k is not None and len(y) < min_k:
        raise TooFewTrials(f"{what} needs at least {min_k} trials (Cochrane Handbook 13.3.5.4: with fewer, chance "
                           f"cannot be told from asymmetry); got {len(y)}. Lower min_k only knowingly.")
    return y, v


def egger_test(yi, vi, *, model: str = "lm", method: str = "REML", level: float = 0.95,
               min_k: int | None = MIN_K_BIAS) -> dict:
    """Egger's regression test for funnel-plot asymmetry.

    ``model="lm"``: weighted least squares of ``yi`` on ``sqrt(vi)`` with weights ``1/vi`` (t test on k - 2 df);
    ``model="rma"``: random-effects meta-regression with ``sqrt(vi)`` as moderator (z test; ``method`` for
    tau^2). Returns ``coef`` (the SE's coefficient: Egger's intercept of the standardised effect on precision),
    ``zval`` (its test statistic), ``pval``, ``dfs`` (lm), and the limit
    estimate ``est`` (the effect at SE 0) with its CI.
    """
    y, v = _arrays(yi, vi, min_k, "Egger's test")
    sei = np.sqrt(v)
    X = np.column_stack([np.ones_like(y), sei])
    if model == "lm":
        w = 1 / v
        XtW = X.T * w
        A = np.linalg.inv(XtW @ X)
        b = A @ XtW @ y
        r = y - X @ b
        df = len(y) - 2
        s2 = float(np.sum(w * r**2) / df)
        se = np.sqrt(np.diag(A) * s2)
        t = b / se
        q = stats.t.ppf(1 - (1 - level) / 2, df)
        return {"model": "lm", "coef": float(b[1]), "zval": float(t[1]), "pval": float(2 * stats.t.sf(abs(t[1]), df)),
                "dfs": df,
                "est": float(b[0]), "ci_low": float(b[0] - q * se[0]), "ci_high": float(b[0] + q * se[0])}
    if model == "rma":
        from .regression import meta_regression

        res = meta_regression(y, v, sei, method=method, test="z", level=level)
        c = res.coefficients
        return {"model": "rma", "coef": float(c["estimate"].iloc[1]), "zval": float(c["stat"].iloc[1]),
                "pval": float(c["p"].iloc[1]), "dfs": None,
                "est": float(c["estimate"].iloc[0]), "ci_low": float(c["ci_low"].iloc[0]),
                "ci_high": float(c["ci_high"].iloc[0])}
    raise ValueError(f"model must be 'lm' or 'rma'; got {model!r}")


def rank_test(yi, vi, *, min_k: int | None = MIN_K_BIAS) -> dict:
    """Begg and Mazumdar's rank correlation test: Kendall's tau between the standardised effects and their
    variances (exact p-value without ties, the normal approximation with ties, as R's ``cor.test``)."""
    y, v = _arrays(yi, vi, min_k, "The rank correlation test")
    w = 1 / v
    theta = float(np.sum(w * y) / np.sum(w))
    ystar = (y - theta) / np.sqrt(v - 1 / np.sum(w))
    ties = len(np.unique(ystar)) < len(ystar) or len(np.unique(v)) < len(v)
    res = stats.kendalltau(ystar, v, method="asymptotic" if ties or len(y) >= 50 else "exact")
    return {"tau": float(res.statistic), "pval": float(res.pvalue), "exact": not (ties or len(y) >= 50)}


def leave_one_out(yi, vi, *, method: str = "REML", test: str = "z", labels=None, **pool_kw) -> pd.DataFrame:
    """The pooled result without each trial in turn: study, estimate, se, ci_low, ci_high, p, tau2, i2, q."""
    y, v = _arrays(yi, vi, None, "leave-one-out")
    if len(y) < 2:
        raise TooFewTrials("leave-one-out needs at least 2 trials")
    labels = list(labels) if labels is not None else [str(i + 1) for i in range(len(y))]
    rows = []
    for i in range(len(y)):
        keep = np.arange(len(y)) != i
        r = pool(y[keep], v[keep], method=method, test=test, **pool_kw)
        rows.append({"study": labels[i], "estimate": r.estimate, "se": r.se, "ci_low": r.ci_low,
                     "ci_high": r.ci_high, "p": r.p, "tau2": r.tau2, "i2": r.i2, "q": r.q})
    return pd.DataFrame(rows)


def influence(yi, vi, *, method: str = "REML", labels=None) -> pd.DataFrame:
    """Influence diagnostics of a random-effects (or common-effect, ``method="FE"``) model, as metafor's
    ``influence()`` with Wald z inference: rstudent, dffits, cook_d, cov_r, tau2_del, qe_del, hat, weight (%),
    dfbetas, and ``influential`` by metafor's rule (|DFFITS| > 3 sqrt(p/(k-p)), Cook's distance beyond the
    median of chi-square(1), hat > 3p/k, or |DFBETAS| > 1)."""
    y, v = _arrays(yi, vi, None, "influence")
    k = len(y)
    if k < 3:
        raise TooFewTrials("influence diagnostics need at least 3 trials")
    full = pool(y, v, method=method, test="z")
    w = 1 / (v + full.tau2)
    mu, vb = full.estimate, full.se**2
    hat = w / w.sum()
    out = []
    for i in range(k):
        keep = np.arange(k) != i
        r = pool(y[keep], v[keep], method=method, test="z")
        t2 = r.tau2
        vb_del = 1 / np.sum(1 / (v + t2))  # the full data's variance at the deleted tau^2 (metafor)
        d = mu - r.estimate
        out.append({
            "rstudent": (y[i] - r.estimate) / np.sqrt(v[i] + r.se**2 + t2),
            "dffits": d / np.sqrt(hat[i] * (t2 + v[i])),
            "cook_d": d**2 / vb,
            "cov_r": r.se**2 / vb,
            "tau2_del": t2,
            "qe_del": r.q,
            "hat": hat[i],
            "weight": 100 * hat[i],
            "dfbetas": d / np.sqrt(vb_del),
        })
    df = pd.DataFrame(out)
    df.insert(0, "study", list(labels) if labels is not None else [str(i + 1) for i in range(k)])
    p = 1
    df["influential"] = ((df["dffits"].abs() > 3 * np.sqrt(p / (k - p))) | (stats.chi2.cdf(df["cook_d"], p) > 0.5)
                         | (df["hat"] > 3 * p / k) | (df["dfbetas"].abs() > 1))
    return df

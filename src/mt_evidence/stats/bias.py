"""Small-study effects and the influence of single trials.

* :func:`egger_test`: Egger's regression test (metafor ``regtest``): ``model="lm"`` the weighted regression of the
  effects on their standard errors (Egger 1997), ``model="rma"`` the meta-regression with the SE as moderator.
* :func:`rank_test` (also :func:`begg_test`): Begg and Mazumdar's rank correlation (metafor ``ranktest``).
* :func:`leave_one_out`: the pooled result without each trial in turn (metafor ``leave1out``).
* :func:`trim_and_fill`: Duval and Tweedie's trim and fill (metafor ``trimfill``; L0, R0, Q0).
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

__all__ = ["TooFewTrials", "check_studies", "weighted_least_squares", "egger_test", "rank_test", "begg_test",
           "leave_one_out", "influence", "trim_and_fill"]

MIN_K_BIAS = 10


class TooFewTrials(ValueError):
    """A small-study test asked of fewer trials than it needs."""


def check_studies(yi, vi, *, min_k: int | None = None, what: str = "This method") -> tuple[np.ndarray, np.ndarray]:
    """``yi`` and ``vi`` as float arrays, or a ValueError naming what is wrong (and ``TooFewTrials`` when there are
    fewer than ``min_k`` studies): one-dimensional, the same length, finite, variances positive."""
    try:
        y, v = np.asarray(yi, float), np.asarray(vi, float)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"yi and vi must be numeric arrays; could not convert: {exc}") from None
    if y.shape != v.shape or y.ndim != 1:
        raise ValueError(f"yi ({y.shape}) and vi ({v.shape}) must be one-dimensional and of the same length")
    for name, a in (("yi", y), ("vi", v)):
        bad = ~np.isfinite(a)
        if bad.any():
            raise ValueError(f"{name} must be finite (no NaN or infinity); got {a[bad][:5].tolist()} at positions "
                             f"{np.flatnonzero(bad)[:5].tolist()}: drop incomplete studies first")
    if (v <= 0).any():
        raise ValueError(f"sampling variances (vi) must be positive; got {v[v <= 0][:5].tolist()} at positions "
                         f"{np.flatnonzero(v <= 0)[:5].tolist()}")
    if min_k is not None and len(y) < min_k:
        raise TooFewTrials(f"{what} needs at least {min_k} trials (Cochrane Handbook 13.3.5.4: with fewer, chance "
                           f"cannot be told from asymmetry); got {len(y)}. Lower min_k only knowingly.")
    return y, v


def _arrays(yi, vi, min_k: int | None, what: str):
    return check_studies(yi, vi, min_k=min_k, what=what)


def weighted_least_squares(y: np.ndarray, x: np.ndarray, v: np.ndarray, level: float,
                           names: tuple[str, str]) -> pd.DataFrame:
    """Weighted least squares of y on (1, x), weights 1/v, residual variance estimated (R's ``lm`` with weights):
    estimate, se, t statistic, p, CI (t with k - 2 df) and df per term (``names``). Egger's test and PET-PEESE."""
    X = np.column_stack([np.ones_like(y), x])
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
    return pd.DataFrame({"estimate": b, "se": se, "stat": t, "p": 2 * stats.t.sf(np.abs(t), df),
                         "ci_low": b - q * se, "ci_high": b + q * se, "df": float(df)},
                        index=pd.Index(list(names), name="term"))


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
    if model == "lm":
        fit = weighted_least_squares(y, sei, v, level, ("intrcpt", "sei"))
        a, b = fit.iloc[0], fit.iloc[1]
        return {"model": "lm", "coef": float(b["estimate"]), "zval": float(b["stat"]), "pval": float(b["p"]),
                "dfs": len(y) - 2, "est": float(a["estimate"]), "ci_low": float(a["ci_low"]),
                "ci_high": float(a["ci_high"])}
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


def begg_test(yi, vi, *, min_k: int | None = MIN_K_BIAS) -> dict:
    """Begg and Mazumdar's test (Begg 1994) by its authors' name: the same as :func:`rank_test` (metafor
    ``ranktest``)."""
    return rank_test(yi, vi, min_k=min_k)


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


def trim_and_fill(yi, vi, *, method: str = "REML", estimator: str = "L0", side: str | None = None,
                  maxiter: int = 100, min_k: int | None = MIN_K_BIAS, labels=None) -> dict:
    """Duval and Tweedie's trim and fill, as metafor's ``trimfill``: the number of trials missing on one side
    (``k0`` by the L0, R0 or Q0 estimator, with its SE), those trials filled in as mirror images about the
    estimate of the trimmed data, and the model refitted with them (``result``, by ``method``).

    ``side`` (where trials are missing) is chosen as metafor does when not given: "right" when the SE's
    coefficient of Egger's meta-regression (``rma(yi, vi, mods = sqrt(vi))``) is negative, else "left".
    Returns k0, se_k0, side, estimator, p_k0 (R0 only), the ``filled`` frame (yi, vi, filled) and ``result``.
    A sensitivity analysis, not a correction: it assumes asymmetry comes from missing trials.
    """
    from .regression import meta_regression

    y, v = _arrays(yi, vi, min_k, "Trim and fill")
    if estimator not in ("L0", "R0", "Q0"):
        raise ValueError(f"estimator must be 'L0', 'R0' or 'Q0'; got {estimator!r}")
    if side is None:
        side = "right" if meta_regression(y, v, np.sqrt(v), method=method, test="z").coefficients[
            "estimate"].iloc[1] < 0 else "left"
    elif side not in ("left", "right"):
        raise ValueError(f"side must be 'left' or 'right'; got {side!r}")
    ys = -y if side == "right" else y.copy()
    order = np.argsort(ys, kind="stable")
    ys, vs = ys[order], v[order]
    k = len(ys)
    k0, k0_prev, it = 0, -1, 0
    beta = se_k0 = np.nan
    while k0 != k0_prev:
        k0_prev = k0
        it += 1
        if it > maxiter:
            raise RuntimeError("trim and fill did not converge")
        beta = pool(ys[:k - k0], vs[:k - k0], method=method, test="z").estimate
        c = ys - beta
        ranks = stats.rankdata(np.abs(c), method="ordinal")
        signed = np.sign(c) * ranks
        if estimator == "R0":
            neg = -signed[signed < 0]
            k0f = (k - (neg.max() if len(neg) else 0)) - 1
            se_k0 = np.sqrt(2 * max(0.0, k0f) + 2)
        else:
            sr = signed[signed > 0].sum()
            if estimator == "L0":
                k0f = (4 * sr - k * (k + 1)) / (2 * k - 1)
            else:
                k0f = k - 0.5 - np.sqrt(2 * k**2 - 4 * sr + 0.25)
            var_sr = (k * (k + 1) * (2 * k + 1) + 10 * k0f**3 + 27 * k0f**2 + 17 * k0f - 18 * k * k0f**2
                      - 18 * k * k0f + 6 * k**2 * k0f) / 24
            se_k0 = (4 * np.sqrt(var_sr) / (2 * k - 1) if estimator == "L0"
                     else 2 * np.sqrt(var_sr) / np.sqrt((k - 0.5) ** 2 - k0f * (2 * k - k0f - 1)))
        k0 = int(max(0, _round_half_even(k0f)))
        se_k0 = max(0.0, float(se_k0))
    if k0 > 0:
        c = ys - beta
        mirrored = (-(c - beta) if side == "right" else c - beta)[k - k0:]
        fill_y = np.concatenate([y, -mirrored])
        fill_v = np.concatenate([v, vs[k - k0:]])
    else:
        fill_y, fill_v = y.copy(), v.copy()
    names = (list(labels) if labels is not None else [f"Study {i + 1}" for i in range(len(y))]) \
        + [f"Filled {i + 1}" for i in range(k0)]
    filled = pd.DataFrame({"study": names, "yi": fill_y, "vi": fill_v, "filled": [False] * len(y) + [True] * k0})
    res = pool(fill_y, fill_v, method=method, test="z", labels=names)
    out = {"k0": k0, "se_k0": se_k0, "side": side, "estimator": estimator, "filled": filled, "result": res}
    if estimator == "R0":
        m = np.arange(-1, k0)
        from scipy.special import comb

        out["p_k0"] = float(1 - np.sum(comb(m + 1, m + 1) * 0.5 ** (m + 2)))
    return out


def _round_half_even(x: float) -> float:
    """R's round(): halves to the even neighbour (IEC 60559), as numpy's round."""
    return float(np.round(x))

"""The batched estimation engine for models with moderators: ``meta_regression`` and ``subgroup``'s common-tau^2
test. (Plain pooling, ``pool`` and ``pool_many``, runs on ``intercept``, a faster engine for intercept-only
models that returns the same numbers: tests/test_engine_snapshot.py.)

One meta-analysis per row. ``Y`` and ``V`` are ``(m, kmax)`` arrays, NaN-padded where rows have fewer studies;
``X`` is ``(m, kmax, p)`` (an intercept column for plain pooling). All estimators are small functions over these
arrays and follow metafor 3.8 (``rma.uni``, ``confint.rma.uni``, ``predict.rma``) formula by formula; where we
do better than metafor's iteration (ML/REML/EB/PM are solved by bracketed root finding, never Fisher scoring
that can fail), the optimum is the same.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import stats

from . import solvers
from .conventions import Conventions

_EPS = np.finfo(float).eps


@dataclass
class Batch:
    """Masked data for many meta-analyses at once."""

    Y: np.ndarray  # (m, K) with zeros where masked
    V: np.ndarray  # (m, K) with ones where masked
    M: np.ndarray  # (m, K) float mask 1/0
    X: np.ndarray | None  # (m, K, p) or None for intercept-only
    k: np.ndarray  # (m,) studies per row
    p: int

    @property
    def intercept_only(self) -> bool:
        return self.X is None

    @classmethod
    def from_arrays(cls, Y: np.ndarray, V: np.ndarray, X: np.ndarray | None = None) -> Batch:
        mask = ~(np.isnan(Y) | np.isnan(V))
        M = mask.astype(float)
        Y0 = np.where(mask, Y, 0.0)
        V0 = np.where(mask, V, 1.0)
        if X is not None:
            X = np.where(mask[..., None], X, 0.0)
        p = 1 if X is None else X.shape[2]
        return cls(Y=Y0, V=V0, M=M, X=X, k=mask.sum(axis=1), p=p)

    def subset(self, rows: np.ndarray) -> Batch:
        return Batch(
            Y=self.Y[rows], V=self.V[rows], M=self.M[rows], X=None if self.X is None else self.X[rows],
            k=self.k[rows], p=self.p,
        )


@dataclass
class WLS:
    """Weighted least-squares fit of every row for given weights."""

    w: np.ndarray  # (m, K)
    A: np.ndarray  # (m, p, p) = (X'WX)^-1
    b: np.ndarray  # (m, p)
    e: np.ndarray  # (m, K) residuals (zero where masked)


def wls(batch: Batch, w: np.ndarray) -> WLS:
    """Fit ``y = X b`` by weighted least squares with weights ``w`` (already masked)."""
    if batch.intercept_only:
        sw = w.sum(axis=1)
        with np.errstate(divide="ignore", invalid="ignore"):
            b = (w * batch.Y).sum(axis=1) / sw
            A = (1.0 / sw)[:, None, None]
        e = (batch.Y - b[:, None]) * batch.M
        return WLS(w=w, A=A, b=b[:, None], e=e)
    X = batch.X
    XtW = X * w[..., None]
    XtWX = np.einsum("mki,mkj->mij", XtW, X)
    A = np.linalg.inv(XtWX)
    XtWy = np.einsum("mki,mk->mi", XtW, batch.Y)
    b = np.einsum("mij,mj->mi", A, XtWy)
    e = (batch.Y - np.einsum("mki,mi->mk", X, b)) * batch.M
    return WLS(w=w, A=A, b=b, e=e)


def re_weights(batch: Batch, tau2: np.ndarray) -> np.ndarray:
    return batch.M / (batch.V + tau2[:, None])


def q_stat(batch: Batch, tau2: np.ndarray) -> np.ndarray:
    """Generalised Q: sum of w_i e_i^2 with w_i = 1/(v_i + tau2)."""
    fit = wls(batch, re_weights(batch, tau2))
    return (fit.w * fit.e**2).sum(axis=1)


def q_stat_and_slope(batch: Batch, tau2: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Generalised Q and its derivative in tau^2, -sum w_i^2 e_i^2 (the fit's b minimises Q, so its own
    change does not enter)."""
    fit = wls(batch, re_weights(batch, tau2))
    we2 = fit.w * fit.e**2
    return we2.sum(axis=1), -(fit.w * we2).sum(axis=1)


def _tr_AXtW2X(batch: Batch, fit: WLS, power: int = 2) -> np.ndarray:
    """trace((X'WX)^-1 X' W^power X)."""
    if batch.intercept_only:
        return (fit.w**power).sum(axis=1) * fit.A[:, 0, 0]
    X = batch.X
    XtWpX = np.einsum("mki,mk,mkj->mij", X, fit.w**power, X)
    return np.einsum("mij,mji->m", fit.A, XtWpX)


def tr_P(batch: Batch, fit: WLS) -> np.ndarray:
    """trace(P) with P = W - W X (X'WX)^-1 X' W."""
    return fit.w.sum(axis=1) - _tr_AXtW2X(batch, fit, 2)


def score(batch: Batch, tau2: np.ndarray, kind: str) -> np.ndarray:
    """Derivative (times 2) of the ML or REML log-likelihood with respect to tau^2."""
    fit = wls(batch, re_weights(batch, tau2))
    yPPy = ((fit.w * fit.e) ** 2).sum(axis=1)
    if kind == "ML":
        return yPPy - fit.w.sum(axis=1)
    return yPPy - tr_P(batch, fit)


def loglik(batch: Batch, tau2: np.ndarray, kind: str) -> np.ndarray:
    """metafor's log-likelihood (ML) or restricted log-likelihood (REML), constants included."""
    fit = wls(batch, re_weights(batch, tau2))
    rss = (fit.w * fit.e**2).sum(axis=1)
    logv = (np.log(batch.V + tau2[:, None]) * batch.M).sum(axis=1)
    k = batch.k
    if kind == "ML":
        return -0.5 * k * np.log(2 * np.pi) - 0.5 * logv - 0.5 * rss
    if batch.intercept_only:
        logdet = np.log(fit.w.sum(axis=1))
    else:
        _, logdet = np.linalg.slogdet(np.linalg.inv(fit.A))
    out = -0.5 * (k - batch.p) * np.log(2 * np.pi) - 0.5 * logv - 0.5 * logdet - 0.5 * rss
    if not batch.intercept_only:
        XtX = np.einsum("mki,mkj->mij", batch.X, batch.X)
        out = out + 0.5 * np.linalg.slogdet(XtX)[1]
    else:
        out = out + 0.5 * np.log(k)
    return out


# --------------------------------------------------------------------------------------------- estimators


def _unweighted_rss_and_trpv(batch: Batch) -> tuple[np.ndarray, np.ndarray]:
    fit = wls(batch, batch.M.copy())
    rss = (fit.e**2).sum(axis=1)
    # trace(P V) with P = I - X (X'X)^-1 X'
    if batch.intercept_only:
        trpv = (batch.V * batch.M).sum(axis=1) * (1.0 - 1.0 / batch.k)
    else:
        XtVX = np.einsum("mki,mk,mkj->mij", batch.X, batch.V * batch.M, batch.X)
        trpv = (batch.V * batch.M).sum(axis=1) - np.einsum("mij,mji->m", fit.A, XtVX)
    return rss, trpv


def tau2_dl(batch: Batch) -> np.ndarray:
    fit = wls(batch, batch.M / batch.V)
    q = (fit.w * fit.e**2).sum(axis=1)
    trp = tr_P(batch, fit)
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.maximum(0.0, (q - (batch.k - batch.p)) / trp)


def tau2_he(batch: Batch) -> np.ndarray:
    rss, trpv = _unweighted_rss_and_trpv(batch)
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.maximum(0.0, (rss - trpv) / (batch.k - batch.p))


def tau2_hs(batch: Batch) -> np.ndarray:
    w = batch.M / batch.V
    fit = wls(batch, w)
    q = (fit.w * fit.e**2).sum(axis=1)
    return np.maximum(0.0, (q - batch.k) / w.sum(axis=1))


def tau2_sj(batch: Batch) -> np.ndarray:
    # metafor: initial value var(y) * (k-1)/k, i.e. the mean squared deviation from the unweighted mean
    ybar = batch.Y.sum(axis=1) / batch.k
    tau0 = (((batch.Y - ybar[:, None]) * batch.M) ** 2).sum(axis=1) / batch.k
    q = q_stat(batch, tau0)
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.maximum(0.0, tau0 * q / (batch.k - batch.p))


def _upper_start(batch: Batch) -> np.ndarray:
    """A finite starting upper bound for tau^2 searches: the spread of the effects plus the variances."""
    ybar = batch.Y.sum(axis=1) / batch.k
    ss = (((batch.Y - ybar[:, None]) * batch.M) ** 2).sum(axis=1)
    vmax = np.where(batch.M > 0, batch.V, 0.0).max(axis=1)
    return np.maximum(2.0 * ss + vmax, 1e-8)


def solve_q_equals(batch: Batch, target: np.ndarray) -> np.ndarray:
    """tau^2 with generalised Q(tau^2) = target (Q decreases in tau^2); 0 where Q(0) <= target."""
    target = np.asarray(target, dtype=float)
    q0 = q_stat(batch, np.zeros(len(batch.k)))
    out = np.zeros(len(batch.k))
    need = q0 > target
    if not need.any():
        return out
    sub = batch.subset(need)
    tgt = target[need]

    def f(t: np.ndarray) -> np.ndarray:
        return q_stat(sub, t) - tgt

    def fprime(t: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        q, dq = q_stat_and_slope(sub, t)
        return q - tgt, dq

    hi = solvers.expand_upper(f, _upper_start(sub))
    out[need] = solvers.root_decreasing(f, np.zeros(need.sum()), hi, flo=q0[need] - tgt, fprime=fprime)
    return out


def tau2_pm(batch: Batch) -> np.ndarray:
    return solve_q_equals(batch, (batch.k - batch.p).astype(float))


def _score_grid(batch: Batch, grid: np.ndarray, kind: str) -> np.ndarray:
    """``score`` at every column of ``grid`` (m, G); one broadcast pass for intercept-only models."""
    if not batch.intercept_only:
        return np.column_stack([score(batch, grid[:, j], kind) for j in range(grid.shape[1])])
    M = batch.M[:, None, :]
    Y = batch.Y[:, None, :]
    W = M / (batch.V[:, None, :] + grid[:, :, None])
    sw = W.sum(axis=2)
    mu = (W * Y).sum(axis=2) / sw
    w2 = W * W
    yppy = (w2 * (Y - mu[..., None]) ** 2).sum(axis=2)
    if kind == "ML":
        return yppy - sw
    return yppy - (sw - w2.sum(axis=2) / sw)


def tau2_likelihood(batch: Batch, kind: str, n_grid: int = 24) -> np.ndarray:
    """Global maximiser of the (restricted) likelihood over tau^2 >= 0.

    The score is evaluated on a log-spaced grid (plus 0). Every local maximum shows as a sign change of the
    score from + to -; each is refined by bracketed root finding, and the best of them (or tau^2 = 0 when the
    score is negative there) by likelihood is returned. This finds the global optimum where Fisher scoring can
    stop at a local one or fail, as long as a maximum is not narrower than the grid's spacing (a factor of
    about 2.5 in tau^2).
    """
    m = len(batch.k)

    def f(t: np.ndarray) -> np.ndarray:
        return score(batch, t, kind)

    hi = solvers.expand_upper(f, _upper_start(batch))
    rel = np.concatenate([[0.0], np.logspace(-9, 0, n_grid)])
    grid = hi[:, None] * rel[None, :]  # (m, G)
    sg = _score_grid(batch, grid, kind)
    change = (sg[:, :-1] > 0) & (sg[:, 1:] <= 0)  # local maxima between grid j and j+1
    best_t = np.zeros(m)
    best_ll = np.where(sg[:, 0] <= 0, loglik(batch, np.zeros(m), kind), -np.inf)
    n_max = change.sum(axis=1)
    order = np.cumsum(change, axis=1)  # which maximum (1, 2, ...) a sign change is
    rows_all = np.arange(m)
    for r in range(1, int(n_max.max(initial=0)) + 1):
        has = n_max >= r
        j = np.argmax(change & (order == r), axis=1)[has]
        rows = rows_all[has]
        sub = batch.subset(has)
        lo, up = grid[rows, j], grid[rows, j + 1]
        t = solvers.root_decreasing(
            lambda x, sub=sub: score(sub, x, kind), lo, up, flo=sg[rows, j], fhi=sg[rows, j + 1]
        )
        ll = loglik(sub, t, kind)
        better = ll > best_ll[rows]
        best_t[rows[better]] = t[better]
        best_ll[rows[better]] = ll[better]
    # rows where no local maximum and a positive score at 0 cannot happen (score < 0 at hi); guard anyway
    bad = ~np.isfinite(best_ll)
    if bad.any():
        sub = batch.subset(bad)
        best_t[bad] = solvers.golden_max(lambda x: loglik(sub, x, kind), np.zeros(bad.sum()), hi[bad])
    return best_t


def estimate_tau2(batch: Batch, method: str) -> np.ndarray:
    m = len(batch.k)
    if method == "FE":
        return np.zeros(m)
    dfree = batch.k - batch.p
    out = np.zeros(m)
    ok = dfree > 0
    if not ok.any():
        return out
    sub = batch if ok.all() else batch.subset(ok)
    if method == "DL":
        t = tau2_dl(sub)
    elif method == "HE":
        t = tau2_he(sub)
    elif method == "HS":
        t = tau2_hs(sub)
    elif method == "SJ":
        t = tau2_sj(sub)
    elif method in ("PM", "EB"):
        t = tau2_pm(sub)
    elif method in ("ML", "REML"):
        t = tau2_likelihood(sub, method)
    else:  # pragma: no cover - guarded by normalise_method
        raise ValueError(method)
    out[ok] = t
    return out


def tau2_se(batch: Batch, tau2: np.ndarray, method: str) -> np.ndarray:
    """Standard error of tau^2 as metafor reports it (``se.tau2``)."""
    k, p = batch.k, batch.p
    t = np.maximum(tau2, 0.0)
    with np.errstate(divide="ignore", invalid="ignore"):
        if method == "FE":
            return np.full(len(k), np.nan)
        if method in ("ML", "REML"):
            fit = wls(batch, re_weights(batch, tau2))
            if method == "ML":
                return np.sqrt(2.0 / (fit.w**2).sum(axis=1))
            return np.sqrt(2.0 / _sum_PP(batch, fit))
        if method in ("EB", "PM"):
            w = re_weights(batch, tau2)
            return np.sqrt(2 * k**2 / (k - p) / w.sum(axis=1) ** 2)
        if method in ("DL", "HS"):
            fit = wls(batch, batch.M / batch.V)
            trp = tr_P(batch, fit)
            spp = _sum_PP(batch, fit)
            core = 2 * (k - p) + 4 * t * trp + 2 * t**2 * spp
            if method == "DL":
                return np.sqrt(core / trp**2)
            return np.sqrt(core / fit.w.sum(axis=1) ** 2)
        if method == "HE":
            P = _P_matrix(batch, wls(batch, batch.M.copy()))
            PV = P * batch.V[:, None, :]
            s_pvpv = np.einsum("mij,mji->m", PV, PV)
            trpv = np.einsum("mii->m", PV)
            return np.sqrt((2 * s_pvpv + 4 * t * trpv + 2 * t**2 * (k - p)) / (k - p) ** 2)
        if method == "SJ":
            ybar = batch.Y.sum(axis=1) / k
            tau0 = (((batch.Y - ybar[:, None]) * batch.M) ** 2).sum(axis=1) / k
            P = _P_matrix(batch, wls(batch, re_weights(batch, tau0)))
            PV = P * batch.V[:, None, :]
            s_pvpv = np.einsum("mij,mji->m", PV, PV)
            s_pvp = np.einsum("mij,mij->m", PV, P)
            s_pp = np.einsum("mij,mij->m", P, P)
            return np.sqrt(tau0**2 / (k - p) ** 2 * (2 * s_pvpv + 4 * t * s_pvp + 2 * t**2 * s_pp))
    raise ValueError(method)  # pragma: no cover


def _P_matrix(batch: Batch, fit: WLS) -> np.ndarray:
    """Explicit P = W - W X A X' W, (m, K, K); masked rows and columns are zero."""
    w = fit.w
    X = np.ones(batch.M.shape + (1,)) * batch.M[..., None] if batch.intercept_only else batch.X
    WX = X * w[..., None]
    return np.einsum("mk,kl->mkl", w, np.eye(w.shape[1])) - np.einsum("mki,mij,mlj->mkl", WX, fit.A, WX)


def _sum_PP(batch: Batch, fit: WLS) -> np.ndarray:
    P = _P_matrix(batch, fit)
    return np.einsum("mij,mij->m", P, P)


# -------------------------------------------------------------------------------------------- the full fit


@dataclass
class FitArrays:
    """Every quantity of a fitted model, one entry per row (meta-analysis)."""

    k: np.ndarray
    p: int
    b: np.ndarray  # (m, p)
    vb: np.ndarray  # (m, p, p)
    se: np.ndarray  # (m, p)
    stat: np.ndarray  # (m, p)
    pval: np.ndarray  # (m, p)
    ci_low: np.ndarray
    ci_high: np.ndarray
    crit: np.ndarray  # (m,)
    df: np.ndarray  # (m,) NaN for z
    tau2: np.ndarray
    tau2_se: np.ndarray
    s2w: np.ndarray
    q: np.ndarray
    q_df: np.ndarray
    q_p: np.ndarray
    vt: np.ndarray
    i2: np.ndarray
    h2: np.ndarray
    weights: np.ndarray  # (m, K) percent, NaN where masked
    loglik: np.ndarray
    test_used: np.ndarray  # (m,) object: the test actually applied per row


def i2_h2(q: np.ndarray, dfree: np.ndarray, tau2: np.ndarray, vt: np.ndarray, has_df: np.ndarray, *,
          from_q: bool) -> tuple[np.ndarray, np.ndarray]:
    """I² (percent) and H² as metafor: from Q (common-effect model, or ``i2_type="q"``) or from tau² and the typical
    within-study variance ``vt``; 0 and 1 without degrees of freedom. Call under ``np.errstate``."""
    if from_q:
        i2 = np.where(has_df, np.maximum(0.0, 100 * (q - dfree) / q), 0.0)
        i2 = np.where(has_df & (q == 0), 0.0, i2)
        return i2, np.where(has_df, q / dfree, 1.0)
    return np.where(has_df, 100 * tau2 / (vt + tau2), 0.0), np.where(has_df, tau2 / vt + 1, 1.0)


def fit(batch: Batch, conv: Conventions, tau2: np.ndarray | None = None) -> FitArrays:
    """Fit every row; ``tau2`` (one value per row) fixes tau^2 instead of estimating it (metafor ``rma(tau2=)``)."""
    method, test = conv.method, conv.test
    m = len(batch.k)
    k, p = batch.k, batch.p
    tau2 = np.asarray(tau2, dtype=float) if tau2 is not None else estimate_tau2(batch, method)
    fitw = wls(batch, re_weights(batch, tau2))
    vb = fitw.A.copy()
    b = fitw.b
    dfree = (k - p).astype(float)

    # metafor coerces t/HKSJ to z when k = 1 (no residual degrees of freedom for an intercept-only model)
    use_t = np.full(m, test in ("t", "hksj")) & (dfree > 0)
    s2w = np.ones(m)
    if test == "hksj":
        rss = (fitw.w * fitw.e**2).sum(axis=1)
        with np.errstate(divide="ignore", invalid="ignore"):
            s2 = np.where(rss <= _EPS, 0.0, rss / dfree)
        if conv.adhoc:
            s2 = np.maximum(s2, 1.0)
        s2w = np.where(use_t, s2, 1.0)
        vb = vb * s2w[:, None, None]
    se = np.sqrt(np.einsum("mii->mi", vb))
    with np.errstate(divide="ignore", invalid="ignore"):
        stat = b / se
    alpha = 1.0 - conv.level
    df = np.where(use_t, dfree, np.nan)
    crit = np.where(use_t, stats.t.ppf(1 - alpha / 2, np.where(use_t, dfree, 1)), stats.norm.ppf(1 - alpha / 2))
    pval = np.where(
        use_t[:, None],
        2 * stats.t.sf(np.abs(stat), np.where(use_t, dfree, 1)[:, None]),
        2 * stats.norm.sf(np.abs(stat)),
    )
    ci_low = b - crit[:, None] * se
    ci_high = b + crit[:, None] * se

    # heterogeneity (always from the common-effect weights, as metafor)
    fit0 = wls(batch, batch.M / batch.V)
    q = np.maximum(0.0, (fit0.w * fit0.e**2).sum(axis=1))
    has_df = dfree > 0
    q = np.where(has_df, q, 0.0)
    q_p = np.where(has_df, stats.chi2.sf(q, np.maximum(dfree, 1)), 1.0)
    with np.errstate(divide="ignore", invalid="ignore"):
        vt = np.where(has_df, dfree / tr_P(batch, fit0), 0.0)
        i2, h2 = i2_h2(q, dfree, tau2, vt, has_df, from_q=method == "FE" or conv.i2_type == "q")

    weights = np.where(batch.M > 0, 100 * fitw.w / fitw.w.sum(axis=1, keepdims=True), np.nan)
    ll = loglik(batch, tau2, "REML" if method == "REML" else "ML")
    t_se = np.where(has_df, tau2_se(batch, tau2, method), np.nan) if method != "FE" else np.full(m, np.nan)
    test_used = np.where(use_t, test, "z").astype(object)
    return FitArrays(
        k=k, p=p, b=b, vb=vb, se=se, stat=stat, pval=pval, ci_low=ci_low, ci_high=ci_high, crit=crit, df=df,
        tau2=tau2, tau2_se=t_se, s2w=s2w, q=q, q_df=dfree, q_p=q_p, vt=vt, i2=i2, h2=h2, weights=weights,
        loglik=ll, test_used=test_used,
    )


def i2_ci_higgins(q: np.ndarray, k: np.ndarray, level: float) -> tuple[np.ndarray, np.ndarray]:
    """Test-based CI for I^2 via ln H (Higgins & Thompson 2002, as in R's meta); for ``i2_type="q"``."""
    z = stats.norm.ppf(1 - (1 - level) / 2)
    k = k.astype(float)
    with np.errstate(divide="ignore", invalid="ignore"):
        H = np.sqrt(np.maximum(q, 0) / (k - 1))
        se_big = 0.5 * (np.log(q) - np.log(k - 1)) / (np.sqrt(2 * q) - np.sqrt(2 * k - 3))
        se_small = np.sqrt(1 / (2 * (k - 2)) * (1 - 1 / (3 * (k - 2) ** 2)))
        se = np.where(q > k, se_big, se_small)
        lnH = np.log(np.maximum(H, 1.0))
        h_lo = np.maximum(np.exp(lnH - z * se), 1.0)
        h_hi = np.maximum(np.exp(lnH + z * se), 1.0)
    ok = k >= 3
    i_lo = np.where(ok, 100 * (h_lo**2 - 1) / h_lo**2, np.nan)
    i_hi = np.where(ok, 100 * (h_hi**2 - 1) / h_hi**2, np.nan)
    return i_lo, i_hi

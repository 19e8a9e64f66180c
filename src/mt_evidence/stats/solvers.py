"""Vectorised, bracketed one-dimensional solvers used by the heterogeneity estimators.

Every routine works on many problems at once (one per row) so that ``pool_many`` can fit thousands of
meta-analyses in a handful of NumPy passes. They never iterate silently to a wrong answer: a root is only
returned inside a bracket whose end points have opposite signs, and rows that cannot be bracketed are
reported to the caller.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

Array = np.ndarray


def expand_upper(f: Callable[[Array], Array], hi: Array, *, max_doublings: int = 200) -> Array:
    """Grow ``hi`` (row-wise) until ``f(hi) <= 0``; ``f`` must be eventually negative."""
    hi = np.array(hi, dtype=float, copy=True)
    for _ in range(max_doublings):
        bad = f(hi) > 0
        if not bad.any():
            return hi
        hi = np.where(bad, hi * 4.0, hi)
    raise RuntimeError("could not bracket the root: the function stays positive for very large tau^2")


def root_decreasing(
    f: Callable[[Array], Array],
    lo: Array,
    hi: Array,
    *,
    flo: Array | None = None,
    fhi: Array | None = None,
    fprime: Callable[[Array], tuple[Array, Array]] | None = None,
    rtol: float = 4 * np.finfo(float).eps,
    maxiter: int = 200,
) -> Array:
    """Root of ``f`` in ``[lo, hi]`` where ``f(lo) > 0 >= f(hi)``, for every row at once.

    Steps are Newton steps when ``fprime`` (returning ``(f, f')``) is given and the step stays inside the
    bracket; otherwise Illinois regula falsi, with a plain bisection every fourth step so that the bracket
    always shrinks geometrically. Every row ends inside a bracket that still holds a sign change.
    """
    lo = np.array(lo, dtype=float, copy=True)
    hi = np.array(hi, dtype=float, copy=True)
    flo = f(lo) if flo is None else np.array(flo, dtype=float, copy=True)
    fhi = f(hi) if fhi is None else np.array(fhi, dtype=float, copy=True)
    active = ~(fhi == 0)
    x = np.where(fhi == 0, hi, lo)
    fx = np.where(fhi == 0, 0.0, flo)
    dfx = np.full(lo.shape, np.nan)
    side = np.zeros(lo.shape, dtype=int)
    for it in range(maxiter):
        width = hi - lo
        active &= width > rtol * np.maximum(np.abs(hi), np.finfo(float).tiny)
        if not active.any():
            break
        with np.errstate(divide="ignore", invalid="ignore"):
            x_rf = lo + flo * width / (flo - fhi)
            x_nt = x - fx / dfx
        use_bisect = ~np.isfinite(x_rf) | (x_rf <= lo) | (x_rf >= hi) | (it % 4 == 3)
        x_new = np.where(use_bisect, lo + 0.5 * width, x_rf)
        newton_ok = np.isfinite(x_nt) & (x_nt > lo) & (x_nt < hi)
        x_new = np.where(newton_ok, x_nt, x_new)
        if fprime is not None:
            f_new, df_new = fprime(x_new)
        else:
            f_new, df_new = f(x_new), np.full(lo.shape, np.nan)
        # a Newton step that barely moves has converged
        done_nt = newton_ok & (np.abs(x_new - x) <= 8 * rtol * np.maximum(np.abs(x_new), np.finfo(float).tiny))
        x = np.where(active, x_new, x)
        fx = np.where(active, f_new, fx)
        dfx = np.where(active, df_new, dfx)
        pos = active & (f_new > 0)
        neg = active & (f_new < 0)
        exact = active & ((f_new == 0) | done_nt)
        lo = np.where(pos, x_new, lo)
        flo = np.where(pos, f_new, flo)
        fhi = np.where(pos & (side == 1), fhi * 0.5, fhi)
        hi = np.where(neg, x_new, hi)
        fhi = np.where(neg, f_new, fhi)
        flo = np.where(neg & (side == -1), flo * 0.5, flo)
        side = np.where(pos, 1, np.where(neg, -1, side))
        active &= ~exact
        lo = np.where(exact, x_new, lo)
        hi = np.where(exact, x_new, hi)
    return np.where(lo == hi, lo, np.where(np.abs(fx) < np.inf, np.clip(x, lo, hi), 0.5 * (lo + hi)))


def golden_max(f: Callable[[Array], Array], lo: Array, hi: Array, *, iters: int = 120) -> Array:
    """Row-wise maximiser of a unimodal ``f`` on ``[lo, hi]`` by golden-section search (fallback only)."""
    g = (np.sqrt(5.0) - 1.0) / 2.0
    a = np.array(lo, dtype=float, copy=True)
    b = np.array(hi, dtype=float, copy=True)
    c = b - g * (b - a)
    d = a + g * (b - a)
    fc, fd = f(c), f(d)
    for _ in range(iters):
        left = fc >= fd
        a, b = np.where(left, a, c), np.where(left, d, b)
        c_new = np.where(left, b - g * (b - a), d)
        d_new = np.where(left, c, a + g * (b - a))
        fx = f(np.where(left, c_new, d_new))
        fc, fd = np.where(left, fx, fd), np.where(left, fc, fx)
        c, d = c_new, d_new
    return 0.5 * (a + b)

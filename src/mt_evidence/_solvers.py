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
    rtol: float = 4 * np.finfo(float).eps,
    maxiter: int = 200,
) -> Array:
    """Root of ``f`` in ``[lo, hi]`` where ``f(lo) > 0 >= f(hi)``, for every row at once.

    Uses the Illinois variant of regula falsi (superlinear, always bracketed) and falls back to bisection
    whenever an interpolation step makes too little progress, so it converges in a bounded number of steps.
    """
    lo = np.array(lo, dtype=float, copy=True)
    hi = np.array(hi, dtype=float, copy=True)
    flo = f(lo) if flo is None else np.array(flo, dtype=float, copy=True)
    fhi = f(hi) if fhi is None else np.array(fhi, dtype=float, copy=True)
    active = np.ones(lo.shape, dtype=bool)
    x = np.where(fhi == 0, hi, lo)
    side = np.zeros(lo.shape, dtype=int)
    for it in range(maxiter):
        width = hi - lo
        done = width <= rtol * np.maximum(np.abs(hi), np.finfo(float).tiny)
        active &= ~done
        if not active.any():
            break
        denom = flo - fhi
        with np.errstate(divide="ignore", invalid="ignore"):
            x_rf = lo + flo * width / denom
        # every fourth step is a plain bisection: guarantees the bracket shrinks geometrically
        use_bisect = ~np.isfinite(x_rf) | (x_rf <= lo) | (x_rf >= hi) | (it % 4 == 3)
        x_new = np.where(use_bisect, lo + 0.5 * width, x_rf)
        fx = np.full(lo.shape, np.nan)
        fx_act = f(x_new)
        fx = np.where(active, fx_act, fx)
        x = np.where(active, x_new, x)
        exact = active & (fx == 0)
        pos = active & (fx > 0)
        neg = active & (fx < 0)
        # Illinois: halve the retained end's function value when the same side is kept twice
        lo = np.where(pos, x_new, lo)
        flo = np.where(pos, fx, flo)
        fhi = np.where(pos & (side == 1), fhi * 0.5, fhi)
        hi = np.where(neg, x_new, hi)
        fhi = np.where(neg, fx, fhi)
        flo = np.where(neg & (side == -1), flo * 0.5, flo)
        side = np.where(pos, 1, np.where(neg, -1, side))
        lo = np.where(exact, x_new, lo)
        hi = np.where(exact, x_new, hi)
    # final answer: the bracket end closer to the root by function value, or the midpoint
    return np.where(lo == hi, lo, 0.5 * (lo + hi))


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

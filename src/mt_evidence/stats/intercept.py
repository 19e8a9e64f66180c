"""Intercept-only random-effects models for many meta-analyses at once: the engine behind ``pool`` and
``pool_many`` (meta-regression and subgroups with moderators use ``engine``).

Layout: studies x analyses. ``Y`` and ``V`` are (K, m) arrays with one meta-analysis per column, so that
every NumPy pass runs along the long axis and every sum over studies adds K contiguous rows. A study a column
does not have carries y = 0 and v = +inf, so its weight 1/(v + tau^2) is exactly 0 and no mask is needed.

The formulas are metafor 3.8's (``rma.uni``, ``confint.rma.uni``, ``predict.rma``), written in closed form for
an intercept. With w_i = 1/(v_i + tau^2), the weighted mean mu, e = y - mu and P = W - w w'/sum(w):
``Q = y'Py = sum w e^2``, ``y'PPy = sum w^2 e^2``, ``y'PPPy = sum w^3 e^2 - (sum w^2 e)^2 / sum w``,
``tr P = sum w - sum w^2 / sum w`` and ``tr PP = sum w^2 - 2 sum w^3 / sum w + (sum w^2 / sum w)^2``.

Solvers (every one on all columns at once):

- Q-profile bounds, Paule-Mandel and empirical Bayes solve ``Q(tau^2) = c``. ``1/Q`` is increasing and
  concave in tau^2 (its second derivative is ``2((y'PPy)^2 - Q y'PPPy)/Q^3 <= 0`` by Cauchy-Schwarz), so
  Newton's method on ``1/Q`` never passes the root from the left and reaches it from either side; it is
  exact in one step when all variances are equal. The Q-profile bounds start from tau^2-hat, or from the
  cubic Hermite interpolant of ``1/Q`` between 0 and tau^2-hat when the bound lies there.
- ML and REML: the global maximiser of the (restricted) likelihood. A root of the score
  ``S = y'PPy - tr P`` (REML; ``tr W`` for ML) is found by Newton's method on ``tr P / y'PPy - 1`` (linear
  in tau^2 when the variances are equal) inside a bracket, started at the DerSimonian-Laird estimate, and
  then *proved* to be the only local maximum, from the points evaluated (0, the Newton iterates, one on
  each side of the root and one beyond it).
  ``S = U - L`` is a difference of two convex decreasing functions of tau^2 (``U = y'PPy``, ``L = tr P``;
  their derivatives ``-2 y'PPPy`` and ``-tr PP`` increase), so on an interval the chord of one and the
  tangents of the other bound ``S`` from above and below, and ``U'(b) - L'(a) < 0`` proves ``S`` strictly
  decreasing on ``[a, b]``. A cover of ``[0, b]`` by intervals on which ``S`` is positive, negative or
  strictly decreasing, with the tail bound ``S(t) < 0`` for all ``t >= b`` when ``Q(b) < L(b) (v_min + b)``
  (from ``y'PPy <= Q / (v_min + t)``, ``(v_max + t) Q`` decreasing and ``(v_min + t) L`` increasing: P is
  Loewner-monotone in the weights), leaves one sign change of the score, from + to -: the global maximum
  (to 1e-12 relative: next to the root a sign may be left open over that width). Intervals that prove
  nothing are split; the few columns still unproven (likelihoods with several local maxima, or a score
  that only touches zero) are solved on ``engine.tau2_likelihood``'s score grid, as before.

Memory: the (K, m) arrays of a fit live only while the fit is used, and a fit is made many times over (every
iterate). They come from a scratch buffer of the thread (``scratch``; a stack: a scope gives back what was taken
in it), so that the same memory is used again instead of being fresh from the operating system each time:
fresh pages cost about as much as the arithmetic itself (measured in benchmarks/README.md). The buffer grows to
what a call needs, up to ``SCRATCH_MAX_BYTES``; beyond, arrays are allocated as usual. ``release_scratch()`` frees
it. Nothing that leaves the engine is scratch memory (every result is a new array).
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

import numpy as np
from scipy import special

from . import compiled, engine
from .conventions import Conventions

_EPS = np.finfo(float).eps

# ------------------------------------------------------------------------------------------ scratch memory

#: the largest scratch buffer a thread keeps (a call that needs more allocates the rest as usual)
SCRATCH_MAX_BYTES = 64 * 2**20


class _ScratchState(threading.local):
    def __init__(self) -> None:
        self.buf = np.empty(0)
        self.top = 0  # first free element
        self.depth = 0  # scopes open
        self.want = 0  # elements the last outermost scope would have used
        self.poison = False  # tests: fill what a scope gives back with NaN (a use after it shows)


_SCRATCH = _ScratchState()


@contextmanager
def scratch() -> Iterator[None]:
    """A scope of scratch memory: arrays ``_empty`` makes inside it are valid until it ends (scopes nest)."""
    s = _SCRATCH
    if s.depth == 0 and s.want > len(s.buf):  # grow between calls only (no array in use then)
        s.buf = np.empty(min(s.want, SCRATCH_MAX_BYTES // 8))
    if s.depth == 0:
        s.want = 0
    mark = s.top
    s.depth += 1
    try:
        yield
    finally:
        s.depth -= 1
        if s.poison:
            s.buf[mark:s.top] = np.nan
        s.top = mark


def _empty(shape: tuple[int, ...]) -> np.ndarray:
    """An uninitialised float array: from the thread's scratch buffer inside a ``scratch`` scope, else new."""
    s = _SCRATCH
    n = 1
    for d in shape:
        n *= int(d)
    if s.depth == 0:
        return np.empty(shape)
    start, end = s.top, s.top + -(-n // 8) * 8  # 64-byte aligned starts
    s.top = end  # also past the buffer's end, so that ``want`` is what the scope would use
    s.want = max(s.want, end)
    if end > len(s.buf):
        return np.empty(shape)
    return s.buf[start:start + n].reshape(shape)


def release_scratch() -> None:
    """Free this thread's scratch buffer (it is made again, as large as needed, by the next call)."""
    if _SCRATCH.depth == 0:
        _SCRATCH.buf = np.empty(0)
        _SCRATCH.want = 0

_NEWTON_TOL = 32 * _EPS  # a Newton step this small (relative) has converged, as in solvers.root_decreasing
_MAXITER = 100


# Sums over studies add the K rows in order, column by column, whatever the number of columns, so that a
# meta-analysis gets the same numbers alone, in any batch or in any chunk. A single column would be summed
# along its (then contiguous) length in another order: it is summed as two equal columns instead.


def _two(*arrays: np.ndarray) -> tuple:
    return tuple(np.concatenate([a, a], axis=1) for a in arrays)


def _sum(a: np.ndarray) -> np.ndarray:
    """Column sums of a (K, m) array."""
    if a.shape[1] == 1:
        return _two(a)[0].sum(axis=0)[:1]
    return a.sum(axis=0)


def _dot(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Column-wise inner products of two (K, m) arrays."""
    if a.shape[1] == 1:
        return np.einsum("km,km->m", *_two(a, b))[:1]
    return np.einsum("km,km->m", a, b)


def _dot3(a: np.ndarray, b: np.ndarray, c: np.ndarray) -> np.ndarray:
    if a.shape[1] == 1:
        return np.einsum("km,km,km->m", *_two(a, b, c))[:1]
    return np.einsum("km,km,km->m", a, b, c)


@dataclass
class Studies:
    """Many intercept-only meta-analyses in the studies x analyses layout (see the module docstring)."""

    Y: np.ndarray  # (K, m), 0 where padded
    V: np.ndarray  # (K, m), +inf where padded
    k: np.ndarray  # (m,) studies per column
    _pad: np.ndarray | None = field(default=None, repr=False)

    @property
    def m(self) -> int:
        return self.Y.shape[1]

    @property
    def pad(self) -> np.ndarray:
        """(K, m) True where padded."""
        if self._pad is None:
            self._pad = np.isinf(self.V)
        return self._pad

    @classmethod
    def from_rows(cls, Y: np.ndarray, V: np.ndarray, pad: np.ndarray | None = None) -> Studies:
        """From validated (m, K) arrays, NaN where a row has fewer studies (``pool_many``'s input); ``pad``:
        where Y is NaN, when already known."""
        Yt = _empty(Y.T.shape)  # copies (scratch memory in a scope): the caller's arrays are never written
        Yt[...] = Y.T
        Vt = _empty(V.T.shape)
        Vt[...] = V.T
        pad = np.isnan(Yt) if pad is None else np.ascontiguousarray(pad.T)
        if pad.any():
            Yt[pad] = 0.0
            Vt[pad] = np.inf
        return cls(Y=Yt, V=Vt, k=Yt.shape[0] - pad.sum(axis=0), _pad=pad)

    def take(self, cols: np.ndarray) -> Studies:
        # (np.take keeps the (K, n) arrays C-ordered; a[:, cols] would return them in Fortran order, on which
        # every sum over studies is several times slower)
        shape = (self.Y.shape[0], len(cols))
        return Studies(Y=np.take(self.Y, cols, axis=1, out=_empty(shape)),
                       V=np.take(self.V, cols, axis=1, out=_empty(shape)), k=self.k[cols])

    def batch(self) -> engine.Batch:
        """The same data as ``engine.Batch`` (rows layout), for the general engine."""
        Y = np.where(self.pad, np.nan, self.Y).T
        V = np.where(self.pad, np.nan, self.V).T
        return engine.Batch.from_arrays(Y, V)

    def v0(self) -> np.ndarray:
        """V with 0 where padded."""
        return np.where(self.pad, 0.0, self.V)

    def deviations(self) -> np.ndarray:
        """Deviations from the unweighted mean, 0 where padded."""
        d = self.Y - _sum(self.Y) / self.k
        d[self.pad] = 0.0
        return d

    def weights(self, tau2: np.ndarray) -> np.ndarray:
        w = np.add(self.V, tau2)
        np.reciprocal(w, out=w)
        return w


@dataclass
class _Fit:
    """The weighted fit of every column at one tau^2: its sums, and its (K, m) arrays (made on first use when the
    fit came from the compiled sums, ``_fit_sums``)."""

    sw: np.ndarray
    mu: np.ndarray
    q: np.ndarray  # y'Py
    _w: np.ndarray | None = field(default=None, repr=False)  # (K, m) weights
    _e: np.ndarray | None = field(default=None, repr=False)  # (K, m) residuals y - mu (not 0 where padded; w is)
    _r: np.ndarray | None = field(default=None, repr=False)  # (K, m) P y = w e
    _sw2: np.ndarray | None = field(default=None, repr=False)
    _sw3: np.ndarray | None = field(default=None, repr=False)
    _u: np.ndarray | None = field(default=None, repr=False)
    _st: Studies | None = field(default=None, repr=False)  # the studies and tau^2 of the arrays still to make
    _t: np.ndarray | None = field(default=None, repr=False)

    @property
    def w(self) -> np.ndarray:
        if self._w is None:
            self._w = _weights_at(self._st, self._t)
        return self._w

    @property
    def e(self) -> np.ndarray:
        if self._e is None:
            self._e = np.subtract(self._st.Y, self.mu, out=_empty(self._st.V.shape))
        return self._e

    @property
    def r(self) -> np.ndarray:
        if self._r is None:
            self._r = np.multiply(self.w, self.e, out=_empty(self.e.shape))
        return self._r

    @property
    def sw2(self) -> np.ndarray:
        """sum w^2 (computed once)."""
        if self._sw2 is None:
            self._sw2 = _dot(self.w, self.w)
        return self._sw2

    @property
    def sw3(self) -> np.ndarray:
        """sum w^3 (computed once)."""
        if self._sw3 is None:
            self._sw3 = _dot3(self.w, self.w, self.w)
        return self._sw3

    @property
    def u(self) -> np.ndarray:
        """y'PPy = sum (w e)^2 (computed once)."""
        if self._u is None:
            self._u = _dot(self.r, self.r)
        return self._u

    def take(self, cols: np.ndarray) -> _Fit:
        def sub(a):
            return None if a is None else a[cols]

        if self._st is not None:  # arrays still to make: on the columns taken
            return _Fit(sw=self.sw[cols], mu=self.mu[cols], q=self.q[cols], _sw2=sub(self._sw2),
                        _sw3=sub(self._sw3), _u=sub(self._u), _st=self._st.take(cols), _t=sub(self._t))
        return _Fit(sw=self.sw[cols], mu=self.mu[cols], q=self.q[cols], _w=np.take(self.w, cols, axis=1),
                    _e=np.take(self.e, cols, axis=1), _r=np.take(self.r, cols, axis=1), _sw2=sub(self._sw2),
                    _sw3=sub(self._sw3), _u=sub(self._u))


def _weights_at(st: Studies, tau2: np.ndarray | None) -> np.ndarray:
    """1 / (v + tau^2) (tau2 None: 1 / v), scratch memory inside a ``scratch`` scope."""
    w = _empty(st.V.shape)
    if tau2 is None:
        np.reciprocal(st.V, out=w)
    else:
        np.add(st.V, tau2, out=w)
        np.reciprocal(w, out=w)
    return w


def _fit(st: Studies, tau2: np.ndarray | None) -> _Fit:
    """The fit at ``tau2`` (None: at 0, where the weights are 1/v); its (K, m) arrays are scratch memory inside a
    ``scratch`` scope."""
    w = _weights_at(st, tau2)
    sw = _sum(w)
    mu = _dot(w, st.Y) / sw
    e = np.subtract(st.Y, mu, out=_empty(st.V.shape))
    r = np.multiply(w, e, out=_empty(st.V.shape))
    return _Fit(sw=sw, mu=mu, q=_dot(r, e), _w=w, _e=e, _r=r)


def _fit_sums(st: Studies, tau2: np.ndarray | None) -> _Fit:
    """``_fit`` from the compiled sums (the same numbers to the bit) when the batch runs on the compiled solvers,
    its (K, m) arrays made only if used; else ``_fit``."""
    if not compiled.use_for(st.m):
        return _fit(st, tau2)
    out = np.empty((6, st.m))
    t = np.zeros(st.m) if tau2 is None else np.ascontiguousarray(tau2, dtype=float)
    compiled.kernels().fit_columns(st.Y, st.V, t, tau2 is None, out)
    return _Fit(sw=out[0], mu=out[1], q=out[2], _u=out[3], _sw2=out[4], _sw3=out[5], _st=st,
                _t=None if tau2 is None else t)


# ------------------------------------------------------------------------------------ Q(tau^2) = c


def _hermite_root(x1: np.ndarray, g0: np.ndarray, d0: np.ndarray, g1: np.ndarray, d1: np.ndarray,
                  target: np.ndarray) -> np.ndarray:
    """Where the cubic Hermite interpolant of g (values g0, g1 and slopes d0, d1 at 0 and x1) equals target,
    for g increasing with g0 < target < g1 (a starting point only: clipped to [0, x1])."""
    h0 = x1 * d0
    h1 = x1 * d1
    s = np.clip((target - g0) / (g1 - g0), 0.0, 1.0)
    with np.errstate(divide="ignore", invalid="ignore"):
        for _ in range(4):
            s2 = s * s
            p = (2 * s2 * s - 3 * s2 + 1) * g0 + (s2 * s - 2 * s2 + s) * h0 + (3 * s2 - 2 * s2 * s) * g1 \
                + (s2 * s - s2) * h1
            dp = (6 * s2 - 6 * s) * (g0 - g1) + (3 * s2 - 4 * s + 1) * h0 + (3 * s2 - 2 * s) * h1
            s = np.clip(s - (p - target) / dp, 0.0, 1.0)
    s = np.where(np.isfinite(s), s, 0.5)
    return s * x1


def solve_q(st: Studies, target: np.ndarray, x0: np.ndarray | None = None, q0: np.ndarray | None = None,
            u0: np.ndarray | None = None) -> np.ndarray:
    """tau^2 >= 0 with generalised Q(tau^2) = target, for columns where Q(0) > target (the caller checks).

    Newton's method on 1/Q (see the module docstring) from ``x0`` (0 by default), with ``q0 = Q(x0)`` and
    ``u0 = y'PPy(x0)`` when already known. A step that would end below 0 stops at 0 (Q(0) > target). A column
    ends when a step from the left no longer moves the iterate (or, in the quadratic regime, when the step
    after it is predicted not to), or when Q equals the target to rounding.
    """
    m = st.m
    x = np.zeros(m) if x0 is None else np.array(x0, dtype=float)
    c = np.broadcast_to(np.asarray(target, dtype=float), (m,)).copy()
    if q0 is None or u0 is None:
        f = _fit(st, x)
        q, u = f.q, f.u
    else:
        q, u = np.asarray(q0, dtype=float), np.asarray(u0, dtype=float)
    out = x.copy()
    cols, xa, ca, sub = np.arange(m), x, c, st
    act = np.ones(m, dtype=bool)  # columns still iterating (the others are carried along until a compaction)
    d_prev = x_prev = None
    with np.errstate(divide="ignore", invalid="ignore"):
        for _ in range(_MAXITER):
            step = (q - ca) * q / (ca * u)
            left = q > ca
            xn = np.maximum(xa + step, 0.0)
            d = u / (q * q)
            tol = _NEWTON_TOL * xn
            small = step <= tol
            if d_prev is not None:
                # Newton's error after this step is about |g''| / (2 g') step^2, g = 1/Q
                small |= np.abs((d - d_prev) / (xa - x_prev)) * (step * step) <= (2 * tol) * d
            small &= left
            flat = np.abs(q - ca) <= 4 * _EPS * ca
            done = act & (small | flat | ~np.isfinite(step))
            out[cols[done]] = np.where(small & ~flat, xn, xa)[done]
            act &= ~done
            n_act = np.count_nonzero(act)
            if not n_act:
                return out
            d_prev, x_prev, xa = d, xa, np.where(act, xn, xa)
            if n_act < 0.8 * len(act):  # carrying finished columns costs more than gathering the others
                keep = np.flatnonzero(act)
                cols, ca, d_prev, x_prev, xa = (a[keep] for a in (cols, ca, d_prev, x_prev, xa))
                sub, act = sub.take(keep), np.ones(n_act, dtype=bool)
            with scratch():
                f = _fit(sub, xa)
                q, u = f.q, f.u
    # not reached in practice (the iteration is monotone and quadratic); the bracketed solver as a safeguard
    out[cols] = engine.solve_q_equals(sub.batch(), ca)  # pragma: no cover
    return out  # pragma: no cover


# --------------------------------------------------------------------------------- ML and REML

# Score pieces at one tau^2 per column, as the rows of one array so that subsets are one indexing:
# S = U - L with U = y'PPy and L = tr P (REML) or tr W (ML); dU = -2 y'PPPy and dL = -tr PP (REML) or
# -tr WW (ML) are their derivatives; Q = y'Py.
_T, _S, _U, _DU, _L, _DL, _Q = range(7)


def _score_of(f: _Fit, t: np.ndarray, kind: str) -> tuple[np.ndarray, np.ndarray]:
    """The (7, m) score pieces at ``t`` from the fit there, and sum w, sum w^2 (2, m)."""
    w, sw, r = f.w, f.sw, f.r
    out = np.empty((7, len(sw)))
    out[_T] = t
    out[_Q] = f.q
    u = out[_U] = _dot(r, r)
    swr = _dot(w, r)
    out[_DU] = -2 * (_dot3(w, r, r) - swr * swr / sw)
    sw2 = f.sw2
    if kind == "REML":
        a = sw2 / sw
        out[_L] = sw - a
        out[_DL] = -(sw2 - 2 * _dot3(w, w, w) / sw + a * a)
    else:
        out[_L] = sw
        out[_DL] = -sw2
    out[_S] = u - out[_L]
    return out, np.stack([sw, sw2])


def _score(st: Studies, t: np.ndarray, kind: str) -> np.ndarray:
    with scratch():  # the fit is needed only for its score pieces (a new (7, m) array)
        return _score_of(_fit(st, t), t, kind)[0]


def _upper_bound(st: Studies, kind: str) -> np.ndarray:
    """A tau^2 beyond which the score is negative (proved): S / sum w^2 <= 2 ss - v_min - t + (v_max + t)/k for
    REML (the last term is 0 for ML), with ss the sum of squared deviations from the unweighted mean."""
    k = st.k.astype(float)
    d = st.deviations()
    ss = _dot(d, d)
    if kind == "ML":
        return np.maximum(2 * ss, 0.0) * (1 + 1e-6) + _EPS
    vmin = st.V.min(axis=0)
    vmax = st.v0().max(axis=0)
    return np.maximum((2 * k * ss + vmax - k * vmin) / (k - 1), 0.0) * (1 + 1e-6) + _EPS


def _newton_score(st: Studies, s0: np.ndarray, sums0: np.ndarray, kind: str):
    """A root of the score in (0, upper bound) for columns with S(0) > 0 (``s0``: the pieces at 0).

    Newton's method on L/U - 1 (linear in tau^2 when the variances are equal), started from the
    DerSimonian-Laird estimate, with bisection when a step leaves the bracket [lo, hi] (S(lo) > 0 > S(hi)).
    Returns the roots and every point evaluated, as (columns, score pieces) pairs, for the certificate.
    """
    m = st.m
    lo = np.zeros(m)
    hi = _upper_bound(st, kind)
    with np.errstate(divide="ignore", invalid="ignore"):
        trp0 = sums0[0] - sums0[1] / sums0[0]
        x = (s0[_Q] - (st.k - 1)) / trp0
    x = np.where(np.isfinite(x) & (x > 0) & (x < hi), x, 0.0)
    root = np.zeros(m)
    records = []
    cur = s0
    moved = x > 0
    if moved.any():
        idx = np.flatnonzero(moved)
        D = _score(st.take(idx) if len(idx) < m else st, x[idx], kind)
        records.append((idx, D))
        cur = s0.copy()
        cur[:, idx] = D
        pos = D[_S] > 0
        lo[idx] = np.where(pos, x[idx], 0.0)
        hi[idx] = np.where(pos, hi[idx], x[idx])
    root, more = _score_root(st, cur, lo, hi, kind)
    return root, records + more


def _score_root(st: Studies, cur: np.ndarray, lo: np.ndarray, hi: np.ndarray, kind: str):
    """Newton's method on L/U - 1 from the points of ``cur`` (score pieces), inside brackets [lo, hi] with
    S(lo) > 0 >= S(hi) (bisection when a step leaves them). Returns the roots and the points evaluated."""
    m = st.m
    root = np.zeros(m)
    records = []
    cols, sub = np.arange(m), st
    act = np.ones(m, dtype=bool)  # columns still iterating (the others are carried along until a compaction)
    d_prev = x_prev = None
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        for _ in range(_MAXITER):
            x, S, U, L = cur[_T], cur[_S], cur[_U], cur[_L]
            d = (cur[_DL] * U - L * cur[_DU]) / (U * U)  # the derivative of L/U - 1
            step = S / (U * d)
            xn = x + step
            inside = (xn > lo) & (xn < hi)
            tol = _NEWTON_TOL * x
            conv = (np.abs(step) <= tol) | ((hi - lo) <= 4 * _EPS * hi)
            if d_prev is not None:
                # in the quadratic regime the step after this one would be ~ |g''| / (2 |g'|) step^2
                conv |= inside & (np.abs((d - d_prev) / (x - x_prev)) * (step * step) <= (2 * tol) * np.abs(d))
            done = act & conv
            root[cols[done]] = np.where(inside, xn, x)[done]
            act &= ~conv
            n_act = np.count_nonzero(act)
            if not n_act:
                return root, records
            xn = np.where(act, np.where(inside, xn, 0.5 * (lo + hi)), x)
            d_prev, x_prev = np.where(inside, d, np.nan), x
            if n_act < 0.8 * len(act):  # carrying finished columns costs more than gathering the others
                keep = np.flatnonzero(act)
                cols, xn, lo, hi, d_prev, x_prev = (a[keep] for a in (cols, xn, lo, hi, d_prev, x_prev))
                sub, act = sub.take(keep), np.ones(n_act, dtype=bool)
            cur = _score(sub, xn, kind)
            records.append((cols, cur) if act.all() else (cols[act], cur.compress(act, axis=1)))
            pos = cur[_S] > 0
            lo = np.where(act & pos, xn, lo)
            hi = np.where(act & ~pos, xn, hi)
    raise RuntimeError("the ML/REML root search did not converge")  # pragma: no cover - bisection converges


def _loglik(st: Studies, t: np.ndarray, kind: str) -> np.ndarray:
    """The ML or REML log-likelihood at ``t`` but for terms that do not depend on tau^2 (for comparisons)."""
    f = _fit(st, t)
    logw = np.log(f.w + st.pad)  # (log 1 = 0 where padded, w = 0 there)
    ll = 0.5 * _sum(logw) - 0.5 * f.q
    return ll - 0.5 * np.log(f.sw) if kind == "REML" else ll


def _grid_rel(n_grid: int) -> np.ndarray:
    """The score grid's points relative to its top: 0 and ``n_grid`` from 1e-9 to 1, evenly in log."""
    return np.concatenate([[0.0], np.logspace(-9, 0, n_grid)])


def _grid_likelihood(st: Studies, kind: str, n_grid: int = 24) -> np.ndarray:
    """The score grid of ``engine.tau2_likelihood`` (for the columns the certificate leaves unproven): every
    sign change from + to - of the score on ``[0, hi * logspace(-9, 0, 24)]`` (hi: where the score is <= 0,
    from 2 ss + v_max up by factors of 4) is refined by ``_score_root``; the best by likelihood, or 0 when
    the score is <= 0 there and no maximum beats it, is returned."""
    m = st.m
    d = st.deviations()
    hi = np.maximum(2.0 * _dot(d, d) + st.v0().max(axis=0), 1e-8)
    rel = _grid_rel(n_grid)
    n = len(rel)
    grid = hi[:, None] * rel[None, :]
    D = np.empty((7, m, n))
    redo = np.arange(m)
    for _ in range(200):  # the grid's last point is hi; where the score is still > 0 there, hi times 4
        D[:, redo] = _score(st.take(np.repeat(redo, n)), grid[redo].ravel(), kind).reshape(7, len(redo), n)
        up = D[_S, redo, -1] > 0
        if not up.any():
            break
        redo = redo[up]
        hi[redo] *= 4
        grid[redo] = hi[redo, None] * rel[None, :]
    S = D[_S]
    rows, j = np.nonzero((S[:, :-1] > 0) & (S[:, 1:] <= 0))
    t = np.zeros(0)
    if len(rows):
        sub = st.take(rows)
        A, B = D[:, rows, j], D[:, rows, j + 1]
        lo, hi = A[_T].copy(), B[_T].copy()
        # start from the root of the cubic Hermite interpolant of L/U - 1 on each bracket
        with np.errstate(divide="ignore", invalid="ignore"):
            g = [P[_L] / P[_U] - 1 for P in (A, B)]
            dg = [(P[_DL] * P[_U] - P[_L] * P[_DU]) / P[_U] ** 2 for P in (A, B)]
        x = lo + _hermite_root(hi - lo, g[0], dg[0], g[1], dg[1], np.zeros(len(rows)))
        x = np.where((x > lo) & (x < hi), x, 0.5 * (lo + hi))
        start = _score(sub, x, kind)
        pos = start[_S] > 0
        t, _ = _score_root(sub, start, np.where(pos, x, lo), np.where(pos, hi, x), kind)
    return _best_likelihood(st, kind, S[:, 0] <= 0, rows, t)


def _best_likelihood(st: Studies, kind: str, zero_ok: np.ndarray, rows: np.ndarray, t: np.ndarray) -> np.ndarray:
    """Per column, the maximum of highest likelihood among 0 (where ``zero_ok``: the score is <= 0 there) and the
    maxima ``t`` found in the columns ``rows`` (the score grid's candidates)."""
    m = st.m
    best_t = np.zeros(m)
    best_ll = np.where(zero_ok, _loglik(st, np.zeros(m), kind), -np.inf)
    if len(rows):
        ll = _loglik(st.take(rows), t, kind)
        for i in np.argsort(ll):  # ascending, so the best of a row is written last
            if ll[i] > best_ll[rows[i]]:
                best_t[rows[i]], best_ll[rows[i]] = t[i], ll[i]
    return best_t


_MARGIN = 1e-9  # relative margin of every inequality a certificate relies on (rounding never decides one)
_ZONE = 1e-12  # relative width of the zone next to a root where a certificate may leave the sign open


def _piece_proves(A: np.ndarray, B: np.ndarray) -> np.ndarray:
    """Whether, on each [a, b] = [A_t, B_t], the score is provably

    - positive (on [a, b), but for a zone of relative width 1e-12 before b when S(b) is a root's rounding),
    - negative (on (a, b], but for such a zone after a), or
    - strictly decreasing.

    U and L are convex and decreasing, so S <= up = (chord of U) - (upper envelope of L's tangents), a
    concave piecewise-linear function (largest at a, b or where the tangents cross), and S >= low =
    (upper envelope of U's tangents) - (chord of L), convex (smallest likewise); U' and L' increase, so
    S' <= U'(b) - L'(a). When up decreases at a, S <= S(a) + up'(a)(t - a) on the whole piece (and
    likewise for low at b): this proves the sign next to a point where S is only rounding away from 0.
    """
    shape = A.shape[1:]
    A, B = A.reshape(len(A), -1), B.reshape(len(B), -1)
    a, b = A[_T], B[_T]
    aU, aL, adU, adL, aS = A[_U], A[_L], A[_DU], A[_DL], A[_S]
    bU, bL, bdU, bdL, bS = B[_U], B[_L], B[_DU], B[_DL], B[_S]
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        width = b - a
        cu = (bU - aU) / width  # chord slopes
        cl = (bL - aL) / width
        lift = _MARGIN * np.maximum(aL, aU)
        ok = bdU - adL < -_MARGIN * np.maximum(-adL, -adU)  # decreasing
        slope = cu - adL  # up'(a): from a on, S <= S(a) + slope (t - a)
        ok |= (slope < -_MARGIN * np.abs(adL)) & (bS < -lift) & (aS <= -slope * _ZONE * b)
        slope = bdU - cl  # low'(b): up to b, S >= S(b) - slope (b - t)
        ok |= (slope < -_MARGIN * np.abs(bdU)) & (aS > lift) & (bS >= slope * _ZONE * b)
        rest = np.flatnonzero(~ok & (((aS < -lift) & (bS < -lift)) | ((aS > lift) & (bS > lift))))
        if not len(rest):
            return ok.reshape(shape)
        # the rest, of one sign at both ends: the bound where the tangents cross
        a, b, aU, aL, adU, adL, aS = a[rest], b[rest], aU[rest], aL[rest], adU[rest], adL[rest], aS[rest]
        bU, bL, bdU, bdL, cu, cl, lift = bU[rest], bL[rest], bdU[rest], bdL[rest], cu[rest], cl[rest], lift[rest]
        if_neg = aS < 0
        tk = np.where(if_neg, (bL - aL + adL * a - bdL * b) / (adL - bdL), (bU - aU + adU * a - bdU * b) / (adU - bdU))
        tk = np.clip(np.where(np.isfinite(tk), tk, a), a, b)
        d = tk - a
        up = aU + cu * d - np.maximum(aL + adL * d, bL + bdL * (tk - b))
        low = np.maximum(aU + adU * d, bU + bdU * (tk - b)) - (aL + cl * d)
        ok[rest] = np.where(if_neg, up < -lift, low > lift)
    return ok.reshape(shape)


def _tail_proves(vmin: np.ndarray, B: np.ndarray) -> np.ndarray:
    """S(t) < 0 for every t >= B_t when Q(b) < L(b) (v_min + b) (module docstring)."""
    return B[_Q] < B[_L] * (vmin + B[_T]) * (1 - _MARGIN)


def _certify(st: Studies, records: list, kind: str, rounds: int = 3) -> np.ndarray:
    """Columns whose score provably changes sign once at most, from + to - (so that the root found, or 0 when
    S(0) <= 0, is the global maximum), from ``records``: (columns, score pieces) of the points evaluated (0
    included; several per column, no column twice in one record).

    Pieces that prove nothing are split at their geometric midpoint (next to 0: at b/16), and a tail bound
    that fails is tried again at 4 times the point, up to ``rounds`` times. Columns left unproven, or whose
    score goes up through 0 between two points (another local maximum), are returned False."""
    m = st.m
    vmin = st.V.min(axis=0)
    cols = np.concatenate([c for c, _ in records])
    D = np.concatenate([d for _, d in records], axis=1)
    # by column, then by t: exactly, so that the pieces (and the result) do not depend on the other columns
    order = np.argsort(D[_T])
    order = order[np.argsort(cols[order].astype(np.uint16 if m < 2**16 else np.int64), kind="stable")]
    cols, D = cols[order], np.take(D, order, axis=1)
    t = D[_T]
    same = cols[1:] == cols[:-1]
    ia = np.flatnonzero(same & (t[1:] > t[:-1]))
    A, B, pc = np.take(D, ia, axis=1), np.take(D, ia + 1, axis=1), cols[ia]
    last = np.flatnonzero(np.r_[~same, True])
    T, tc = np.take(D, last, axis=1), cols[last]
    good = _piece_proves(A, B)
    tail = _tail_proves(vmin[tc], T)
    # a score that goes up from <= 0 to > 0 between two points has another local maximum: no proof to seek
    hopeless = np.zeros(m, dtype=bool)
    hopeless[pc[(A[_S] <= 0) & (B[_S] > 0)]] = True
    good |= hopeless[pc]
    tail |= hopeless[tc]
    pc, A, B = pc[~good], A.compress(~good, axis=1), B.compress(~good, axis=1)
    tc, T = tc[~tail], T.compress(~tail, axis=1)
    for _ in range(rounds):
        if not len(pc) and not len(tc):
            break
        fa, fb = A[_T], B[_T]
        mid = np.where(fa > 0, np.sqrt(fa * fb), fb / 16)
        new_cols = np.concatenate([pc, tc])
        new = _score(st.take(new_cols), np.concatenate([mid, 4 * T[_T]]), kind)
        nm, nt = new[:, : len(pc)], new[:, len(pc):]
        pc2 = np.concatenate([pc, pc, tc])
        A2 = np.concatenate([A, nm, T], axis=1)
        B2 = np.concatenate([nm, B, nt], axis=1)
        good = _piece_proves(A2, B2)
        tail = _tail_proves(vmin[tc], nt)
        hopeless[pc[(nm[_S] > 0) & (A[_S] <= 0)]] = True
        hopeless[pc[(nm[_S] <= 0) & (B[_S] > 0)]] = True
        good |= hopeless[pc2]
        tail |= hopeless[tc]
        pc, A, B = pc2[~good], A2.compress(~good, axis=1), B2.compress(~good, axis=1)
        tc, T = tc[~tail], nt.compress(~tail, axis=1)
    ok = ~hopeless
    ok[pc] = False
    ok[tc] = False
    return ok


def tau2_likelihood(st: Studies, kind: str, f0: _Fit | None = None, probe: dict | None = None) -> np.ndarray:
    """Global maximiser of the ML or REML likelihood over tau^2 >= 0, for columns with k >= 2 (``f0``: the
    fit at tau^2 = 0, when already made; ``probe``: see ``estimate_tau2``). Large batches run on the compiled
    solvers (``compiled``; the same numbers)."""
    if compiled.use_for(st.m):
        return _tau2_likelihood_compiled(st, kind, probe)
    m = st.m
    zero = np.zeros(m)
    s0, sums0 = _score_of(_fit(st, None) if f0 is None else f0, zero, kind)
    tau = np.zeros(m)
    records = [(np.arange(m), s0)]
    has_root = s0[_S] > 0
    if has_root.any():
        rc = np.flatnonzero(has_root)
        root, newton = _newton_score(st.take(rc) if len(rc) < m else st, np.take(s0, rc, axis=1),
                                     np.take(sums0, rc, axis=1), kind)
        tau[rc] = root
        last_of = np.full(m, -1)
        for i, (c, _) in enumerate(newton):
            last_of[rc[c]] = i
        # the certificate keeps the Newton points but those within 2% of the root (save the last, next to it),
        # and wants one point on each side of the root (a Newton point will do): root/2 and 1.25 root else
        have_l = np.zeros(m, dtype=bool)
        have_r = np.zeros(m, dtype=bool)
        for i, (c, D) in enumerate(newton):
            c = rc[c]
            rel = D[_T] / tau[c]
            keep = (np.abs(rel - 1) > 0.02) | (last_of[c] == i)
            if not keep.all():
                c, D, rel = c[keep], D.compress(keep, axis=1), rel[keep]
            records.append((c, D))
            have_l[c[(rel >= 0.35) & (rel <= 0.8)]] = True
            have_r[c[(rel >= 1.1) & (rel <= 1.5)]] = True
        nl = np.flatnonzero(has_root & ~have_l)
        nr = np.flatnonzero(has_root & ~have_r)
    else:
        nl = nr = np.zeros(0, dtype=int)
    # every column's farthest point so far (1.25 root counted where it is still to come)
    far = np.zeros(m)
    for c, D in records[1:]:
        far[c] = np.maximum(far[c], D[_T])
    far[nr] = np.maximum(far[nr], 1.25 * tau[nr])
    # one evaluation for the missing points next to the root and for the point where the tail bound is tried:
    # twice the farthest point, and at least the spread of the effects (about tau^2 + a typical v)
    d = st.deviations()
    top = np.maximum(np.maximum(2.0 * far, _dot(d, d) / (st.k - 1)), 1e-12)
    # (every column at ``top`` on the studies as they are, the few side points on a copy of their columns: one
    # copy of every column for a single call cost more, measured by turns in one process)
    E_top = _score(st, top, kind)
    a = len(nl)
    if a + len(nr):
        E = _score(st.take(np.concatenate([nl, nr])), np.concatenate([0.5 * tau[nl], 1.25 * tau[nr]]), kind)
        records += [(nl, E[:, :a]), (nr, E[:, a:])]
    records.append((np.arange(m), E_top))
    if probe is not None:
        probe.update(t=E_top[_T].copy(), q=E_top[_Q].copy(), u=E_top[_U].copy())
    proved = _certify(st, records, kind)
    if not proved.all():
        bad = np.flatnonzero(~proved)
        tau[bad] = _grid_likelihood(st.take(bad), kind)
    return tau


def _tau2_likelihood_compiled(st: Studies, kind: str, probe: dict | None) -> np.ndarray:
    """``tau2_likelihood`` on the compiled solvers: the same root, certificate and probe, column by column; the
    columns left unproven are solved on the score grid here."""
    likelihood_columns = compiled.kernels().likelihood_columns
    m = st.m
    tau = np.empty(m)
    proved = np.empty(m, dtype=np.int8)
    far = np.empty((3, m))
    likelihood_columns(st.Y, st.V, st.k, kind == "REML", tau, proved, far)
    if (proved < 0).any():
        raise RuntimeError("the ML/REML root search did not converge")  # pragma: no cover - bisection converges
    if probe is not None:
        probe.update(t=far[0], q=far[1], u=far[2])
    bad = np.flatnonzero(proved == 0)
    if len(bad):
        tau[bad] = _grid_likelihood_compiled(st.take(bad), kind)
    return tau


def _grid_likelihood_compiled(st: Studies, kind: str, n_grid: int = 24) -> np.ndarray:
    """``_grid_likelihood`` on the compiled solvers: the same grid and maxima, and the same choice among them."""
    grid_columns = compiled.kernels().grid_columns
    m = st.m
    zero_ok = np.empty(m, dtype=bool)
    rows = np.empty(m * n_grid, dtype=np.int64)
    t = np.empty(m * n_grid)
    n = grid_columns(st.Y, st.V, st.k, kind == "REML", _grid_rel(n_grid), zero_ok, rows, t)
    if n < 0:
        raise RuntimeError("the ML/REML root search did not converge")  # pragma: no cover - bisection converges
    return _best_likelihood(st, kind, zero_ok, rows[:n], t[:n])


def _solve_q_compiled(st: Studies, cols: np.ndarray, target: np.ndarray) -> np.ndarray:
    """``solve_q(st.take(cols), target)`` on the compiled solvers (the same Newton steps, column by column)."""
    out = np.empty(len(cols))
    compiled.kernels().q_equals_columns(st.Y, st.V, np.asarray(cols, dtype=np.int64),
                                        np.ascontiguousarray(target, dtype=float), out)
    stuck = np.flatnonzero(np.isnan(out))
    if len(stuck):  # pragma: no cover - not reached in practice (as in solve_q): the bracketed solver
        out[stuck] = engine.solve_q_equals(st.take(cols[stuck]).batch(), target[stuck])
    return out


def _qprofile_compiled(st: Studies, cols: np.ndarray, tau2: np.ndarray, crit_u: np.ndarray, crit_l: np.ndarray,
                       probe: dict) -> tuple[np.ndarray, np.ndarray]:
    """``_qprofile_bounds`` on the compiled solvers (the same starts and Newton steps, column by column)."""
    qprofile_columns = compiled.kernels().qprofile_columns
    far = np.stack([probe["t"], probe["q"], probe["u"]]) if "t" in probe else np.full((3, st.m), np.nan)
    out = np.empty((2, len(cols)))
    qprofile_columns(st.Y, st.V, np.asarray(cols, dtype=np.int64), np.ascontiguousarray(tau2, dtype=float),
                     np.stack([crit_u, crit_l]), far, out)
    stuck = np.isnan(out)
    if stuck.any():  # pragma: no cover - not reached in practice (as in solve_q): the bracketed solver
        b, c = np.nonzero(stuck)
        out[b, c] = engine.solve_q_equals(st.take(cols[c]).batch(), np.stack([crit_u, crit_l])[b, c])
    return out[0], out[1]


# ------------------------------------------------------------------------------------------ estimators


def estimate_tau2(st: Studies, method: str, f0: _Fit | None = None, probe: dict | None = None) -> np.ndarray:
    """tau^2 by ``method`` for every column (0 where k = 1, and for "FE"); ``f0`` is the fit at tau^2 = 0.

    ``probe`` (ML/REML): a dict that receives, as arrays over the columns (NaN where none), a point ``t`` beyond
    tau^2-hat where the fit was evaluated, with ``q`` = Q(t) and ``u`` = y'PPy(t) there (a start for the
    Q-profile bounds)."""
    m = st.m
    out = np.zeros(m)
    if method == "FE":
        return out
    ok = st.k >= 2
    if not ok.any():
        return out
    if not ok.all():
        cols = np.flatnonzero(ok)
        sub_probe = None if probe is None else {}
        out[cols] = estimate_tau2(st.take(cols), method, None if f0 is None else f0.take(cols), sub_probe)
        if sub_probe:
            for key, val in sub_probe.items():
                probe[key] = np.full(m, np.nan)
                probe[key][cols] = val
        return out
    k = st.k.astype(float)
    if method in ("DL", "HS", "PM", "EB") and f0 is None:
        f0 = _fit(st, None)
    with np.errstate(divide="ignore", invalid="ignore"):
        if method == "DL":
            trp = f0.sw - f0.sw2 / f0.sw
            return np.maximum(0.0, (f0.q - (k - 1)) / trp)
        if method == "HS":
            return np.maximum(0.0, (f0.q - k) / f0.sw)
        if method == "HE":
            d = st.deviations()
            trpv = _sum(st.v0()) * (1.0 - 1.0 / k)
            return np.maximum(0.0, (_dot(d, d) - trpv) / (k - 1))
        if method == "SJ":
            d = st.deviations()
            tau0 = _dot(d, d) / k
            return np.maximum(0.0, tau0 * _fit(st, tau0).q / (k - 1))
    if method in ("PM", "EB"):
        need = f0.q > k - 1
        if need.any():
            cols = np.flatnonzero(need)
            if compiled.use_for(st.m):
                out[cols] = _solve_q_compiled(st, cols, (k - 1)[cols])
            else:
                out[cols] = solve_q(st.take(cols), (k - 1)[cols])
        return out
    if method in ("ML", "REML"):
        return tau2_likelihood(st, method, f0, probe)
    raise ValueError(method)  # pragma: no cover - guarded by normalise_method


def _tr_pp(sw: np.ndarray, sw2: np.ndarray, sw3: np.ndarray) -> np.ndarray:
    """tr(PP) for an intercept: sum w^2 - 2 sum w^3 / sum w + (sum w^2 / sum w)^2."""
    a = sw2 / sw
    return sw2 - 2 * sw3 / sw + a * a


def tau2_se(st: Studies, tau2: np.ndarray, method: str, f0: _Fit, f: _Fit) -> np.ndarray:
    """Standard error of tau^2 as metafor reports it (``se.tau2``); ``f0``/``f`` are the fits at 0 and tau^2."""
    k = st.k.astype(float)
    t = np.maximum(tau2, 0.0)
    with np.errstate(divide="ignore", invalid="ignore"):
        if method == "FE":
            return np.full(st.m, np.nan)
        if method == "ML":
            return np.sqrt(2.0 / f.sw2)
        if method == "REML":
            return np.sqrt(2.0 / _tr_pp(f.sw, f.sw2, f.sw3))
        if method in ("EB", "PM"):
            return np.sqrt(2 * k**2 / (k - 1) / f.sw**2)
        if method in ("DL", "HS"):
            sw2 = f0.sw2
            trp = f0.sw - sw2 / f0.sw
            spp = _tr_pp(f0.sw, sw2, f0.sw3)
            core = 2 * (k - 1) + 4 * t * trp + 2 * t**2 * spp
            return np.sqrt(core / trp**2) if method == "DL" else np.sqrt(core / f0.sw**2)
        if method == "HE":
            v = st.v0()
            sv = _sum(v)
            s_pvpv = _dot(v, v) * (1 - 2 / k) + sv**2 / k**2
            trpv = sv * (1 - 1 / k)
            return np.sqrt((2 * s_pvpv + 4 * t * trpv + 2 * t**2 * (k - 1)) / (k - 1) ** 2)
        if method == "SJ":
            d = st.deviations()
            tau0 = _dot(d, d) / k
            w = st.weights(tau0)
            sw = _sum(w)
            w2 = w * w
            sw2 = _sum(w2)
            v = st.v0()
            dv = w * v  # W V
            s_pvpv = _dot(dv, dv) - 2 * _dot(w, dv * dv) / sw + (_dot(w, dv) / sw) ** 2
            w2v = _dot(w2, v)
            s_pvp = w2v - 2 * _dot(w2 * w, v) / sw + w2v * sw2 / sw**2
            s_pp = _tr_pp(sw, sw2, _dot(w2, w))
            return np.sqrt(tau0**2 / (k - 1) ** 2 * (2 * s_pvpv + 4 * t * s_pvp + 2 * t**2 * s_pp))
    raise ValueError(method)  # pragma: no cover


# -------------------------------------------------------------------------------------------- the fit


def _per_value(fn, x: np.ndarray) -> np.ndarray:
    """``fn`` (a special function of one array) evaluated once per distinct value of ``x``."""
    u, inv = np.unique(x, return_inverse=True)
    return np.asarray(fn(u))[inv]


def _qprofile_bounds(st: Studies, cols: np.ndarray, tau2: np.ndarray, crit_u: np.ndarray, crit_l: np.ndarray,
                     f0: _Fit, f: _Fit, probe: dict) -> tuple[np.ndarray, np.ndarray]:
    """The Q-profile bounds of tau^2 for the columns ``cols``: the lower solves Q = crit_u, the upper Q = crit_l (0
    where Q(0) <= the target); ``f0``, ``f``: the fits at 0 and at tau^2-hat; ``probe``: see ``estimate_tau2``."""
    if compiled.use_for(st.m):
        return _qprofile_compiled(st, cols, tau2, crit_u, crit_l, probe)
    # both bounds in one solve: the lower solves Q = crit_u, the upper Q = crit_l; where Q(0) <= the
    # target the bound is 0
    target = np.concatenate([crit_u, crit_l])
    col2 = np.concatenate([cols, cols])
    need = f0.q[col2] > target
    nc, target = col2[need], target[need]
    x0, qs, us = tau2[nc], f.q[nc], f.u[nc]
    # starts: within (0, tau^2-hat), or within (tau^2-hat, t) for a point t beyond it evaluated by the ML/REML
    # search, the root of the cubic Hermite interpolant of 1/Q on that interval; beyond t, t itself; else
    # tau^2-hat (Newton on 1/Q from the left)
    left = qs < target
    lo_t, hi_t = np.zeros(len(nc)), x0.copy()
    g0, d0, g1, d1 = (np.full(len(nc), np.nan) for _ in range(4))
    if left.any():
        ii = nc[left]
        q0, u0 = f0.q[ii], f0.u[ii]
        g0[left], d0[left], g1[left], d1[left] = 1 / q0, u0 / q0**2, 1 / qs[left], us[left] / qs[left] ** 2
    right = np.zeros(len(nc), dtype=bool)
    if "t" in probe:
        pt, pq, pu = probe["t"][nc], probe["q"][nc], probe["u"][nc]
        far = ~left & (pt > x0) & np.isfinite(pq)
        right = far & (pq < target)
        beyond = far & ~right
        lo_t[right], hi_t[right] = x0[right], pt[right]
        g0[right], d0[right] = 1 / qs[right], us[right] / qs[right] ** 2
        g1[right], d1[right] = 1 / pq[right], pu[right] / pq[right] ** 2
        x0[beyond], qs[beyond], us[beyond] = pt[beyond], pq[beyond], pu[beyond]
    herm = left | right
    if herm.any():
        xi = lo_t[herm] + _hermite_root(hi_t[herm] - lo_t[herm], g0[herm], d0[herm], g1[herm], d1[herm],
                                        1 / target[herm])
        fi = _fit(st.take(nc[herm]), xi)
        x0[herm], qs[herm], us[herm] = xi, fi.q, fi.u
    res = solve_q(st.take(nc), target, x0, qs, us)
    t_lo = np.zeros(len(cols))
    t_hi = np.zeros(len(cols))
    lo_part = np.flatnonzero(need) < len(cols)
    pos = np.concatenate([np.arange(len(cols))] * 2)[need]
    t_lo[pos[lo_part]] = res[lo_part]
    t_hi[pos[~lo_part]] = res[~lo_part]
    return t_lo, t_hi


#: the fields of ``pool_columns`` (those of ``PoolManyResult`` but the conventions)
FIELDS = ("estimate", "se", "stat", "p", "ci_low", "ci_high", "pi_low", "pi_high", "tau2", "tau2_se", "tau2_ci_low",
          "tau2_ci_high", "tau", "i2", "i2_ci_low", "i2_ci_high", "h2", "h2_ci_low", "h2_ci_high", "q", "q_df", "q_p",
          "k", "df", "s2w", "loglik", "weights", "test_used")
_CI_FIELDS = ("tau2_ci_low", "tau2_ci_high", "i2_ci_low", "i2_ci_high", "h2_ci_low", "h2_ci_high")


def pool_columns(st: Studies, conv: Conventions, *, tau2_ci: bool = True,
                 tau2: np.ndarray | None = None, fields: frozenset | None = None) -> dict[str, np.ndarray]:
    """Every field of ``PoolManyResult`` for every column (:func:`_pool_columns`), the fits in scratch memory."""
    compiled.note_batch(st.m)
    with scratch():
        return _pool_columns(st, conv, tau2_ci=tau2_ci, tau2=tau2, fields=fields)


def _pool_columns(st: Studies, conv: Conventions, *, tau2_ci: bool = True,
                  tau2: np.ndarray | None = None, fields: frozenset | None = None) -> dict[str, np.ndarray]:
    """Every field of ``PoolManyResult`` (except the conventions) for every column, as metafor 3.8 computes it;
    ``tau2`` (one value per column) fixes tau^2 instead of estimating it (metafor ``rma(tau2=)``). ``fields``: only
    these (and ``k``) are returned, and the costly ones not asked for (p-values, weights, log-likelihood, the SE
    of tau^2, the Q-profile intervals) are not computed; each field asked for is the same to the bit as without
    ``fields``.

    Validated against: metafor 3.8 ``rma.uni(yi, vi, method=, test=)``, ``confint()`` (Q-profile) and
    ``predict(pi.type=)`` (tests/test_reference_metafor.py), and against the general engine at 1e-12
    (tests/test_engine_snapshot.py).
    """
    method, test = conv.method, conv.test
    m = st.m
    k = st.k

    def wanted(*names: str) -> bool:
        return fields is None or any(n in fields for n in names)
    dfree = (k - 1).astype(float)
    has_df = dfree > 0
    f0 = _fit_sums(st, None)
    probe: dict = {}
    tau2 = estimate_tau2(st, method, f0, probe) if tau2 is None else np.asarray(tau2, dtype=float)
    f = f0 if method == "FE" else _fit_sums(st, tau2)
    b, sw = f.mu, f.sw
    alpha = 1.0 - conv.level
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        vb = 1.0 / sw
        # metafor coerces t/HKSJ to z when k = 1 (no residual degrees of freedom)
        use_t = has_df if test in ("t", "hksj") else np.zeros(m, dtype=bool)
        s2w = np.ones(m)
        if test == "hksj":
            rss = f.q
            s2 = np.where(rss <= _EPS, 0.0, rss / dfree)
            if conv.adhoc:
                s2 = np.maximum(s2, 1.0)
            s2w = np.where(use_t, s2, 1.0)
            vb = vb * s2w
        se = np.sqrt(vb)
        stat = b / se
        dft = np.where(use_t, dfree, 1.0)
        zcrit = special.ndtri(1 - alpha / 2)
        crit = np.where(use_t, _per_value(lambda d: special.stdtrit(d, 1 - alpha / 2), dft), zcrit)
        pval = None
        if wanted("p"):
            pval = np.where(use_t, 2 * special.stdtr(dft, -np.abs(stat)), 2 * special.ndtr(-np.abs(stat)))
        ci_low = b - crit * se
        ci_high = b + crit * se

        # heterogeneity, always from the common-effect weights (as metafor)
        trp0 = f0.sw - f0.sw2 / f0.sw
        q = np.where(has_df, np.maximum(0.0, f0.q), 0.0)
        q_p = np.where(has_df, special.chdtrc(np.maximum(dfree, 1), q), 1.0) if wanted("q_p") else None
        vt = np.where(has_df, dfree / trp0, 0.0)
        i2, h2 = engine.i2_h2(q, dfree, tau2, vt, has_df, from_q=method == "FE" or conv.i2_type == "q")

        weights = ll = t_se = None
        if wanted("weights"):
            weights = (f.w * (100 / sw)).T
            weights[st.pad.T] = np.nan
        if wanted("loglik"):
            logw = np.log(f.w + st.pad)  # (log 1 = 0 where padded, w = 0 there)
            logv = -_sum(logw)
            kf = k.astype(float)
            if method == "REML":
                ll = -0.5 * (kf - 1) * np.log(2 * np.pi) - 0.5 * logv - 0.5 * np.log(sw) - 0.5 * f.q + 0.5 * np.log(kf)
            else:
                ll = -0.5 * kf * np.log(2 * np.pi) - 0.5 * logv - 0.5 * f.q
        if wanted("tau2_se"):
            t_se = np.where(has_df, tau2_se(st, tau2, method, f0, f), np.nan)

        # prediction interval (predict.rma, pi.type)
        if conv.pi_type == "default":
            pcrit, vpred = crit, vb
        elif conv.pi_type == "simple":
            pcrit, vpred = np.full(m, zcrit), np.zeros(m)
        else:
            ddf = np.maximum(dfree - 1 if conv.pi_type == "riley" else dfree, 1)
            pcrit, vpred = _per_value(lambda d: special.stdtrit(d, 1 - alpha / 2), ddf), vb
        half = pcrit * np.sqrt(vpred + tau2)
        pi_low, pi_high = b - half, b + half

    # Q-profile CI for tau^2 (confint.rma.uni, type "QP"), solved from tau^2-hat
    t_lo = np.full(m, np.nan)
    t_hi = np.full(m, np.nan)
    if method != "FE" and tau2_ci and has_df.any() and wanted(*_CI_FIELDS):
        cols = np.flatnonzero(has_df)
        d = dfree[cols]
        crit_u = _per_value(lambda x: special.chdtri(x, alpha / 2), d)
        crit_l = _per_value(lambda x: 2 * special.gammaincinv(x / 2, alpha / 2), d)
        t_lo[cols], t_hi[cols] = _qprofile_bounds(st, cols, tau2, crit_u, crit_l, f0, f, probe)
    with np.errstate(divide="ignore", invalid="ignore"):
        if not wanted(*_CI_FIELDS):
            i_lo = i_hi = h_lo = h_hi = None
        elif conv.i2_type == "q" or method == "FE":
            i_lo, i_hi = engine.i2_ci_higgins(q, k, conv.level)
            h_lo, h_hi = 1 / (1 - i_lo / 100), 1 / (1 - i_hi / 100)
        else:
            i_lo = 100 * t_lo / (vt + t_lo)
            i_hi = 100 * t_hi / (vt + t_hi)
            h_lo = t_lo / vt + 1
            h_hi = t_hi / vt + 1
    out = dict(
        estimate=b, se=se, stat=stat, p=pval, ci_low=ci_low, ci_high=ci_high, pi_low=pi_low, pi_high=pi_high,
        tau2=tau2, tau2_se=t_se, tau2_ci_low=t_lo, tau2_ci_high=t_hi, tau=np.sqrt(tau2), i2=i2, i2_ci_low=i_lo,
        i2_ci_high=i_hi, h2=h2, h2_ci_low=h_lo, h2_ci_high=h_hi, q=q, q_df=dfree, q_p=q_p, k=k,
        df=np.where(use_t, dfree, np.nan), s2w=s2w, loglik=ll, weights=weights,
        test_used=np.where(use_t, test, "z").astype(object) if wanted("test_used") else None,
    )
    if fields is None:
        return out
    return {name: val for name, val in out.items() if name in fields or name == "k"}

"""The compiled solvers of ``compiled`` (numba), imported only when used: see ``compiled`` for what they do and
why they give the NumPy engine's numbers to the bit. Each function ports the ``intercept`` function it names, in
the same order of operations; compiled on first use and cached on disk (``cache=True``)."""

from __future__ import annotations

import numba
import numpy as np

_EPS = float(np.finfo(float).eps)
_NEWTON_TOL = 32 * _EPS
_MAXITER = 100
_MARGIN = 1e-9
_ZONE = 1e-12
# points a column's certificate may hold: at most 105 before it (0, the start, 100 Newton steps, two side points and
# the far one), and each of its 3 rounds adds one point per open piece and at most doubles them (105 + 104 x 7 + 3 <
# 1,024): never reached, so a column is never left unproven here that intercept would prove
_MAXPTS = 1024

# the score pieces' rows, as in intercept: t, S, U = y'PPy, U', L = tr P (REML) or tr W (ML), L', Q = y'Py;
# then sum w and sum w^2
_T, _S, _U, _DU, _L, _DL, _Q, _SW, _SW2 = range(9)


jit = numba.njit(cache=True, nogil=True, error_model="numpy", fastmath=False)
#: small functions called in the solvers' loops, inlined by numba (a call costs as much as a short loop)
inline = numba.njit(cache=True, nogil=True, error_model="numpy", fastmath=False, inline="always")


@inline
def nmax(a, b):  # np.maximum: NaN when either is NaN
    if a != a or b != b:
        return np.nan
    return a if a >= b else b


@inline
def nmin(a, b):
    if a != a or b != b:
        return np.nan
    return a if a <= b else b


@inline
def weighted_mean(y, v, t, w):
    """The weights 1 / (v + t) of a column into w, and their sum and the weighted mean of y (intercept._fit)."""
    sw = 0.0
    swy = 0.0
    for i in range(len(y)):
        w[i] = 1.0 / (v[i] + t)
        sw += w[i]
        swy += w[i] * y[i]
    return sw, swy / sw


@inline
def pieces(y, v, t, reml, out, w):
    """Score pieces of a column (y, v: its studies) at t (intercept._score_of), and sum w, sum w^2, into
    out[0:9]; w: scratch of the column's length."""
    K = len(y)
    sw, mu = weighted_mean(y, v, t, w)
    q = 0.0
    u = 0.0
    swr = 0.0
    swrr = 0.0
    sw2 = 0.0
    sw3 = 0.0
    for i in range(K):
        wi = w[i]
        e = y[i] - mu
        r = wi * e
        q += r * e
        u += r * r
        swr += wi * r
        swrr += wi * r * r
        sw2 += wi * wi
        sw3 += wi * wi * wi
    out[_T] = t
    out[_Q] = q
    out[_U] = u
    out[_DU] = -2 * (swrr - swr * swr / sw)
    if reml:
        a = sw2 / sw
        out[_L] = sw - a
        out[_DL] = -(sw2 - 2 * sw3 / sw + a * a)
    else:
        out[_L] = sw
        out[_DL] = -sw2
    out[_S] = u - out[_L]
    out[_SW] = sw
    out[_SW2] = sw2


@inline
def qu(y, v, t, w):
    """Q = y'Py and y'PPy of a column at t (intercept._fit); w: scratch."""
    K = len(y)
    sw, mu = weighted_mean(y, v, t, w)
    q = 0.0
    u = 0.0
    for i in range(K):
        e = y[i] - mu
        r = w[i] * e
        q += r * e
        u += r * r
    return q, u


@inline
def column(Y, V, j, y, v):
    """Column j of (K, m) arrays into the contiguous y, v."""
    for i in range(Y.shape[0]):
        y[i] = Y[i, j]
        v[i] = V[i, j]


@inline
def piece_proves(A, B):
    """intercept._piece_proves for one piece [A_t, B_t]."""
    a = A[_T]
    b = B[_T]
    aU, aL, adU, adL, aS = A[_U], A[_L], A[_DU], A[_DL], A[_S]
    bU, bL, bdU, bdL, bS = B[_U], B[_L], B[_DU], B[_DL], B[_S]
    width = b - a
    cu = (bU - aU) / width
    cl = (bL - aL) / width
    lift = _MARGIN * nmax(aL, aU)
    ok = bdU - adL < -_MARGIN * nmax(-adL, -adU)
    slope = cu - adL
    ok = ok or ((slope < -_MARGIN * abs(adL)) and (bS < -lift) and (aS <= -slope * _ZONE * b))
    slope = bdU - cl
    ok = ok or ((slope < -_MARGIN * abs(bdU)) and (aS > lift) and (bS >= slope * _ZONE * b))
    if ok or not (((aS < -lift) and (bS < -lift)) or ((aS > lift) and (bS > lift))):
        return ok
    if_neg = aS < 0
    if if_neg:
        tk = (bL - aL + adL * a - bdL * b) / (adL - bdL)
    else:
        tk = (bU - aU + adU * a - bdU * b) / (adU - bdU)
    if not np.isfinite(tk):
        tk = a
    tk = nmin(nmax(tk, a), b)
    d = tk - a
    if if_neg:
        up = aU + cu * d - nmax(aL + adL * d, bL + bdL * (tk - b))
        return up < -lift
    low = nmax(aU + adU * d, bU + bdU * (tk - b)) - (aL + cl * d)
    return low > lift


@inline
def tail_proves(vmin, T):
    return T[_Q] < T[_L] * (vmin + T[_T]) * (1 - _MARGIN)


@jit
def certify(y, v, w, reml, P, n, vmin, rounds, pts, pa, pb):
    """intercept._certify for one column (y, v; w: scratch) from its n points P[:n] (rows: score pieces); pts, pa
    and pb are scratch: the points, and two lists of pieces as pairs of indices into them."""
    # the points by t (insertion sort: a few dozen at most), into pts
    for i in range(n):
        x = P[i, _T]
        h = i
        while h > 0 and pts[h - 1, _T] > x:
            pts[h] = pts[h - 1]
            h -= 1
        pts[h] = P[i]
    # pieces between consecutive points of increasing t, as (index of A, index of B) into the points
    na = 0
    for i in range(n - 1):
        if pts[i + 1, _T] > pts[i, _T]:
            if pts[i, _S] <= 0 and pts[i + 1, _S] > 0:  # another local maximum: no proof to seek
                return False
            if not piece_proves(pts[i], pts[i + 1]):
                pa[na, 0] = i
                pa[na, 1] = i + 1
                na += 1
    npts = n
    tail = n - 1  # index of the tail point
    tail_open = not tail_proves(vmin, pts[tail])
    for _ in range(rounds):
        if na == 0 and not tail_open:
            break
        if npts + na + 1 > _MAXPTS or 2 * na + 1 > _MAXPTS:
            return False
        nb = 0
        for p in range(na):
            ia = pa[p, 0]
            ib = pa[p, 1]
            fa = pts[ia, _T]
            fb = pts[ib, _T]
            mid = np.sqrt(fa * fb) if fa > 0 else fb / 16
            pieces(y, v, mid, reml, pts[npts], w)
            im = npts
            npts += 1
            if (pts[im, _S] > 0 and pts[ia, _S] <= 0) or (pts[im, _S] <= 0 and pts[ib, _S] > 0):
                return False
            if not piece_proves(pts[ia], pts[im]):
                pb[nb, 0] = ia
                pb[nb, 1] = im
                nb += 1
            if not piece_proves(pts[im], pts[ib]):
                pb[nb, 0] = im
                pb[nb, 1] = ib
                nb += 1
        if tail_open:
            pieces(y, v, 4 * pts[tail, _T], reml, pts[npts], w)
            it = npts
            npts += 1
            if not piece_proves(pts[tail], pts[it]):
                pb[nb, 0] = tail
                pb[nb, 1] = it
                nb += 1
            tail_open = not tail_proves(vmin, pts[it])
            tail = it
        pa, pb = pb, pa
        na = nb
    return na == 0 and not tail_open


@inline
def bracket_at(y, v, w, reml, P, n, x, lo, hi):
    """The score pieces at x into P[n], and the bracket [lo, hi] of a root narrowed by the score's sign there
    (S(lo) > 0 >= S(hi)); returns n + 1, lo, hi."""
    pieces(y, v, x, reml, P[n], w)
    if P[n, _S] > 0:
        return n + 1, x, hi
    return n + 1, lo, x


@jit
def score_root(y, v, w, reml, P, n, cur, lo, hi):
    """intercept._score_root for one column (y, v; w: scratch) from the point P[cur], inside [lo, hi]: the points
    it evaluates are appended to P from n on. Returns the root, the new n, and whether Newton ended."""
    d_prev = np.nan
    x_prev = np.nan
    for it in range(_MAXITER):
        x = P[cur, _T]
        Sx = P[cur, _S]
        U = P[cur, _U]
        L = P[cur, _L]
        d = (P[cur, _DL] * U - L * P[cur, _DU]) / (U * U)
        step = Sx / (U * d)
        xn = x + step
        inside = (xn > lo) and (xn < hi)
        tol = _NEWTON_TOL * x
        conv = (abs(step) <= tol) or ((hi - lo) <= 4 * _EPS * hi)
        if it > 0:
            conv = conv or (inside and (abs((d - d_prev) / (x - x_prev)) * (step * step) <= (2 * tol) * abs(d)))
        if conv:
            return (xn if inside else x), n, True
        if not inside:
            xn = 0.5 * (lo + hi)
        d_prev = d if inside else np.nan
        x_prev = x
        if n >= _MAXPTS - 8:
            break
        cur = n
        n, lo, hi = bracket_at(y, v, w, reml, P, n, xn, lo, hi)
    return np.nan, n, False


@jit
def likelihood_columns(Y, V, k, reml, tau, proved, probe):
    """intercept.tau2_likelihood's root and certificate for every column (k >= 2): tau^2 into ``tau``,
    1 into ``proved`` where the certificate holds (0: to be solved on the grid; -1: Newton did not end),
    and the far point's t, Q and y'PPy into probe[0:3]."""
    K, m = Y.shape
    P = np.empty((_MAXPTS, 9))
    pts = np.empty((_MAXPTS, 9))
    pa = np.empty((_MAXPTS, 2), dtype=np.int64)
    pb = np.empty((_MAXPTS, 2), dtype=np.int64)
    y = np.empty(K)
    v = np.empty(K)
    w = np.empty(K)
    for j in range(m):
        column(Y, V, j, y, v)
        kf = float(k[j])
        ss, vmin, vmax = deviations(y, v, k[j])
        pieces(y, v, 0.0, reml, P[0], w)
        n = 1
        root = 0.0
        has_root = P[0, _S] > 0
        far = 0.0
        if has_root:
            # intercept._upper_bound and _newton_score: the DerSimonian-Laird start inside [lo, hi]
            lo = 0.0
            if reml:
                hi = nmax((2 * kf * ss + vmax - kf * vmin) / (kf - 1), 0.0) * (1 + 1e-6) + _EPS
            else:
                hi = nmax(2 * ss, 0.0) * (1 + 1e-6) + _EPS
            trp0 = P[0, _SW] - P[0, _SW2] / P[0, _SW]
            x = (P[0, _Q] - (k[j] - 1)) / trp0
            if not (np.isfinite(x) and x > 0 and x < hi):
                x = 0.0
            first = n  # the Newton points are P[first:n]
            cur = 0
            if x > 0:
                cur = n
                n, lo, hi = bracket_at(y, v, w, reml, P, n, x, lo, hi)
            # intercept._score_root
            root, n, ended = score_root(y, v, w, reml, P, n, cur, lo, hi)
            if not ended:
                proved[j] = -1
                tau[j] = np.nan
                continue
            # keep the Newton points but those within 2% of the root (save the last), and see whether one
            # lies on each side of it (root/2 and 1.25 root are added else)
            last = n - 1
            have_l = False
            have_r = False
            nk = first
            for i in range(first, n):
                rel = P[i, _T] / root
                if abs(rel - 1) > 0.02 or i == last:
                    if nk != i:
                        P[nk] = P[i]
                    nk += 1
                    have_l = have_l or (rel >= 0.35 and rel <= 0.8)
                    have_r = have_r or (rel >= 1.1 and rel <= 1.5)
                    far = nmax(far, P[i, _T])
            n = nk
            if not have_r:
                far = nmax(far, 1.25 * root)
            if not have_l:
                pieces(y, v, 0.5 * root, reml, P[n], w)
                n += 1
            if not have_r:
                pieces(y, v, 1.25 * root, reml, P[n], w)
                n += 1
        top = nmax(nmax(2.0 * far, ss / (k[j] - 1)), 1e-12)
        pieces(y, v, top, reml, P[n], w)
        probe[0, j] = P[n, _T]
        probe[1, j] = P[n, _Q]
        probe[2, j] = P[n, _U]
        n += 1
        tau[j] = root
        proved[j] = 1 if certify(y, v, w, reml, P, n, vmin, 3, pts, pa, pb) else 0


@jit
def hermite_root(x1, g0, d0, g1, d1, target):
    """intercept._hermite_root for one value."""
    h0 = x1 * d0
    h1 = x1 * d1
    s = nmin(nmax((target - g0) / (g1 - g0), 0.0), 1.0)
    for _ in range(4):
        s2 = s * s
        p = (2 * s2 * s - 3 * s2 + 1) * g0 + (s2 * s - 2 * s2 + s) * h0 + (3 * s2 - 2 * s2 * s) * g1 \
            + (s2 * s - s2) * h1
        dp = (6 * s2 - 6 * s) * (g0 - g1) + (3 * s2 - 4 * s + 1) * h0 + (3 * s2 - 2 * s) * h1
        s = nmin(nmax(s - (p - target) / dp, 0.0), 1.0)
    if not np.isfinite(s):
        s = 0.5
    return s * x1


@jit
def solve_q(y, v, w, c, x, q, u):
    """intercept.solve_q for column j: tau^2 with Q(tau^2) = c, Newton's method on 1/Q from x (Q(x) = q,
    y'PPy(x) = u). NaN if it does not end."""
    d_prev = np.nan
    x_prev = np.nan
    for it in range(_MAXITER):
        step = (q - c) * q / (c * u)
        left = q > c
        xn = nmax(x + step, 0.0)
        d = u / (q * q)
        tol = _NEWTON_TOL * xn
        small = step <= tol
        if it > 0:
            small = small or (abs((d - d_prev) / (x - x_prev)) * (step * step) <= (2 * tol) * d)
        small = small and left
        flat = abs(q - c) <= 4 * _EPS * c
        if small or flat or not np.isfinite(step):
            return xn if (small and not flat) else x
        d_prev = d
        x_prev = x
        x = xn
        q, u = qu(y, v, x, w)
    return np.nan


@jit
def qprofile_columns(Y, V, cols, tau2, targets, probe, out):
    """The Q-profile bounds of tau^2 (intercept._pool_columns) for the columns ``cols``: out[0] the lower
    (Q = targets[0]), out[1] the upper (Q = targets[1]); 0 where Q(0) <= the target; ``probe``: a point beyond
    tau^2-hat with Q and y'PPy there (NaN where none)."""
    K = Y.shape[0]
    y = np.empty(K)
    v = np.empty(K)
    w = np.empty(K)
    for c_i in range(len(cols)):
        j = cols[c_i]
        column(Y, V, j, y, v)
        q0, u0 = qu(y, v, 0.0, w)
        x_hat = tau2[j]
        qh, uh = qu(y, v, x_hat, w)
        pt = probe[0, j]
        pq = probe[1, j]
        pu = probe[2, j]
        for b in range(2):
            c = targets[b, c_i]
            if not (q0 > c):
                out[b, c_i] = 0.0
                continue
            x0 = x_hat
            qs = qh
            us = uh
            herm = False
            lo_t = hi_t = g0 = d0 = g1 = d1 = 0.0
            if qs < c:  # within (0, tau^2-hat)
                herm = True
                lo_t, hi_t = 0.0, x_hat
                g0, d0, g1, d1 = 1 / q0, u0 / (q0 * q0), 1 / qs, us / (qs * qs)
            elif pt > x_hat and np.isfinite(pq):
                if pq < c:  # within (tau^2-hat, t)
                    herm = True
                    lo_t, hi_t = x_hat, pt
                    g0, d0, g1, d1 = 1 / qs, us / (qs * qs), 1 / pq, pu / (pq * pq)
                else:  # beyond t: from t
                    x0, qs, us = pt, pq, pu
            if herm:
                x0 = lo_t + hermite_root(hi_t - lo_t, g0, d0, g1, d1, 1 / c)
                qs, us = qu(y, v, x0, w)
            out[b, c_i] = solve_q(y, v, w, c, x0, qs, us)


@jit
def deviations(y, v, kj):
    """The sum of squared deviations from the unweighted mean (intercept.Studies.deviations), and v_min and v_max
    (padded studies, v = inf, left out)."""
    sy = 0.0
    for i in range(len(y)):
        sy += y[i]
    ybar = sy / kj
    ss = 0.0
    vmin = np.inf
    vmax = 0.0
    for i in range(len(y)):
        vi = v[i]
        d = 0.0 if vi == np.inf else y[i] - ybar
        ss += d * d
        vmin = min(vmin, vi)
        if vi != np.inf:
            vmax = max(vmax, vi)
    return ss, vmin, vmax


@jit
def grid_columns(Y, V, k, reml, rel, zero_ok, cand_col, cand_t):
    """intercept._grid_likelihood's search for every column: whether the score is <= 0 at 0 (``zero_ok``), and
    every maximum found from a sign change of the score on the grid (``cand_col``, ``cand_t``; by column, then by
    t). Returns how many (-1: a Newton search did not end). The caller picks the best by likelihood (NumPy's log,
    so that the choice is the NumPy engine's)."""
    K, m = Y.shape
    n_grid = len(rel)
    G = np.empty((n_grid, 9))
    P = np.empty((_MAXPTS, 9))
    y = np.empty(K)
    v = np.empty(K)
    w = np.empty(K)
    nc = 0
    for j in range(m):
        column(Y, V, j, y, v)
        ss, _, vmax = deviations(y, v, k[j])
        top = nmax(2.0 * ss + vmax, 1e-8)
        for _ in range(200):  # the grid's last point is top; where the score is still > 0 there, top times 4
            for g in range(n_grid):
                pieces(y, v, top * rel[g], reml, G[g], w)
            if not (G[n_grid - 1, _S] > 0):
                break
            top *= 4
        zero_ok[j] = G[0, _S] <= 0
        for g in range(n_grid - 1):
            if not (G[g, _S] > 0 and G[g + 1, _S] <= 0):
                continue
            lo = G[g, _T]
            hi = G[g + 1, _T]
            # start from the root of the cubic Hermite interpolant of L/U - 1 on the bracket
            ga = G[g, _L] / G[g, _U] - 1
            gb = G[g + 1, _L] / G[g + 1, _U] - 1
            da = (G[g, _DL] * G[g, _U] - G[g, _L] * G[g, _DU]) / (G[g, _U] * G[g, _U])
            db = (G[g + 1, _DL] * G[g + 1, _U] - G[g + 1, _L] * G[g + 1, _DU]) / (G[g + 1, _U] * G[g + 1, _U])
            x = lo + hermite_root(hi - lo, ga, da, gb, db, 0.0)
            if not (x > lo and x < hi):
                x = 0.5 * (lo + hi)
            pieces(y, v, x, reml, P[0], w)
            if P[0, _S] > 0:
                root, _, ended = score_root(y, v, w, reml, P, 1, 0, x, hi)
            else:
                root, _, ended = score_root(y, v, w, reml, P, 1, 0, lo, x)
            if not ended:
                return -1
            cand_col[nc] = j
            cand_t[nc] = root
            nc += 1
    return nc


@jit
def fit_columns(Y, V, t, zero, out):
    """intercept._fit's sums for every column at t[j] (at 0 when ``zero``): sum w, mu, Q = y'Py, y'PPy, sum w^2 and
    sum w^3 into out[0:6]. Unlike the solvers, across the columns (the inner loop, which the compiler vectorises:
    the columns are independent), each column's sums still adding the studies in order."""
    K, m = Y.shape
    sw, mu, q, u, sw2, sw3 = out[0], out[1], out[2], out[3], out[4], out[5]
    for j in range(m):
        sw[j] = 0.0
        mu[j] = 0.0
        q[j] = 0.0
        u[j] = 0.0
        sw2[j] = 0.0
        sw3[j] = 0.0
    for i in range(K):
        for j in range(m):
            w = 1.0 / (V[i, j] + (0.0 if zero else t[j]))
            sw[j] += w
            mu[j] += w * Y[i, j]
    for j in range(m):
        mu[j] = mu[j] / sw[j]
    for i in range(K):
        for j in range(m):
            w = 1.0 / (V[i, j] + (0.0 if zero else t[j]))
            e = Y[i, j] - mu[j]
            r = w * e
            q[j] += r * e
            u[j] += r * r
            sw2[j] += w * w
            sw3[j] += w * w * w


@jit
def q_equals_columns(Y, V, cols, targets, out):
    """intercept.solve_q from tau^2 = 0 for the columns ``cols`` (Paule-Mandel, empirical Bayes): tau^2 with
    Q(tau^2) = targets[i] into out[i]; NaN where Newton does not end."""
    K = Y.shape[0]
    y = np.empty(K)
    v = np.empty(K)
    w = np.empty(K)
    for c_i in range(len(cols)):
        column(Y, V, cols[c_i], y, v)
        q, u = qu(y, v, 0.0, w)
        out[c_i] = solve_q(y, v, w, targets[c_i], 0.0, q, u)

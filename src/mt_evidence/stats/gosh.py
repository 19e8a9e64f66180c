"""GOSH: the graphical display of study heterogeneity (Olkin, Dahabreh & Trikalinos 2012), metafor ``gosh``.

The model is fitted to every subset of the studies (all 2^k - 1 when there are few enough, else a random sample
of subsets) and each subset's estimate, Q, I^2, H^2 and tau^2 are kept with the subset's membership. Clusters in
the plot of I^2 against the estimate point to studies that drive the heterogeneity or the result.

For the common-effect model and DerSimonian-Laird every subset is fitted at once from weighted sums over its
members (a membership matrix times the study weights, chunk by chunk, so memory stays bounded): all 1,048,575
subsets of 20 studies take about a second (benchmarks/bench_robust.py). Other estimators go through the batch
engine (``pool_many``), chunk by chunk. With ``chunk_rows`` the blocks are split between dask tasks (on a
dask.distributed cluster when a Client is active), each given only its range of subsets, with the same numbers to
the bit.

Validated against metafor 3.8 ``gosh`` (tests/reference/make_robust_reference.R -> robust_reference.json).
"""

from __future__ import annotations

import html
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from . import distributed
from .bias import check_studies
from .conventions import METHOD_NAMES, normalise_method
from .pooling import pool_many
from .progress import progress_reporter

__all__ = ["GoshResult", "gosh", "GOSH_DEFAULT_SUBSETS"]

GOSH_DEFAULT_SUBSETS = 10**6  # metafor: all subsets when there are at most 10^6, else 10^6 random ones
_MAX_MASK_K = 62  # subsets as bit masks in int64 up to this many studies


@dataclass(frozen=True)
class GoshResult:
    """Every fitted subset: ``table`` (k, q, i2 in percent, h2, tau2, estimate; one row per subset, ordered by k
    as metafor) and ``incl``, the membership matrix (subsets x studies, bool), with the study ``labels``.
    ``gosh(columns=, membership=False)`` keeps only some of the table's columns, and no ``incl`` (None)."""

    table: pd.DataFrame
    incl: np.ndarray | None = field(repr=False)
    labels: tuple[str, ...]
    method: str
    exact: bool
    seed: int | None
    k: int

    @property
    def n_subsets(self) -> int:
        return len(self.table)

    def to_frame(self, membership: bool | None = None) -> pd.DataFrame:
        """The table, with one boolean column per study (named by its label) when ``membership`` (by default,
        when the result kept the membership)."""
        if membership and self.incl is None:
            raise ValueError("this GOSH result kept no membership (gosh(membership=False))")
        out = self.table.copy()
        if membership or (membership is None and self.incl is not None):
            out = pd.concat([out, pd.DataFrame(self.incl, columns=list(self.labels))], axis=1)
        return out

    def __repr__(self) -> str:
        t = self.table
        how = "all subsets" if self.exact else f"random subsets (seed {self.seed})"
        shown = [c for c in ("estimate", "i2", "tau2") if c in t]
        quantiles = []
        if shown:
            q = t[shown].quantile([0.0, 0.25, 0.5, 0.75, 1.0])
            q.index = ["min", "25%", "median", "75%", "max"]
            quantiles = [q.T.to_string(float_format=lambda x: f"{x:.4f}"), ""]
        return "\n".join([
            f"GOSH: {self.n_subsets:,} models fitted to {how} of {self.k} studies "
            f"({self.method}: {METHOD_NAMES[self.method]})", "", *quantiles,
            "Conventions: metafor's GOSH (k, Q, I^2, H^2, tau^2, estimate per subset; for FE and DL, I^2 and H^2 "
            "from Q as metafor's fast path)"])

    def _repr_html_(self) -> str:
        return "<pre>" + html.escape(self.__repr__()) + "</pre>"


def _bits(masks: np.ndarray, k: int) -> np.ndarray:
    return ((masks[:, None] >> np.arange(k, dtype=np.int64)[None, :]) & 1).astype(bool)


def _popcount(masks: np.ndarray, k: int) -> np.ndarray:
    out = np.zeros(len(masks), dtype=np.int64)
    for j in range(k):
        out += (masks >> j) & 1
    return out


def _closed_form(kk, sw, swy, swyy, sw2, centre: float, dl: bool):
    """metafor's closed form for FE and DL (``.profile.rma.uni(model = 1 | 2)``) from the subset sums of w, w y,
    w y^2 and w^2 (y centred at ``centre``, so Q loses no precision to cancellation)."""
    many = kk > 1
    df = np.maximum(kk - 1, 1)
    with np.errstate(divide="ignore", invalid="ignore"):
        q = np.where(many, np.maximum(0.0, swyy - swy * swy / sw), 0.0)
        i2 = np.where(many & (q > 0), np.maximum(0.0, 100 * (q - df) / q), 0.0)
        h2 = np.where(many, q / df, 1.0)
        tau2 = np.where(many, np.maximum(0.0, (q - df) / (sw - sw2 / sw)), 0.0) if dl else np.zeros(len(kk))
        est = swy / sw + centre
    return {"k": kk, "q": q, "i2": i2, "h2": h2, "tau2": tau2, "estimate": est}


def _fast_block(B: np.ndarray, y: np.ndarray, v: np.ndarray, dl: bool) -> dict:
    """FE/DL on a block of subsets given by a membership matrix (random subsets)."""
    w = 1 / v
    c = float(np.sum(w * y) / np.sum(w))
    yc = y - c
    Bf = B.astype(float)
    # one matrix-vector product per sum: much faster than one product with a narrow matrix (BLAS gemm overhead)
    sums = [Bf @ a for a in (w, w * yc, w * yc * yc, w * w)]
    out = _closed_form(B.sum(axis=1), *sums, c, dl)
    if dl:
        W = Bf / (v[None, :] + out["tau2"][:, None])
        out["estimate"] = (W @ yc) / (W @ np.ones(len(y))) + c
    return out


_COLUMNS = ("k", "q", "i2", "h2", "tau2", "estimate")


def _subset_sums(vals: np.ndarray) -> np.ndarray:
    """Sum of ``vals`` over every subset, indexed by bit mask (bit j = element j), by doubling."""
    out = np.zeros(1)
    for x in vals:
        out = np.concatenate([out, out + x])
    return out


def _fast_counts(k: int, low: int, h0: int, h1: int) -> np.ndarray:
    """How many non-empty subsets of each size (0..k) lie in the blocks h0..h1-1 of :func:`_fast_part`."""
    from math import comb

    hist = np.bincount(_popcount(np.arange(h0, h1, dtype=np.int64), k - low), minlength=k - low + 1)
    per_block = np.array([comb(low, j) for j in range(low + 1)], dtype=np.int64)
    counts = np.zeros(k + 1, dtype=np.int64)
    for p, nh in enumerate(hist):
        counts[p:p + low + 1] += int(nh) * per_block
    if h0 == 0 < h1:
        counts[0] -= 1  # the empty set
    return counts


def _fast_part(y: np.ndarray, v: np.ndarray, dl: bool, low: int, h0: int, h1: int, *,
               columns: tuple[str, ...] = _COLUMNS, membership: bool = True, advance=None) -> dict:
    """FE/DL on every non-empty subset whose high studies (``low`` .. k-1, as a bit mask) are h0 .. h1-1, in
    metafor's order within them (by size; ties by bit mask, study 1 lowest): the ``columns`` asked for, and
    ``incl`` when ``membership``.

    Block by block (2^low subsets each): within a block the high bits are fixed, so the subset sums are a table
    over the low studies plus a constant, and each row goes straight to its place in the output. Every number
    depends only on y, v, ``low`` and its own block, so the blocks can be split between tasks in any way.
    """
    k = len(y)
    w = 1 / v
    c = float(np.sum(w * y) / np.sum(w))
    yc = y - c
    per = [w, w * yc, w * yc * yc, w * w, np.ones(k)]
    lo_tab = [_subset_sums(a[:low]) for a in per]
    lo_bits = ((np.arange(2**low)[:, None] >> np.arange(low)[None, :]) & 1).astype(bool)
    counts = _fast_counts(k, low, h0, h1)
    start = np.concatenate([[0], np.cumsum(counts)[:-1]])  # this part's first row of each size
    written = np.zeros(k + 1, dtype=np.int64)
    n = int(counts.sum())
    cols = {name: np.empty(n) for name in columns}
    incl = np.empty((n, k), dtype=bool) if membership else None
    for h in range(h0, h1):
        hi = [(h >> (j - low)) & 1 == 1 for j in range(low, k)]
        hi_idx = [j for j, on in zip(range(low, k), hi) if on]
        sums = [t + sum(a[j] for j in hi_idx) for t, a in zip(lo_tab, per)]
        kk = np.rint(sums[4]).astype(np.int64)
        res = _closed_form(kk, sums[0], sums[1], sums[2], sums[3], c, dl)
        if dl:
            t2 = res["tau2"]
            acc_w = np.zeros(2**low)
            acc_wy = np.zeros(2**low)
            for j in range(low):
                sel = (slice(None), 1, slice(None))
                inv = 1 / (v[j] + t2.reshape(-1, 2, 2**j)[sel])
                acc_w.reshape(-1, 2, 2**j)[sel] += inv
                acc_wy.reshape(-1, 2, 2**j)[sel] += yc[j] * inv
            for j in hi_idx:
                inv = 1 / (v[j] + t2)
                acc_w += inv
                acc_wy += yc[j] * inv
            with np.errstate(divide="ignore", invalid="ignore"):
                res["estimate"] = acc_wy / acc_w + c
        keep = kk > 0
        order = np.argsort(kk.astype(np.int8), kind="stable")
        order = order[keep[order]]
        ks = kk[order]
        first = np.searchsorted(ks, ks, side="left")
        dest = start[ks] + written[ks] + (np.arange(len(ks)) - first)
        written += np.bincount(ks, minlength=k + 1)
        for name in cols:
            cols[name][dest] = res[name][order]
        if membership:
            incl[dest, :low] = lo_bits[order]
            if k > low:
                incl[dest, low:] = np.array(hi, dtype=bool)[None, :]
        if advance is not None:
            advance(len(ks))
    if membership:
        cols["incl"] = incl
    return cols


def _exact_masks(start: int, stop: int, k: int) -> np.ndarray:
    """Rows start .. stop-1 of every non-empty subset of k studies in metafor's order (by size; ties by bit mask),
    as bit masks, without the others: the masks of one size in increasing order are the combinations in colex
    order, unranked by the combinatorial number system."""
    from math import comb

    binom = np.array([[comb(c, t) for c in range(k)] for t in range(k + 1)], dtype=np.int64)  # binom[t, c]
    upto = np.cumsum([comb(k, s) for s in range(1, k + 1)])  # subsets of size <= s, for s = 1..k
    rows = np.arange(start, stop, dtype=np.int64)
    size = np.searchsorted(upto, rows, side="right") + 1
    masks = np.zeros(len(rows), dtype=np.int64)
    for s in np.unique(size):
        at = size == s
        rank = rows[at] - (upto[s - 2] if s >= 2 else 0)
        m = np.zeros(len(rank), dtype=np.int64)
        for t in range(int(s), 0, -1):
            c = np.searchsorted(binom[t], rank, side="right") - 1
            m |= np.left_shift(np.int64(1), c)
            rank = rank - binom[t][c]
        masks[at] = m
    return masks


def _general_part(y: np.ndarray, v: np.ndarray, method: str, chunk: int, start: int, stop: int, *,
                  masks: np.ndarray | None = None, incl: np.ndarray | None = None,
                  columns: tuple[str, ...] = _COLUMNS, membership: bool = True, advance=None) -> dict:
    """Rows start .. stop-1 of the subsets, fitted ``chunk`` at a time (blocks on the grid of multiples of
    ``chunk`` when ``start`` is one): the ``columns`` asked for, and ``incl`` when ``membership``. The subsets
    are every one (metafor's order) unless their bit ``masks`` or membership rows ``incl`` (then not returned
    again) are given."""
    k = len(y)
    n = stop - start
    cols = {name: np.empty(n) for name in columns}
    out_incl = np.empty((n, k), dtype=bool) if incl is None and membership else None
    for a in range(0, n, chunk):
        b = min(n, a + chunk)
        if incl is None:
            block_masks = _exact_masks(start + a, start + b, k) if masks is None else masks[a:b]
            if out_incl is not None:
                out_incl[a:b] = _bits(block_masks, k)
                block = out_incl[a:b]
            else:
                block = _bits(block_masks, k)
        else:
            block = incl[a:b]
        res = _fast_block(block, y, v, method == "DL") if method in ("FE", "DL") else _engine(block, y, v, method)
        for name in cols:
            cols[name][a:b] = res[name]
        if advance is not None:
            advance(b - a)
    if out_incl is not None:
        cols["incl"] = out_incl
    return cols


def _engine(B: np.ndarray, y: np.ndarray, v: np.ndarray, method: str) -> dict:
    r = pool_many(np.where(B, y[None, :], np.nan), np.where(B, v[None, :], np.nan), method=method, tau2_ci=False)
    return {"k": r.k, "q": r.q, "i2": r.i2, "h2": r.h2, "tau2": r.tau2, "estimate": r.estimate}


def _fast_on_dask(y: np.ndarray, v: np.ndarray, dl: bool, low: int, blocks_per_task: int,
                  columns: tuple[str, ...], membership: bool, advance) -> dict:
    """:func:`_fast_part` as one dask task per ``blocks_per_task`` blocks; each part's rows of each size are
    copied to their place in the output (known in advance from the sizes of the subsets in every block)."""
    k = len(y)
    nblk = 2 ** (k - low)
    ranges = [(h0, min(nblk, h0 + blocks_per_task)) for h0 in range(0, nblk, blocks_per_task)]
    counts = np.array([_fast_counts(k, low, h0, h1) for h0, h1 in ranges])  # parts x sizes
    total = counts.sum(axis=0)
    base = np.concatenate([[0], np.cumsum(total)[:-1]])[None, :] + np.cumsum(counts, axis=0) - counts
    n = int(total.sum())
    cols = {name: np.empty(n) for name in columns}
    if membership:
        cols["incl"] = np.empty((n, k), dtype=bool)

    def place(i: int, part: dict) -> None:
        c = counts[i]
        src = np.cumsum(c) - c
        for s in np.flatnonzero(c):
            dst, sl = slice(base[i, s], base[i, s] + c[s]), slice(src[s], src[s] + c[s])
            for name in cols:
                cols[name][dst] = part[name][sl]
        advance(int(c.sum()))

    distributed.run_tasks(_fast_part, [((y, v, dl, low, h0, h1), {"columns": columns, "membership": membership})
                                       for h0, h1 in ranges], place)
    return cols


def _general_on_dask(y: np.ndarray, v: np.ndarray, method: str, chunk: int, rows_per_task: int, n: int,
                     masks: np.ndarray | None, incl: np.ndarray | None, columns: tuple[str, ...],
                     membership: bool, advance) -> dict:
    """:func:`_general_part` as one dask task per ``rows_per_task`` rows (a multiple of ``chunk``); a task gets
    y, v and its range of rows (every subset), or its own rows of ``masks`` or ``incl`` (random subsets)."""
    k = len(y)
    ranges = [(a, min(n, a + rows_per_task)) for a in range(0, n, rows_per_task)]
    cols = {name: np.empty(n) for name in columns}
    if incl is None and membership:
        cols["incl"] = np.empty((n, k), dtype=bool)
    calls = [((y, v, method, chunk, a, b), {"masks": None if masks is None else masks[a:b],
                                             "incl": None if incl is None else incl[a:b],
                                             "columns": columns, "membership": membership}) for a, b in ranges]

    def place(i: int, part: dict) -> None:
        a, b = ranges[i]
        for name in cols:
            cols[name][a:b] = part[name]
        advance(b - a)

    distributed.run_tasks(_general_part, calls, place)
    return cols


def gosh(yi, vi, *, method: str = "FE", subsets: int | None = None, seed: int | None = None, labels=None,
         progress=False, chunk: int | None = None, chunk_rows: int | None = None, columns=None,
         membership: bool = True) -> GoshResult:
    """Fit the model to every subset of the studies (or to a random sample of subsets), as metafor's ``gosh``.

    Parameters
    ----------
    yi, vi : array-like
        Effect sizes and sampling variances.
    method : str
        The model fitted to each subset: "FE" (default; metafor's example), "DL" (both by closed form), or any
        estimator of :func:`pool` (through the batch engine: slower).
    subsets : int, optional
        How many subsets: when 2^k - 1 is at most ``subsets`` (default 10^6, as metafor) all are fitted, else that
        many random subsets (each study in with probability 1/2, the empty set excluded, repeats possible; the
        distribution of metafor's draws). Pass ``subsets=2**k`` to fit all of them whatever k.
    seed : int, optional
        Seed for the random subsets (numpy's generator); drawn and reported when not given. R's random numbers
        differ, so random subsets never match metafor's one for one.
    labels : sequence of str, optional
        Study labels (the membership columns of ``to_frame()``).
    progress : bool or callable
        True shows a progress bar; a callable gets ``(done, total)`` after each chunk (with ``chunk_rows``,
        after each dask task).
    chunk : int, optional
        Subsets per block (default 65,536 for FE/DL, 20,000 otherwise): memory is proportional to chunk * k.
        For every subset by FE/DL the blocks are 2^j subsets, the largest power of two not above ``chunk``.
    chunk_rows : int, optional
        Run on dask, one task per ``chunk_rows`` subsets (rounded down to whole blocks of ``chunk``, at least
        one), on the active ``dask.distributed`` Client's cluster when there is one, else dask's local scheduler
        (needs the ``dask`` extra: ``pip install 'mt_evidence[dask]'``; dask is imported only then). Each task
        gets only y, v and its range of subsets (every subset: the range alone; random subsets: its own rows of
        the bit masks drawn from ``seed``, 8 bytes a subset) and fits them block by block exactly as the
        in-memory run does, so the result is the same to the bit as without ``chunk_rows`` (same ``chunk``,
        same ``seed``). A task holds its part of the output, chunk_rows * (8 per kept column + k with the
        membership) bytes (73 per subset for 25 studies and every column), plus one block's working memory (FE/DL: a few arrays of 2^j floats; other estimators: the batch engine on a
        chunk x k matrix, a few dozen times chunk * k * 8 bytes). With a Client, twice as many tasks as its
        worker threads are in flight at a time, each result copied into the output and released as it
        arrives; the local scheduler runs waves of as many tasks as it has workers. The output is assembled in
        this process (see Returns for its size); random subsets also keep their masks here while running.
        ``progress`` advances as each task finishes.
    columns : str or sequence of str, optional
        Keep only these of the table's columns (k, q, i2, h2, tau2, estimate; kept in that order), e.g.
        ``("estimate", "i2")`` for the GOSH plot: 8 bytes per subset each. Every column by default.
    membership : bool
        Keep the membership matrix ``incl`` (k bytes per subset; default True). False leaves ``incl`` None: the
        plot then cannot ``highlight`` a study.

    Returns
    -------
    GoshResult
        ``table`` (k, q, i2, h2, tau2, estimate per subset, ordered by subset size, ties in metafor's order) and
        ``incl``, the membership matrix: in memory, (6 * 8 + k) bytes per subset, e.g. 73 MB for 10^6 subsets
        of 25 studies, 2.4 GB for every one of their 33.5 million subsets (537 MB with
        ``columns=("estimate", "i2"), membership=False``). The table is built on the computed arrays without a
        copy, so the peak is about the result's size plus one block (random subsets: plus their bit masks, 8
        bytes a subset, and up to 4 times that while they are drawn and sorted).

    Validated against: metafor 3.8 ``gosh(rma(yi, vi, method=))``, every subset of 9 and 13 studies (FE, DL,
    REML), all columns and the membership.
    """
    y, v = check_studies(yi, vi, what="GOSH")
    k = len(y)
    if k < 2:
        raise ValueError("GOSH needs at least 2 studies")
    m = normalise_method(method)
    if labels is None:
        labels = [str(i + 1) for i in range(k)]
    labels = [str(x) for x in labels]
    if len(labels) != k:
        raise ValueError(f"labels has {len(labels)} entries but there are {k} studies")
    limit = GOSH_DEFAULT_SUBSETS if subsets is None else subsets
    if not (isinstance(limit, int | np.integer) and limit >= 2):
        raise ValueError(f"subsets must be an integer of at least 2; got {subsets!r}")
    n_all = 2**k - 1
    exact = n_all <= limit
    if chunk is None:
        chunk = 65536 if m in ("FE", "DL") else 20000
    if not (isinstance(chunk, int | np.integer) and chunk >= 1):
        raise ValueError(f"chunk must be a positive integer; got {chunk!r}")
    chunk = int(chunk)
    if chunk_rows is not None:
        if not (isinstance(chunk_rows, int | np.integer) and not isinstance(chunk_rows, bool) and chunk_rows >= 1):
            raise ValueError(f"chunk_rows must be a positive whole number of subsets per dask task; got {chunk_rows!r}")
        distributed.require_dask("gosh(chunk_rows=)")
    if columns is None:
        keep = _COLUMNS
    else:
        asked = [columns] if isinstance(columns, str) else list(columns)
        unknown = [c for c in asked if c not in _COLUMNS]
        if unknown or not asked:
            raise ValueError(f"columns must name at least one of {', '.join(_COLUMNS)}; got {columns!r}")
        keep = tuple(c for c in _COLUMNS if c in asked)
    if not isinstance(membership, bool | np.bool_):
        raise ValueError(f"membership must be True or False; got {membership!r}")
    membership = bool(membership)
    todo = dict(columns=keep, membership=membership)

    if exact and k > _MAX_MASK_K:  # pragma: no cover - 2^63 subsets cannot be asked for
        raise ValueError("too many studies to fit every subset")
    n = n_all if exact else int(limit)
    with progress_reporter(progress, n, f"GOSH ({m}, {n:,} subsets)") as advance:
        if exact and m in ("FE", "DL"):
            low = min(k, max(1, chunk.bit_length() - 1))
            if chunk_rows is None:
                cols = _fast_part(y, v, m == "DL", low, 0, 2 ** (k - low), advance=advance, **todo)
            else:
                cols = _fast_on_dask(y, v, m == "DL", low, max(1, int(chunk_rows) >> low), advance=advance, **todo)
            incl = cols.pop("incl", None)
            seed = None
        else:
            masks = incl = None
            if exact:
                seed = None  # every subset, in metafor's order (_exact_masks)
            else:
                if seed is None:
                    seed = int(np.random.SeedSequence().entropy % 2**32)
                rng = np.random.default_rng(seed)
                if k <= _MAX_MASK_K:
                    masks = rng.integers(1, 2**k, size=n, dtype=np.int64)  # uniform over the non-empty subsets
                    masks = masks[np.argsort(_popcount(masks, k), kind="stable")]
                else:
                    incl = rng.random((n, k)) < 0.5
                    empty = ~incl.any(axis=1)
                    while empty.any():
                        incl[empty] = rng.random((int(empty.sum()), k)) < 0.5
                        empty = ~incl.any(axis=1)
                    incl = incl[np.argsort(incl.sum(axis=1), kind="stable")]
            if chunk_rows is None:
                cols = _general_part(y, v, m, chunk, 0, n, masks=masks, incl=incl, advance=advance, **todo)
            else:
                cols = _general_on_dask(y, v, m, chunk, max(1, int(chunk_rows) // chunk) * chunk, n, masks, incl,
                                        advance=advance, **todo)
            incl = cols.pop("incl", None) if incl is None else (incl if membership else None)
    table = pd.DataFrame(cols, index=pd.RangeIndex(n), copy=False)  # no copy: the output is the largest thing here
    del cols
    if "k" in table:
        table["k"] = table["k"].astype(int)
    return GoshResult(table=table, incl=incl, labels=tuple(labels), method=m, exact=bool(exact), seed=seed, k=k)

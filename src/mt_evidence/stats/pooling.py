"""Pooling: ``pool`` for one meta-analysis, ``pool_many`` for many at once (same code, so they never disagree).

Sign convention: the pooled estimate has the sign of the ``yi`` given. With mt_evidence's effect sizes
(``effect_size``), negative values favour the first arm on outcomes where lower is better.
"""

from __future__ import annotations

import html
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, fields, replace

import numpy as np
import pandas as pd

from . import distributed, intercept
from .conventions import Conventions, resolve
from .printing import WithConventions

__all__ = ["PoolResult", "PoolManyResult", "pool", "pool_many"]


# ------------------------------------------------------------------------------------------------- input


def _positions(mask: np.ndarray, offset: int) -> list:
    """Up to five (row, column) positions where ``mask`` holds, rows counted from ``offset``."""
    pos = np.argwhere(mask)[:5]
    pos[:, 0] += offset
    return pos.tolist()


def _as_2d(name: str, values, *, allow_nan: bool, offset: int = 0) -> np.ndarray:
    try:
        arr = np.asarray(values, dtype=float)
    except (TypeError, ValueError) as exc:
        raise TypeError(f"{name} must be numeric (an array of numbers); could not convert: {exc}") from None
    if arr.ndim == 1:
        arr = arr[None, :]
    if arr.ndim != 2:
        raise ValueError(f"{name} must be 1-D (one meta-analysis) or 2-D (one meta-analysis per row); got {arr.ndim}-D")
    if not allow_nan and np.isnan(arr).any():
        pos = _positions(np.isnan(arr), offset)
        raise ValueError(f"{name} contains NaN at positions {pos}; remove those studies or use pool_many's padding")
    if np.isinf(arr).any():
        pos = _positions(np.isinf(arr), offset)
        raise ValueError(f"{name} contains infinite values at positions {pos}; every value must be finite")
    return arr


def _check_inputs(Y: np.ndarray, V: np.ndarray, *, padded: bool, offset: int = 0) -> np.ndarray:
    """Check yi and vi (rows counted from ``offset`` in messages); returns where yi is NaN (the padding)."""
    if Y.shape != V.shape:
        raise ValueError(f"yi and vi must have the same shape; got {Y.shape} and {V.shape}")
    if Y.shape[1] == 0:
        raise ValueError("no studies given: yi and vi are empty")
    nan_y = np.isnan(Y)
    if padded:
        mismatch = nan_y != np.isnan(V)
        if mismatch.any():
            pos = _positions(mismatch, offset)
            raise ValueError(
                f"yi and vi are NaN in different places (e.g. at {pos}); padding must be NaN in both arrays"
            )
    bad = V <= 0  # (False where NaN)
    if bad.any():
        pos = _positions(bad, offset)
        vals = V[bad][:5].tolist()
        raise ValueError(
            f"sampling variances must be positive; got {vals} at positions {pos}. "
            "A zero variance usually means a missing SD or a rounding to 0: check the study's data"
        )
    empty = nan_y.all(axis=1)
    if empty.any():
        rows = (np.flatnonzero(empty)[:5] + offset).tolist()
        raise ValueError(f"rows {rows} have no studies (all NaN); every meta-analysis needs at least one study")
    return nan_y


def _variances(vi, sei, name_v: str = "vi") -> object:
    if (vi is None) == (sei is None):
        raise ValueError("give exactly one of vi (sampling variances) or sei (standard errors)")
    if sei is not None:
        se = np.asarray(sei, dtype=float)
        if np.any(se[~np.isnan(se)] <= 0):
            raise ValueError("standard errors (sei) must be positive")
        return se**2
    return vi


#: how many bad analyses an error message lists (it counts them all)
SHOWN_PROBLEMS = 20


def _parts(item) -> tuple[object, object, str]:
    """yi, the variances or SEs, and which (``"vi"`` or ``"sei"``) of one analysis given as a pair ``(yi, vi)``
    or a mapping with ``yi`` and one of ``vi`` or ``sei``, unconverted; a ValueError says what is wrong."""
    if isinstance(item, Mapping):
        if "yi" not in item:
            raise ValueError(f"has no 'yi' (its keys: {', '.join(map(repr, item))})")
        if ("vi" in item) == ("sei" in item):
            raise ValueError("needs exactly one of 'vi' (sampling variances) or 'sei' (standard errors)")
        return (item["yi"], item["vi"], "vi") if "vi" in item else (item["yi"], item["sei"], "sei")
    if isinstance(item, (tuple, list)) and len(item) == 2:
        return item[0], item[1], "vi"
    length = f" of length {len(item)}" if isinstance(item, (tuple, list)) else ""
    raise ValueError(f"is {type(item).__name__!r}{length}; each analysis must be a pair (yi, vi) or a mapping "
                     "with 'yi' and 'vi' or 'sei'")


def _one_analysis(item) -> tuple[np.ndarray, np.ndarray]:
    """yi and vi of one analysis (as :func:`_parts` takes it), checked; a ValueError says what is wrong with it
    (without saying which analysis it is)."""
    y, second, name = _parts(item)
    arrs = []
    for label, values in (("yi", y), (name, second)):
        try:
            a = np.asarray(values, dtype=float)
        except (TypeError, ValueError):
            raise ValueError(f"{label} is not a list of numbers") from None
        if a.ndim != 1:
            raise ValueError(f"{label} must be a list of numbers, one per study; got "
                             f"{'one number' if a.ndim == 0 else f'shape {a.shape}'} (one study: [value])")
        bad = np.flatnonzero(~np.isfinite(a))
        if bad.size:
            raise ValueError(f"{label} is not a finite number at study position(s) {bad[:5].tolist()}")
        arrs.append(a)
    yi, vs = arrs
    if yi.size != vs.size:
        raise ValueError(f"yi has {yi.size} values and {name} {vs.size}; give one of each per study")
    if yi.size == 0:
        raise ValueError("has no studies; every meta-analysis needs at least one")
    bad = np.flatnonzero(vs <= 0)
    if bad.size:
        what = "standard errors" if name == "sei" else "sampling variances"
        raise ValueError(f"{what} must be positive; got {vs[bad][:5].tolist()} at study position(s) "
                         f"{bad[:5].tolist()}")
    if name == "sei":
        vs = vs**2
        bad = np.flatnonzero(vs <= 0)
        if bad.size:
            raise ValueError(f"standard errors at study position(s) {bad[:5].tolist()} are too small to square "
                             "(their variances round to 0)")
    return yi, vs


def _stack_analyses(items: Iterable) -> tuple[np.ndarray, np.ndarray, list[tuple[int, str]]]:
    """NaN-padded (m, k_max) yi and vi of analyses of any sizes (each as :func:`_one_analysis` takes it), and
    every problem as (position, what is wrong); the rows of bad analyses are left NaN."""
    items = list(items)
    fast = _stack_fast(items)
    if fast is not None:
        return fast[0], fast[1], []
    rows, problems = [], []
    for i, item in enumerate(items):
        try:
            rows.append(_one_analysis(item))
        except ValueError as err:
            problems.append((i, str(err)))
            rows.append(None)
    lens = np.array([0 if r is None else r[0].size for r in rows], dtype=np.intp)
    flat = [np.concatenate([r[j] for r in rows if r is not None] or [np.empty(0)]) for j in (0, 1)]
    return (*_scatter(flat[0], flat[1], lens), problems)


def _stack_fast(items: list) -> tuple[np.ndarray, np.ndarray] | None:
    """:func:`_stack_analyses` for analyses that are all well formed, with whole-batch checks (a few
    microseconds an analysis fewer); None when any is not, for the slow path to name what is wrong."""
    try:
        ys, vs, names = zip(*map(_parts, items)) if items else ((), (), ())
        lens = np.array([len(y) for y in ys], dtype=np.intp)
        if not np.array_equal(lens, [len(v) for v in vs]) or not lens.all():
            return None
        fy = np.asarray(np.concatenate(ys), dtype=float)
        fv = np.asarray(np.concatenate(vs), dtype=float)
    except (TypeError, ValueError):
        return None
    if fy.ndim != 1 or fv.ndim != 1 or fy.size != lens.sum() or fv.size != fy.size:
        return None
    if not (np.isfinite(fy).all() and np.isfinite(fv).all() and (fv > 0).all()):
        return None
    se = [n == "sei" for n in names]
    if any(se):
        squared = np.repeat(np.array(se), lens)
        fv[squared] = fv[squared] ** 2
        if not (fv > 0).all():  # an SE so small its square is 0
            return None
    return _scatter(fy, fv, lens)


def _scatter(fy: np.ndarray, fv: np.ndarray, lens: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Analyses' studies end to end (``lens`` of each) as NaN-padded (m, k_max) rows."""
    Y = np.full((len(lens), max(int(lens.max(initial=0)), 1)), np.nan)
    V = np.full_like(Y, np.nan)
    rows = np.repeat(np.arange(len(lens)), lens)
    cols = np.arange(rows.size) - np.repeat(np.cumsum(lens) - lens, lens)
    Y[rows, cols] = fy
    V[rows, cols] = fv
    return Y, V


def _raise_problems(problems: list[tuple[int, str]], total: int) -> None:
    """One ValueError naming every bad analysis (by position among the ``total`` given; the first
    ``SHOWN_PROBLEMS`` spelled out)."""
    if not problems:
        return
    lines = [f"  analysis {i}: {msg}" for i, msg in problems[:SHOWN_PROBLEMS]]
    if len(problems) > SHOWN_PROBLEMS:
        lines.append(f"  ... and {len(problems) - SHOWN_PROBLEMS} more")
    raise ValueError(f"{len(problems)} of the {total} analyses cannot be pooled (positions count from 0):\n"
                     + "\n".join(lines))


# ------------------------------------------------------------------------------------------------ results


@dataclass(frozen=True, kw_only=True)
class PoolManyResult(WithConventions):
    """Every ``PoolResult`` field as an array, one entry per meta-analysis (row); with ``pool_many(fields=)`` only
    those fields (and ``k``), the others ``None``."""

    estimate: np.ndarray | None = None
    se: np.ndarray | None = None
    stat: np.ndarray | None = None
    p: np.ndarray | None = None
    ci_low: np.ndarray | None = None
    ci_high: np.ndarray | None = None
    pi_low: np.ndarray | None = None
    pi_high: np.ndarray | None = None
    tau2: np.ndarray | None = None
    tau2_se: np.ndarray | None = None
    tau2_ci_low: np.ndarray | None = None
    tau2_ci_high: np.ndarray | None = None
    tau: np.ndarray | None = None
    i2: np.ndarray | None = None
    i2_ci_low: np.ndarray | None = None
    i2_ci_high: np.ndarray | None = None
    h2: np.ndarray | None = None
    h2_ci_low: np.ndarray | None = None
    h2_ci_high: np.ndarray | None = None
    q: np.ndarray | None = None
    q_df: np.ndarray | None = None
    q_p: np.ndarray | None = None
    k: np.ndarray
    df: np.ndarray | None = None
    s2w: np.ndarray | None = None
    loglik: np.ndarray | None = None
    weights: np.ndarray | None = None
    test_used: np.ndarray | None = None
    conventions: Conventions

    def __len__(self) -> int:
        return len(self.k)

    @property
    def computed(self) -> tuple[str, ...]:
        """The fields this result holds (every one unless ``pool_many(fields=)`` chose some)."""
        return tuple(f.name for f in fields(self) if f.name != "conventions" and getattr(self, f.name) is not None)

    def to_frame(self) -> pd.DataFrame:
        """One row per meta-analysis, one column per scalar field (those computed)."""
        cols = {
            f.name: getattr(self, f.name)
            for f in fields(self)
            if f.name not in ("weights", "conventions") and getattr(self, f.name) is not None
        }
        df = pd.DataFrame(cols)
        df["method"] = self.method
        df["test"] = self.test
        df["level"] = self.level
        return df

    def row(self, i: int, *, labels: Sequence[str] | None = None, yi=None, vi=None) -> PoolResult:
        missing = [f.name for f in fields(self) if f.name != "conventions" and getattr(self, f.name) is None]
        if missing:
            raise ValueError(f"row() needs every field; this result was computed with pool_many(fields=) and lacks "
                             f"{', '.join(missing)}")
        kwargs = {}
        for f in fields(PoolResult):
            if f.name in ("conventions", "weights", "labels", "yi", "vi", "notes", "data"):
                continue
            val = getattr(self, f.name)[i]
            kwargs[f.name] = int(val) if f.name == "k" else (val if f.name == "test_used" else float(val))
        k = int(self.k[i])
        w = self.weights[i]
        w = w[~np.isnan(w)] if yi is None else w[: len(yi)]
        notes = []
        if self.test_used[i] != self.conventions.test:
            notes.append(f"test {self.conventions.test!r} needs k >= 2; the z test was used (as metafor does)")
        if k == 1 and self.conventions.method != "FE":
            notes.append("one study: tau^2 is not estimable and is set to 0 (as metafor does)")
        return PoolResult(
            **kwargs,
            weights=np.asarray(w, dtype=float),
            labels=tuple(labels) if labels is not None else tuple(f"study {j + 1}" for j in range(k)),
            yi=np.asarray(yi, dtype=float) if yi is not None else None,
            vi=np.asarray(vi, dtype=float) if vi is not None else None,
            notes=tuple(notes),
            conventions=self.conventions,
        )


@dataclass(frozen=True)
class PoolResult(WithConventions):  # method, test, level: metafor-style accessors
    """One pooled meta-analysis, full precision; printing rounds, the numbers do not.

    ``i2`` is in percent. ``weights`` are percent weights of the studies in the pooled estimate.
    """

    estimate: float
    se: float
    stat: float
    p: float
    ci_low: float
    ci_high: float
    pi_low: float
    pi_high: float
    tau2: float
    tau2_se: float
    tau2_ci_low: float
    tau2_ci_high: float
    tau: float
    i2: float
    i2_ci_low: float
    i2_ci_high: float
    h2: float
    h2_ci_low: float
    h2_ci_high: float
    q: float
    q_df: float
    q_p: float
    k: int
    df: float
    s2w: float
    loglik: float
    test_used: str
    weights: np.ndarray = field(repr=False)
    labels: tuple[str, ...] = field(repr=False)
    yi: np.ndarray | None = field(repr=False, default=None)
    vi: np.ndarray | None = field(repr=False, default=None)
    notes: tuple[str, ...] = ()
    conventions: Conventions = field(default_factory=Conventions)

    @property
    def tau2_ci(self) -> tuple[float, float]:
        return (self.tau2_ci_low, self.tau2_ci_high)

    @property
    def i2_ci(self) -> tuple[float, float]:
        return (self.i2_ci_low, self.i2_ci_high)

    @property
    def h2_ci(self) -> tuple[float, float]:
        return (self.h2_ci_low, self.h2_ci_high)

    def study_frame(self) -> pd.DataFrame:
        """Per-study table: label, yi, vi, se, CI (level of the result, normal quantiles) and % weight."""
        from scipy import stats

        z = stats.norm.ppf(1 - (1 - self.level) / 2)
        yi = self.yi if self.yi is not None else np.full(self.k, np.nan)
        vi = self.vi if self.vi is not None else np.full(self.k, np.nan)
        sei = np.sqrt(vi)
        return pd.DataFrame(
            {
                "study": list(self.labels),
                "yi": yi,
                "vi": vi,
                "se": sei,
                "ci_low": yi - z * sei,
                "ci_high": yi + z * sei,
                "weight": self.weights,
            }
        )

    def summary_frame(self) -> pd.DataFrame:
        """Studies plus the pooled row (``row_type`` tells them apart): what forest plots are drawn from."""
        st = self.study_frame()
        st["row_type"] = "study"
        pooled = pd.DataFrame(
            {
                "study": ["pooled"],
                "yi": [self.estimate],
                "vi": [self.se**2],
                "se": [self.se],
                "ci_low": [self.ci_low],
                "ci_high": [self.ci_high],
                "weight": [100.0],
                "row_type": ["pooled"],
                "pi_low": [self.pi_low],
                "pi_high": [self.pi_high],
            }
        )
        return pd.concat([st, pooled], ignore_index=True)

    def to_frame(self) -> pd.DataFrame:
        """One row with every scalar field and the conventions."""
        d = {
            f.name: [getattr(self, f.name)]
            for f in fields(self)
            if f.name not in ("weights", "labels", "yi", "vi", "notes", "conventions")
        }
        d.update({f"conv_{k}": [v] for k, v in self.conventions.to_dict().items()})
        return pd.DataFrame(d)

    def _lines(self) -> list[str]:
        c = self.conventions
        lvl = f"{100 * c.level:g}%"
        stat_name = "t" if self.test_used in ("t", "hksj") else "z"
        df_txt = f", df = {self.df:g}" if stat_name == "t" else ""
        lines = [
            f"{'Common-effect' if c.method == 'FE' else 'Random-effects'} model (k = {self.k}; "
            f"tau^2 estimator: {c.method})",
            "",
            f"estimate = {self.estimate:.4f}  se = {self.se:.4f}  {stat_name} = {self.stat:.4f}{df_txt}  "
            f"p = {_fmt_p(self.p)}",
            f"{lvl} CI: [{self.ci_low:.4f}, {self.ci_high:.4f}]   "
            f"{lvl} PI: [{self.pi_low:.4f}, {self.pi_high:.4f}]",
        ]
        if c.method != "FE":
            lines.append(
                f"tau^2 = {self.tau2:.4f} (SE = {self.tau2_se:.4f}; {lvl} CI [{self.tau2_ci_low:.4f}, "
                f"{self.tau2_ci_high:.4f}])  tau = {self.tau:.4f}"
            )
        lines.append(
            f"I^2 = {self.i2:.2f}% ({lvl} CI [{self.i2_ci_low:.2f}, {self.i2_ci_high:.2f}])  H^2 = {self.h2:.4f}"
        )
        lines.append(f"Q({self.q_df:g}) = {self.q:.4f}, p = {_fmt_p(self.q_p)}")
        lines.append("")
        lines.append("Conventions: " + c.describe())
        for n in self.notes:
            lines.append("Note: " + n)
        return lines

    def __repr__(self) -> str:
        return "\n".join(self._lines())

    def _repr_html_(self) -> str:
        rows = "".join(
            f"<tr><th style='text-align:left'>{html.escape(a)}</th><td>{html.escape(b)}</td></tr>"
            for a, b in self._html_pairs()
        )
        conv = html.escape(self.conventions.describe())
        notes = "".join(f"<li>{html.escape(n)}</li>" for n in self.notes)
        return (
            f"<div><table>{rows}</table><p><small>Conventions: {conv}</small></p>"
            + (f"<ul>{notes}</ul>" if notes else "")
            + "</div>"
        )

    def _html_pairs(self) -> list[tuple[str, str]]:
        lvl = f"{100 * self.level:g}%"
        return [
            ("model", f"{self.method}, k = {self.k}"),
            ("estimate", f"{self.estimate:.4f} (SE {self.se:.4f})"),
            (f"{lvl} CI", f"{self.ci_low:.4f} to {self.ci_high:.4f}"),
            (f"{lvl} prediction interval", f"{self.pi_low:.4f} to {self.pi_high:.4f}"),
            ("p", _fmt_p(self.p)),
            ("tau²", f"{self.tau2:.4f} ({self.tau2_ci_low:.4f} to {self.tau2_ci_high:.4f})"),
            ("I²", f"{self.i2:.1f}% ({self.i2_ci_low:.1f} to {self.i2_ci_high:.1f})"),
            ("Q", f"{self.q:.3f} on {self.q_df:g} df, p = {_fmt_p(self.q_p)}"),
        ]


def _fmt_p(p: float) -> str:
    if not np.isfinite(p):
        return "NA"
    return "< .0001" if p < 1e-4 else f"{p:.4f}"


# ------------------------------------------------------------------------------------------------- the API


def pool_many(
    Y,
    V=None,
    *,
    sei=None,
    method: str | None = None,
    test: str | None = None,
    level: float | None = None,
    adhoc: bool | None = None,
    pi_type: str | None = None,
    i2_type: str | None = None,
    preset: str | None = None,
    tau2_ci: bool = True,
    fields: Sequence[str] | None = None,
) -> PoolManyResult:
    """Pool many meta-analyses at once: one per row of ``Y``/``V``, NaN-padded where k differs.

    Parameters are those of :func:`pool`, plus ``tau2_ci``: set it to False in batch work that does not need
    the Q-profile intervals for tau^2, I^2 and H^2 (they are then NaN); and ``fields``: the names of the fields
    to compute (e.g. ``("estimate", "se", "tau2")`` in a simulation study), the others left ``None``: what is not
    asked for is not computed (p-values, weights, log-likelihood, the SE of tau^2 and the Q-profile intervals take
    most of the time after tau^2 itself) nor kept in memory. Every field asked for is the same to the bit as
    without ``fields``; ``k`` is always there.
    Returns every field (or those asked for) as an array (``PoolManyResult``).

    Analyses of different sizes need no padding: give them alone, as a list (or other iterable) of pairs
    ``(yi, vi)`` or of mappings with ``yi`` and ``vi`` or ``sei`` (one study: ``([0.3], [0.1])``), e.g.
    ``pool_many([(y1, v1), (y2, v2)])``; every bad analysis is named in one error, by its position.

    ``Y`` and ``V`` (or ``sei``) may be dask arrays of shape (m, k), chunked by rows (analyses): each chunk is
    then checked and pooled in its own task (``mt_evidence.stats.distributed.map_analyses``), on a
    dask.distributed cluster when a Client is active, so memory is bounded by the chunk size; the result is
    the same ``PoolManyResult``, in memory. Or ``Y`` alone may be a dask bag of analyses (pairs or mappings as
    above, of any sizes; a simulation study's generator): one task per partition, each padded to its own
    largest k, ``weights`` to the largest of all. dask is needed only then (``pip install mt_evidence[dask]``).

    With numba installed (``pip install mt_evidence[fast]``) the iterative solvers can run compiled: the same numbers
    to the bit, about twice as fast for REML (benchmarks/README.md). Loading them costs about 0.7 s in a process (8 s
    the very first time on a machine, to compile), so by default a process switches to them once it has pooled
    500,000 analyses in batches of 64 or more; ``mt_evidence.stats.compiled.use(True)`` switches now (a simulation
    study), ``use(False)`` never.

    Validated against: metafor 3.8 ``rma.uni(yi, vi, method=, test=)``, ``confint()`` and ``predict()``,
    row by row (tests/reference).
    """
    conv = resolve(preset=preset, method=method, test=test, adhoc=adhoc, level=level, pi_type=pi_type,
                   i2_type=i2_type)
    chosen = _chosen_fields(fields)
    analyses = _as_analyses(Y) if V is None and sei is None else None
    if analyses is not None:
        if distributed.is_dask_bag(analyses):
            return _pool_many_bag(analyses, conv, tau2_ci=tau2_ci, fields=chosen)
        Ya, Va, problems = _stack_analyses(analyses)
        _raise_problems(problems, len(Ya))
        if not len(Ya):
            raise ValueError("no analyses given: the collection is empty (give analyses as pairs (yi, vi) or "
                             "mappings, or yi with vi or sei)")
        return _pool_arrays(Ya, Va, conv, tau2_ci=tau2_ci, pad=np.isnan(Ya), fields=chosen)
    if any(distributed.is_dask_collection(a) for a in (Y, V, sei)):
        return _pool_many_chunks(Y, V, sei, conv, tau2_ci=tau2_ci, fields=chosen)
    Vv = _variances(V, sei)
    Yarr = _as_2d("yi", Y, allow_nan=True)
    Varr = _as_2d("vi" if sei is None else "sei", Vv, allow_nan=True)
    pad = _check_inputs(Yarr, Varr, padded=True)
    return _pool_arrays(Yarr, Varr, conv, tau2_ci=tau2_ci, pad=pad, fields=chosen)


def _as_analyses(Y):
    """``Y`` given without vi or sei, as a collection of analyses (see ``pool_many``), or None when it is not
    one (then the error asking for vi or sei stands). A dask bag is returned as it is; another iterable that is
    not an array is one when its first element is a mapping or a pair of lists (it is read into a list)."""
    if distributed.is_dask_bag(Y):
        return Y
    if (isinstance(Y, (np.ndarray, str, bytes, Mapping)) or distributed.is_dask_collection(Y)
            or not isinstance(Y, Iterable)):
        return None
    items = list(Y)
    if not items:
        return items
    first = items[0]
    pair = (isinstance(first, (tuple, list)) and len(first) == 2
            and all(np.ndim(part) >= 1 and not isinstance(part, Mapping) for part in first))
    return items if isinstance(first, Mapping) or pair else None


def _pool_many_bag(bag, conv: Conventions, *, tau2_ci: bool, fields: frozenset | None) -> PoolManyResult:
    """``pool_many`` on a dask bag of analyses: one task per partition (distributed.map_partitions), each checking
    and pooling its own analyses padded to its own largest k; the fields concatenated in order (weights padded
    to the largest k of all), every bad analysis named by its position in the bag."""
    parts = distributed.map_partitions(_pool_partition, bag, conv=conv, tau2_ci=tau2_ci, fields=fields)
    starts = np.concatenate([[0], np.cumsum([p["n"] for p in parts])]).astype(int)
    problems = [(int(start) + i, msg) for p, start in zip(parts, starts) for i, msg in p["problems"]]
    _raise_problems(problems, int(starts[-1]))
    done = [p["fields"] for p in parts if p["n"]]
    if not done:
        raise ValueError("no analyses given: the dask bag is empty")
    out = {}
    for name, first in done[0].items():
        if first is None:
            out[name] = None
        elif name == "weights":  # (analyses, studies): pad every partition to the widest
            width = max(d[name].shape[1] for d in done)
            out[name] = np.concatenate([np.pad(d[name], ((0, 0), (0, width - d[name].shape[1])),
                                               constant_values=np.nan) for d in done])
        else:
            out[name] = np.concatenate([d[name] for d in done])
    return PoolManyResult(**out, conventions=conv)


def _pool_partition(elements, *, conv: Conventions, tau2_ci: bool, fields: frozenset | None) -> dict:
    """Check and pool one partition of a bag of analyses: its size, its problems (position within it, what is
    wrong) and, when it has none, its fields (the task behind ``pool_many`` on a dask bag)."""
    Y, V, problems = _stack_analyses(elements)
    if problems or not len(Y):
        return {"n": len(Y), "problems": problems, "fields": None}
    return {"n": len(Y), "problems": [], "fields": _fit(Y, V, np.isnan(Y), conv, tau2_ci=tau2_ci, fields=fields)}


def _chosen_fields(fields_: Sequence[str] | None) -> frozenset | None:
    """``pool_many``'s ``fields`` checked against the fields there are (None: every field)."""
    if fields_ is None:
        return None
    if isinstance(fields_, str):
        fields_ = (fields_,)
    chosen = frozenset(fields_)
    unknown = sorted(chosen - set(intercept.FIELDS))
    if unknown:
        raise ValueError(f"pool_many(fields=): unknown field(s) {', '.join(map(repr, unknown))}; the fields are "
                         f"{', '.join(intercept.FIELDS)}")
    if not chosen:
        raise ValueError("pool_many(fields=) is empty: name at least one field (or None for every field)")
    return chosen


def _pool_many_chunks(Y, V, sei, conv: Conventions, *, tau2_ci: bool, fields: frozenset | None = None
                      ) -> PoolManyResult:
    """``pool_many`` on dask arrays: one task per chunk of rows (distributed.map_analyses), each checking and
    pooling its own rows, so that memory is bounded by the chunk size; the result is in memory."""
    if (V is None) == (sei is None):
        raise ValueError("give exactly one of vi (sampling variances) or sei (standard errors)")
    second = V if sei is None else sei
    for name, a in (("yi", Y), ("vi" if sei is None else "sei", second)):
        if len(getattr(a, "shape", ())) != 2:
            raise ValueError(f"{name} as a dask array must be 2-D (one meta-analysis per row); got shape "
                             f"{getattr(a, 'shape', None)}")
    if tuple(Y.shape) != tuple(second.shape):
        raise ValueError(f"yi and vi must have the same shape; got {tuple(Y.shape)} and {tuple(second.shape)}")
    out = distributed.map_analyses(_pool_block, Y, second, row_offset="offset", conv=conv, tau2_ci=tau2_ci,
                                   se=sei is not None, fields=fields)
    return PoolManyResult(**out, conventions=conv)


def _pool_block(Y, V, *, conv: Conventions, tau2_ci: bool, se: bool, offset: int = 0,
                fields: frozenset | None = None) -> dict:
    """Check and pool one chunk of rows (first row ``offset``): the task behind ``pool_many`` on dask arrays."""
    Vv = _variances(None, V) if se else V
    Yarr = _as_2d("yi", Y, allow_nan=True, offset=offset)
    Varr = _as_2d("sei" if se else "vi", Vv, allow_nan=True, offset=offset)
    pad = _check_inputs(Yarr, Varr, padded=True, offset=offset)
    return _fit(Yarr, Varr, pad, conv, tau2_ci=tau2_ci, fields=fields)


def _fit(Y: np.ndarray, V: np.ndarray, pad: np.ndarray | None, conv: Conventions, *, tau2_ci: bool,
         fields: frozenset | None, tau2: np.ndarray | None = None) -> dict:
    """Every field of every row of checked, NaN-padded arrays (``pad``: where yi is NaN), as a dict."""
    with intercept.scratch():  # the studies x analyses copies live only for the fit
        return intercept.pool_columns(intercept.Studies.from_rows(Y, V, pad), conv, tau2_ci=tau2_ci, tau2=tau2,
                                      fields=fields)


def _pool_arrays(Y: np.ndarray, V: np.ndarray, conv: Conventions, *, tau2_ci: bool = True,
                 pad: np.ndarray | None = None, tau2: np.ndarray | None = None,
                 fields: frozenset | None = None) -> PoolManyResult:
    """Pool every row; ``tau2`` (one value per row) fixes tau^2 instead of estimating it (metafor ``rma(tau2=)``;
    then there is no Q-profile interval)."""
    fields_ = _fit(Y, V, pad, conv, tau2_ci=tau2_ci and tau2 is None, tau2=tau2, fields=fields)
    return PoolManyResult(**fields_, conventions=conv)


def pool(
    yi,
    vi=None,
    *,
    sei=None,
    method: str | None = None,
    test: str | None = None,
    level: float | None = None,
    adhoc: bool | None = None,
    pi_type: str | None = None,
    i2_type: str | None = None,
    preset: str | None = None,
    labels: Sequence[str] | None = None,
    tau2: float | None = None,
) -> PoolResult:
    """Pool one meta-analysis (inverse-variance, common or random effects).

    Parameters
    ----------
    yi, vi : array-like
        Effect sizes and their sampling variances (or give ``sei``, standard errors, instead of ``vi``).
    method : {"REML", "FE", "DL", "HE", "HS", "SJ", "PM", "EB", "ML"}
        Estimator of tau^2 (default REML, as metafor). "FE" is the common-effect model.
    test : {"z", "t", "hksj"}
        "z" Wald test with normal quantiles (metafor default); "hksj" (alias "knha") Hartung-Knapp-Sidik-Jonkman;
        "t" t quantiles with k-1 df and no variance rescaling.
    adhoc : bool
        With ``test="hksj"``: the ad hoc correction (variance factor at least 1; Roever et al. 2015).
    level : float
        Confidence level for every interval (0.95).
    pi_type : {"default", "riley", "t", "simple"}
        Prediction interval as metafor 3.8 ``predict(pi.type=)``: "default" uses the CI's quantile;
        "riley" t with k-2 df (Higgins 2009); "t" t with k-1 df; "simple" z and tau only.
    i2_type : {"tau2", "q"}
        I^2 from tau^2 (metafor) or from Q (Higgins & Thompson; RevMan 5).
    preset : {"metafor", "revman", "revman5"}
        Set all conventions at once; explicit arguments override single ones.
    labels : sequence of str
        Study labels, kept for tables and plots.
    tau2 : float, optional
        A given tau^2 (>= 0) used instead of estimating it, as metafor's ``rma(tau2=)``: e.g. RevMan 5's
        DerSimonian-Laird tau^2 from a Mantel-Haenszel Q (:func:`pool_binary` with ``preset="revman5"``). The
        random-effects weights, estimate, CI, prediction interval, I^2 (``i2_type="tau2"``) and the SE of tau^2
        (``method``'s formula at the given value, as metafor) use it; it has no Q-profile CI (NaN, as metafor's
        ``confint`` refuses it). Needs a random-effects ``method``.

    Returns
    -------
    PoolResult
        Estimate (with the sign of ``yi``), CI, prediction interval, tau^2 with Q-profile CI, I^2, H^2, Q test,
        per-study percent weights, and the conventions used.

    Validated against: metafor 3.8 ``rma.uni(yi, vi, method=, test=)``, ``confint()``, ``predict()``
    (tests/reference/make_reference.R).
    """
    conv = resolve(preset=preset, method=method, test=test, adhoc=adhoc, level=level, pi_type=pi_type,
                   i2_type=i2_type)
    Vv = _variances(vi, sei)
    y = _as_2d("yi", np.atleast_1d(np.asarray(yi, dtype=object)).tolist(), allow_nan=False)
    v = _as_2d("vi" if sei is None else "sei", np.atleast_1d(np.asarray(Vv, dtype=object)).tolist(), allow_nan=False)
    if y.shape[0] != 1:
        raise ValueError("pool() takes one meta-analysis (1-D yi and vi); use pool_many() for 2-D input")
    if y.shape != v.shape:
        raise ValueError(f"yi and vi must have the same length; got {y.shape[1]} and {v.shape[1]}")
    _check_inputs(y, v, padded=False)
    if labels is not None and len(labels) != y.shape[1]:
        raise ValueError(f"labels has {len(labels)} entries but there are {y.shape[1]} studies")
    if tau2 is None:
        return _pool_arrays(y, v, conv).row(0, labels=labels, yi=y[0], vi=v[0])
    try:
        t = float(tau2)
    except (TypeError, ValueError):
        raise TypeError(f"tau2 must be a number (a given tau^2 >= 0); got {tau2!r}") from None
    if not np.isfinite(t) or t < 0:
        raise ValueError(f"tau2 must be a finite number >= 0; got {tau2!r}")
    if conv.method == "FE":
        raise ValueError("a given tau2 needs a random-effects method (e.g. method='DL'); method='FE' has tau^2 = 0")
    res = _pool_arrays(y, v, conv, tau2=np.array([t])).row(0, labels=labels, yi=y[0], vi=v[0])
    notes = tuple(n for n in res.notes if not n.startswith("one study: tau^2 is not estimable"))
    return replace(res, notes=notes + (f"tau^2 = {t:.6g} given, not estimated (metafor rma(tau2=)); no Q-profile CI",))

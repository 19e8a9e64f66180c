"""Durability in one model: a network meta-analysis over time, with repeated time points of a trial correlated.

The model (docs/methods.md section 16, "Durability"). Each trial contributes, at each time it reports, the
differences of its arms against its baseline arm (as in :mod:`.network`). The effects ``d[t, k]`` of treatment ``k``
against the reference are separate parameters for each time ``t`` (no shape is imposed on the time course), and

* **sampling errors**: within one time, the trial's differences covary as in the standard model (a shared arm);
  the same difference of a trial at two times covaries by ``rho_within * se1 * se2`` (the same people are measured
  again; ``rho_within`` is assumed, 0.5 by default, as the short-vs-long analysis of section 10, because trials do
  not print it); different differences at different times are taken as uncorrelated;
* **between-trial variation** has two parts, each with correlation 1/2 between two differences of one trial (the
  consistency model's structure): ``tau2_study``, shared by a trial's results at every time, and ``tau2_time``,
  specific to the trial at that time. A trial's true effects at two times therefore correlate by
  ``tau2_study / (tau2_study + tau2_time)`` (estimated, not assumed). This is metafor's
  ``rma.mv(yi, V, mods = X, random = list(~ comp | study, ~ comp | study_time), struct = c("CS", "CS"),
  rho = 1/2, phi = 1/2)``.

Both variances by REML (or 0, ``method="FE"``); Wald z inference. The change of a treatment's effect between two
times (``change``) takes the covariance of the two estimates into account: trials that report both times inform
it directly. Validated against metafor 3.8 (tests/reference/make_network_time_reference.R).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd
from scipy import optimize, stats

from .network import NetworkInputError, gls, prepare_studies, study_baseline

__all__ = ["NetworkTimeResult", "network_over_time", "time_model_matrices"]

TIME_METHODS = ("REML", "FE")


@dataclass(frozen=True)
class _Rows:
    y: np.ndarray
    V: np.ndarray  # sampling covariance
    R1: np.ndarray  # structure of the trial-level random effect (shared over time)
    R2: np.ndarray  # structure of the trial-by-time random effect
    X: np.ndarray
    rows: pd.DataFrame  # study, time, treat, base


def _order_times(values, times) -> list:
    if times is not None:
        return list(times)
    uniq = list(dict.fromkeys(values))
    try:
        return sorted(uniq, key=float)
    except (TypeError, ValueError):
        return uniq


def time_model_matrices(by_time: dict, order: list[str], rho_within: float) -> _Rows:
    """Stack every trial's differences at every time: y, the sampling covariance V (with the cross-time
    covariance of the same difference), the two random-effect structures and the design matrix (columns: each
    time x each treatment but the reference, time-major)."""
    times = list(by_time)
    reference = order[0]
    columns = [(t, k) for t in times for k in order[1:]]
    pos = {c: j for j, c in enumerate(columns)}
    names = list(dict.fromkeys(s.name for t in times for s in by_time[t]))
    ys, blocks, xrows, meta = [], [], [], []
    for name in names:
        entries = []  # (time, treat, base, y, index in the block, variance)
        parts = []
        for t in times:
            s = next((x for x in by_time[t] if x.name == name), None)
            if s is None:
                continue
            s = s.rebase(study_baseline(s, order))
            parts.append((t, s))
        sizes = [len(s.treats) - 1 for _, s in parts]
        m = sum(sizes)
        Vb, R1, R2 = np.zeros((m, m)), np.zeros((m, m)), np.zeros((m, m))
        off = 0
        for (t, s), size in zip(parts, sizes):
            Vb[off:off + size, off:off + size] = s.V
            for i, treat in enumerate(s.treats[1:]):
                entries.append((t, treat, s.treats[0], float(s.y[i]), off + i, float(s.V[i, i])))
            off += size
        for a, ea in enumerate(entries):
            for b, eb in enumerate(entries):
                same_comp = ea[1] == eb[1] and ea[2] == eb[2]
                R1[a, b] = 1.0 if same_comp else 0.5
                if ea[0] == eb[0]:
                    R2[a, b] = 1.0 if same_comp else 0.5
                elif same_comp:
                    Vb[a, b] = rho_within * np.sqrt(ea[5] * eb[5])
        for t, treat, base, y, _, _ in entries:
            x = np.zeros(len(columns))
            if treat != reference:
                x[pos[(t, treat)]] += 1.0
            if base != reference:
                x[pos[(t, base)]] -= 1.0
            xrows.append(x)
            ys.append(y)
            meta.append((name, t, treat, base))
        blocks.append((Vb, R1, R2))
    from scipy.linalg import block_diag

    V = block_diag(*[b[0] for b in blocks])
    R1 = block_diag(*[b[1] for b in blocks])
    R2 = block_diag(*[b[2] for b in blocks])
    return _Rows(np.array(ys), V, R1, R2, np.array(xrows).reshape(len(ys), len(columns)),
                 pd.DataFrame(meta, columns=["study", "time", "treat", "base"]))


def _reml_nll(params, rows: _Rows) -> float:
    t1, t2 = params
    S = rows.V + t1 * rows.R1 + t2 * rows.R2
    sign, logdet = np.linalg.slogdet(S)
    if sign <= 0:
        return np.inf
    _, _, q, _, XtSiX = gls(rows.y, S, rows.X)
    return 0.5 * (logdet + np.linalg.slogdet(XtSiX)[1] + q)


def _reml(rows: _Rows) -> tuple[float, float]:
    """Both variances by REML: the best of a small grid of starts, refined within [0, bound] by L-BFGS-B, along
    each edge (one variance 0) and by Nelder-Mead, the best point kept; a variance the likelihood cannot tell
    from 0 (within rounding) is 0 (docs/methods.md 16)."""
    if len(rows.y) - rows.X.shape[1] < 1:
        return 0.0, 0.0
    spread = float(np.var(rows.y)) + float(np.max(np.diag(rows.V)))
    ub = 10 * spread + 1e-8
    starts = [(a * spread, b * spread) for a in (0.0, 0.05, 0.5, 2.0) for b in (0.0, 0.05, 0.5, 2.0)]
    best = min(starts, key=lambda p: _reml_nll(p, rows))
    res = optimize.minimize(_reml_nll, np.array(best, float), args=(rows,), method="L-BFGS-B",
                            bounds=[(0.0, ub), (0.0, ub)], options={"ftol": 1e-15, "gtol": 1e-12, "maxiter": 5000})
    cand = [tuple(np.maximum(res.x, 0.0)), best]
    # the optimum may sit on a boundary (one variance 0): refine each edge in one dimension
    for fix in (0, 1):
        def f1(v, fix=fix):
            p = [0.0, 0.0]
            p[1 - fix] = v
            return _reml_nll(p, rows)
        r1 = optimize.minimize_scalar(f1, bounds=(0.0, ub), method="bounded", options={"xatol": 1e-14 * ub})
        p = [0.0, 0.0]
        p[1 - fix] = float(r1.x)
        cand.append(tuple(p))
    start = min(cand, key=lambda p: _reml_nll(p, rows))
    # fatol: a few rounding units of the objective (a tolerance below them is never met, and the simplex would
    # turn for all 4,000 iterations)
    fatol = _rounding(_reml_nll(start, rows))
    res2 = optimize.minimize(_reml_nll, np.array(start, float), args=(rows,), method="Nelder-Mead",
                             bounds=[(0.0, ub), (0.0, ub)], options={"xatol": 1e-12, "fatol": fatol, "maxiter": 4000})
    cand.append(tuple(np.maximum(res2.x, 0.0)))
    best = [float(max(t, 0.0)) for t in min(cand, key=lambda p: _reml_nll(p, rows))]
    # a variance the likelihood cannot tell from 0 (within rounding of the maximum) is 0
    for j in (0, 1):
        at0 = list(best)
        at0[j] = 0.0
        f = _reml_nll(best, rows)
        if best[j] > 0 and _reml_nll(at0, rows) <= f + _rounding(f):
            best = at0
    return best[0], best[1]


def _rounding(f: float) -> float:
    """What rounding can move the REML objective ``f`` by: 64 units in its last place (docs/methods.md 16)."""
    return 64 * np.finfo(float).eps * max(1.0, abs(f))


@dataclass(frozen=True)
class NetworkTimeResult:
    """Effects of each treatment against the reference at each time, from one model of every time point."""

    times: tuple
    treatments: tuple[str, ...]  # the reference first
    reference: str
    method: str
    tau2_study: float
    tau2_time: float
    rho_within: float
    coef: np.ndarray = field(repr=False)  # columns: time-major, treatments[1:]
    vcov: np.ndarray = field(repr=False)
    level: float = 0.95
    k: int = 0  # trials
    n_estimates: int = 0
    rows: pd.DataFrame = field(default_factory=pd.DataFrame, repr=False)
    notes: tuple[str, ...] = ()

    @property
    def tau2(self) -> float:
        """Between-trial variance of one difference at one time (both parts)."""
        return self.tau2_study + self.tau2_time

    @property
    def rho_between(self) -> float:
        """Correlation of a trial's true effects at two times: tau2_study / (tau2_study + tau2_time)."""
        return self.tau2_study / self.tau2 if self.tau2 > 0 else float("nan")

    def _crit(self) -> float:
        return float(stats.norm.ppf(1 - (1 - self.level) / 2))

    def _col(self, time, treatment) -> int:
        return list(self.times).index(time) * (len(self.treatments) - 1) + self.treatments.index(treatment) - 1

    def _combo(self, c: np.ndarray) -> dict:
        j = np.flatnonzero(c)  # effects not informed by any trial are NaN: only the ones used enter
        est = float(c[j] @ self.coef[j])
        se = float(np.sqrt(max(c[j] @ self.vcov[np.ix_(j, j)] @ c[j], 0.0)))
        z = self._crit()
        p = float(2 * stats.norm.sf(abs(est / se))) if se > 0 else float("nan")
        return {"estimate": est, "se": se, "ci_low": est - z * se, "ci_high": est + z * se, "p": p}

    def has(self, time, treatment) -> bool:
        """Whether any trial informs ``treatment`` at ``time`` (otherwise its effect there is not estimated)."""
        r = self.rows
        return bool(((r["time"] == time) & ((r["treat"] == treatment) | (r["base"] == treatment))).any())

    def effect(self, treatment: str, time) -> dict:
        c = np.zeros(len(self.coef))
        c[self._col(time, treatment)] = 1.0
        return self._combo(c)

    def effects(self) -> pd.DataFrame:
        """One row per time x treatment (not the reference): estimate, se, ci_low, ci_high against the reference."""
        out = []
        for t in self.times:
            for k in self.treatments[1:]:
                if self.has(t, k):
                    out.append({"time": t, "treatment": k, **self.effect(k, t)})
        return pd.DataFrame(out, columns=["time", "treatment", "estimate", "se", "ci_low", "ci_high", "p"])

    def change(self, treatment: str, t_from, t_to) -> dict:
        """The effect at ``t_to`` minus the effect at ``t_from`` (against the reference), with its uncertainty."""
        c = np.zeros(len(self.coef))
        c[self._col(t_to, treatment)] += 1.0
        c[self._col(t_from, treatment)] -= 1.0
        return self._combo(c)

    def changes(self, t_from=None, t_to=None) -> pd.DataFrame:
        """For each treatment informed at both times: the change of its effect from ``t_from`` (default the first
        time) to ``t_to`` (default the last)."""
        t_from = self.times[0] if t_from is None else t_from
        t_to = self.times[-1] if t_to is None else t_to
        out = [{"treatment": k, "from": t_from, "to": t_to, **self.change(k, t_from, t_to)}
               for k in self.treatments[1:] if self.has(t_from, k) and self.has(t_to, k)]
        return pd.DataFrame(out, columns=["treatment", "from", "to", "estimate", "se", "ci_low", "ci_high", "p"])

    def at(self, time) -> _TimeView:
        """The model's effects at one time, as an object the network plots read (``treatments``, ``reference``,
        ``level``, ``_effect``): the treatments informed at that time, the reference first."""
        return _TimeView(self, time)

    def describe(self) -> str:
        method = ("REML for both variances" if self.method == "REML" else "common effect (both variances 0)")
        return (f"network over time: {self.k} trials, {self.n_estimates} differences at {len(self.times)} times; "
                f"{method}; between-trial variance {self.tau2:.4g} (shared over time {self.tau2_study:.4g}, specific "
                f"to a time {self.tau2_time:.4g}); within-trial correlation between times assumed rho = "
                f"{self.rho_within:g}; Wald z intervals")

    def __repr__(self) -> str:
        e = self.effects()
        lines = [self.describe()] + [f"  {r.treatment} at {r.time}: {r.estimate:.3f} ({r.ci_low:.3f} to "
                                     f"{r.ci_high:.3f})" for r in e.itertuples()]
        return "\n".join(lines)


@dataclass(frozen=True)
class _TimeView:
    result: NetworkTimeResult
    time: object

    @property
    def treatments(self) -> tuple[str, ...]:
        r = self.result
        return (r.reference,) + tuple(k for k in r.treatments[1:] if r.has(self.time, k))

    @property
    def reference(self) -> str:
        return self.result.reference

    @property
    def level(self) -> float:
        return self.result.level

    def _effect(self, a: str, b: str) -> tuple[float, float]:
        """(estimate, se) of ``a`` minus ``b`` at this time."""
        r = self.result
        c = np.zeros(len(r.coef))
        if a != r.reference:
            c[r._col(self.time, a)] += 1.0
        if b != r.reference:
            c[r._col(self.time, b)] -= 1.0
        x = r._combo(c)
        return x["estimate"], x["se"]


def network_over_time(data: pd.DataFrame, *, time: str = "time", contrasts: pd.DataFrame | None = None,
                      reference: str | None = None, method: str = "REML", rho_within: float = 0.5,
                      level: float = 0.95, times=None) -> NetworkTimeResult:
    """Network meta-analysis of every time point at once (see the module docstring for the model).

    ``data`` (and ``contrasts``) as for :func:`~mt_evidence.stats.network.network_meta`, each row with a ``time``
    column (weeks, or a window's name; ``times`` gives their order, else numeric or first-seen order). A trial may
    report different arms at different times. ``rho_within``: the assumed correlation of a trial's difference at
    two times (0 to < 1). ``method``: "REML" or "FE".

    Every problem is reported at once as :class:`NetworkInputError`: per time, the standard model's input checks
    (single-arm trials, a disconnected network, ...), and a reference missing at a time.
    """
    m = str(method).upper()
    m = {"COMMON": "FE", "FIXED": "FE", "CE": "FE", "EE": "FE"}.get(m, m)
    if m not in TIME_METHODS:
        raise ValueError(f"method = {method!r}; expected one of {', '.join(TIME_METHODS)}")
    if not (0 <= rho_within < 1):
        raise ValueError(f"rho_within = {rho_within!r}; expected a correlation in [0, 1)")
    frames = [f for f in (data, contrasts) if f is not None]
    missing = [f"no column {time!r} (the time of each row)" for f in frames if time not in f.columns]
    if missing:
        raise NetworkInputError(missing[:1])
    order_t = _order_times(pd.concat([f[time] for f in frames]).tolist(), times)
    by_time: dict = {}
    problems: list[str] = []
    treatments: set[str] = set()
    for t in order_t:
        d = data[data[time] == t].drop(columns=[time])
        c = contrasts[contrasts[time] == t].drop(columns=[time]) if contrasts is not None else None
        if c is not None and c.empty:
            c = None
        if d.empty and c is not None:
            d, c = c, None
        if d.empty:
            continue
        try:
            studies, treats, _ = prepare_studies(d, c, None)
        except NetworkInputError as err:
            problems += [f"at {time} {t}: {p}" for p in err.problems]
            continue
        by_time[t] = studies
        treatments |= set(treats)
    if reference is None:
        reference = sorted(treatments)[0] if treatments else ""
    for t, studies in by_time.items():
        if not any(reference in s.treats for s in studies):
            problems.append(f"at {time} {t}: no trial has the reference {reference!r}, so effects at that time cannot "
                            "be put against it; choose a reference present at every time or leave that time out")
    if problems or not by_time:
        raise NetworkInputError(problems or ["no trial with two or more treatments"])
    order = [reference] + sorted(treatments - {reference})
    rows = time_model_matrices(by_time, order, rho_within)
    informed = np.abs(rows.X).sum(axis=0) > 0
    X = rows.X[:, informed]
    if np.linalg.matrix_rank(X) < X.shape[1]:
        raise NetworkInputError(["the effects cannot all be estimated: at some time a treatment is not linked to the "
                                 "reference"])
    rows = _Rows(rows.y, rows.V, rows.R1, rows.R2, X, rows.rows)
    if np.min(np.linalg.eigvalsh(rows.V)) <= 0:
        raise NetworkInputError([f"the within-trial covariance is not positive definite with rho_within = "
                                 f"{rho_within:g}; use a smaller correlation"])
    t1, t2 = (0.0, 0.0) if m == "FE" else _reml(rows)
    b_inf, A_inf, _, _, _ = gls(rows.y, rows.V + t1 * rows.R1 + t2 * rows.R2, X)
    ncol = len(by_time) * (len(order) - 1)
    b = np.full(ncol, np.nan)
    A = np.full((ncol, ncol), np.nan)
    idx = np.flatnonzero(informed)
    b[idx] = b_inf
    A[np.ix_(idx, idx)] = A_inf
    notes = []
    k = rows.rows["study"].nunique()
    several = rows.rows.groupby("study")["time"].nunique()
    notes.append(f"{int((several > 1).sum())} of {k} trials report more than one time")
    return NetworkTimeResult(tuple(by_time), tuple(order), reference, m, t1, t2, float(rho_within), b, A, level, k,
                             len(rows.y), rows.rows, tuple(notes))

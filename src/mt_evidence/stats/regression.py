"""Meta-regression: mixed-effects models with moderators (metafor ``rma(yi, vi, mods=...)``)."""

from __future__ import annotations

import html
from collections.abc import Mapping
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
from scipy import stats

from . import engine
from .conventions import Conventions, resolve

__all__ = ["MetaRegressionResult", "meta_regression", "design_matrix"]


def design_matrix(moderators, k: int, *, intercept: bool = True) -> tuple[np.ndarray, list[str]]:
    """Turn moderators into a numeric design matrix with column names.

    ``moderators`` may be a DataFrame (categorical/object columns become treatment-coded dummies, the first
    level sorted as reference, like R's ``factor``), a mapping of name -> values, a 1-D array or a 2-D array.
    """
    if isinstance(moderators, pd.Series):
        moderators = moderators.to_frame(name=moderators.name or "x")
    if isinstance(moderators, Mapping):
        moderators = pd.DataFrame(dict(moderators))
    if isinstance(moderators, pd.DataFrame):
        parts, names = [], []
        for col in moderators.columns:
            s = moderators[col]
            if s.dtype.kind in "biuf" and not isinstance(s.dtype, pd.CategoricalDtype):
                parts.append(s.to_numpy(dtype=float)[:, None])
                names.append(str(col))
            else:
                cat = s.astype("category")
                levels = list(cat.cat.categories)
                if len(levels) < 2:
                    raise ValueError(f"moderator {col!r} has a single level ({levels}); it cannot be estimated")
                for lev in levels[1:]:
                    parts.append((s == lev).to_numpy(dtype=float)[:, None])
                    names.append(f"{col}[{lev}]")
        X = np.hstack(parts) if parts else np.empty((len(moderators), 0))
    else:
        X = np.asarray(moderators, dtype=float)
        if X.ndim == 1:
            X = X[:, None]
        names = [f"x{j + 1}" for j in range(X.shape[1])]
    if X.shape[0] != k:
        raise ValueError(f"moderators have {X.shape[0]} rows but there are {k} studies")
    if np.isnan(X).any():
        rows = np.flatnonzero(np.isnan(X).any(axis=1))[:10].tolist()
        raise ValueError(f"moderators have missing values in rows {rows}; drop those studies first")
    if intercept:
        X = np.hstack([np.ones((k, 1)), X])
        names = ["intrcpt"] + names
    if np.linalg.matrix_rank(X) < X.shape[1]:
        raise ValueError(f"the moderators are collinear (design matrix columns {names} are not independent)")
    if X.shape[1] > k:
        raise ValueError(f"{X.shape[1]} coefficients cannot be estimated from {k} studies")
    return X, names


@dataclass(frozen=True)
class MetaRegressionResult:
    """Fitted mixed-effects meta-regression; ``coefficients`` holds the full-precision coefficient table."""

    coefficients: pd.DataFrame
    tau2: float
    tau2_se: float
    i2: float
    h2: float
    r2: float
    qm: float
    qm_df: tuple[float, float]
    qm_p: float
    qe: float
    qe_df: float
    qe_p: float
    k: int
    p: int
    loglik: float
    vcov: np.ndarray = field(repr=False)
    conventions: Conventions = field(default_factory=Conventions)

    def to_frame(self) -> pd.DataFrame:
        return self.coefficients.copy()

    def __repr__(self) -> str:
        c = self.conventions
        qm_name = (f"F({self.qm_df[0]:g}, {self.qm_df[1]:g})" if c.test in ("t", "hksj")
                   else f"QM({self.qm_df[0]:g})")
        lines = [
            f"Mixed-effects meta-regression (k = {self.k}; tau^2 estimator: {c.method})",
            f"tau^2 (residual) = {self.tau2:.4f}  I^2 = {self.i2:.2f}%  H^2 = {self.h2:.4f}  R^2 = {self.r2:.2f}%",
            f"Residual heterogeneity: QE({self.qe_df:g}) = {self.qe:.4f}, p = {self.qe_p:.4g}",
            f"Test of moderators: {qm_name} = {self.qm:.4f}, p = {self.qm_p:.4g}",
            "",
            self.coefficients.to_string(float_format=lambda v: f"{v:.4f}"),
            "",
            "Conventions: " + c.describe(),
        ]
        return "\n".join(lines)

    def _repr_html_(self) -> str:
        return (
            f"<div><p>{html.escape(self.__repr__().splitlines()[0])}</p>"
            + self.coefficients.to_html(float_format=lambda v: f"{v:.4f}")
            + f"<p><small>{html.escape(self.conventions.describe())}</small></p></div>"
        )


def meta_regression(
    yi,
    vi,
    moderators,
    *,
    method: str | None = None,
    test: str | None = None,
    level: float | None = None,
    adhoc: bool | None = None,
    intercept: bool = True,
    btt=None,
    preset: str | None = None,
) -> MetaRegressionResult:
    """Fit ``yi = X b + u + e`` with ``u ~ N(0, tau^2)`` and ``e ~ N(0, vi)``.

    Parameters
    ----------
    moderators : DataFrame, mapping, or array
        Columns of the design matrix (an intercept is added unless ``intercept=False``). Non-numeric columns are
        dummy-coded with the first sorted level as reference.
    test : {"z", "t", "hksj"}
        "hksj" (Knapp-Hartung) gives t tests for coefficients and an F test for the moderators.
    btt : sequence of int, optional
        Coefficients tested jointly by QM (default: all but the intercept).

    Validated against: metafor 3.8 ``rma(yi, vi, mods = ~ ..., method=, test=)``.
    """
    conv = resolve(preset=preset, method=method, test=test, adhoc=adhoc, level=level, pi_type=None, i2_type=None)
    y = np.asarray(yi, dtype=float)
    v = np.asarray(vi, dtype=float)
    if y.ndim != 1 or y.shape != v.shape:
        raise ValueError(f"yi and vi must be 1-D of the same length; got shapes {y.shape} and {v.shape}")
    if np.isnan(y).any() or np.isnan(v).any():
        raise ValueError("yi and vi must not contain NaN; drop incomplete studies first")
    if (v <= 0).any():
        raise ValueError(f"sampling variances must be positive; got {v[v <= 0][:5].tolist()}")
    X, names = design_matrix(moderators, len(y), intercept=intercept)
    k, p = X.shape
    if k - p < 1 and conv.method != "FE":
        raise ValueError(f"{p} coefficients and {k} studies leave no residual degrees of freedom for tau^2")
    batch = engine.Batch.from_arrays(y[None, :], v[None, :], X[None, :, :])
    fa = engine.fit(batch, conv)
    b = fa.b[0]
    vb = fa.vb[0]
    se = fa.se[0]
    if btt is None:
        btt = [j for j in range(p) if not (intercept and j == 0)]
    btt = list(btt)
    if btt:
        bb = b[btt]
        qm = float(bb @ np.linalg.solve(vb[np.ix_(btt, btt)], bb))
    else:
        qm = float("nan")
    m = len(btt)
    use_t = fa.test_used[0] in ("t", "hksj")
    if use_t:
        qm = qm / m if m else qm
        qm_df = (float(m), float(k - p))
        qm_p = float(stats.f.sf(qm, m, k - p)) if m else float("nan")
    else:
        qm_df = (float(m), float("nan"))
        qm_p = float(stats.chi2.sf(qm, m)) if m else float("nan")
    coef = pd.DataFrame(
        {
            "estimate": b,
            "se": se,
            "stat": fa.stat[0],
            "p": fa.pval[0],
            "ci_low": fa.ci_low[0],
            "ci_high": fa.ci_high[0],
        },
        index=pd.Index(names, name="term"),
    )
    # pseudo R^2 as metafor: proportional reduction of tau^2 against the intercept-only model
    r2 = float("nan")
    if intercept and conv.method != "FE":
        null = engine.fit(engine.Batch.from_arrays(y[None, :], v[None, :]), conv)
        t0 = float(null.tau2[0])
        r2 = 0.0 if t0 <= 0 else max(0.0, 100 * (t0 - float(fa.tau2[0])) / t0)
    return MetaRegressionResult(
        coefficients=coef,
        tau2=float(fa.tau2[0]),
        tau2_se=float(fa.tau2_se[0]),
        i2=float(fa.i2[0]),
        h2=float(fa.h2[0]),
        r2=r2,
        qm=qm,
        qm_df=qm_df,
        qm_p=qm_p,
        qe=float(fa.q[0]),
        qe_df=float(fa.q_df[0]),
        qe_p=float(fa.q_p[0]),
        k=int(k),
        p=int(p),
        loglik=float(fa.loglik[0]),
        vcov=vb,
        conventions=conv,
    )

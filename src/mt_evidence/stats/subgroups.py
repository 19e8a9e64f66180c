"""Subgroup analysis: a pooled result per subgroup and the test for subgroup differences.

Two versions of the test are given, because tools differ:

* **separate tau^2** per subgroup (RevMan, R meta's default): each subgroup is pooled on its own, and the
  subgroup estimates are compared with a common-effect Q test (df = G - 1). Validated against metafor:
  ``rma(est, sei=se, mods = ~ factor(g), method = "FE")`` QM.
* **common tau^2** (metafor ``rma(yi, vi, mods = ~ factor(g))``): one mixed-effects model with subgroup dummies;
  QM (or F under HKSJ) tests the dummies.
"""

from __future__ import annotations

import html
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
from scipy import stats

from .conventions import Conventions, resolve
from .pooling import PoolResult, pool
from .regression import MetaRegressionResult, meta_regression

__all__ = ["SubgroupResult", "subgroup"]


@dataclass(frozen=True)
class SubgroupResult:
    groups: dict[str, PoolResult]
    overall: PoolResult
    q_between: float
    q_between_df: float
    q_between_p: float
    common: MetaRegressionResult | None
    conventions: Conventions = field(default_factory=Conventions)

    @property
    def test_separate(self) -> dict:
        """Test for subgroup differences with tau^2 estimated separately in each subgroup."""
        return {"q": self.q_between, "df": self.q_between_df, "p": self.q_between_p}

    @property
    def test_common(self) -> dict:
        """Test for subgroup differences with a common tau^2 (metafor's QM for ``mods = ~ factor(g)``)."""
        if self.common is None:
            return {"stat": float("nan"), "df": (float("nan"), float("nan")), "p": float("nan"), "tau2": float("nan")}
        return {"stat": self.common.qm, "df": self.common.qm_df, "p": self.common.qm_p, "tau2": self.common.tau2}

    def to_frame(self) -> pd.DataFrame:
        rows = []
        for name, r in list(self.groups.items()) + [("overall", self.overall)]:
            rows.append(
                {
                    "group": name,
                    "k": r.k,
                    "estimate": r.estimate,
                    "se": r.se,
                    "ci_low": r.ci_low,
                    "ci_high": r.ci_high,
                    "pi_low": r.pi_low,
                    "pi_high": r.pi_high,
                    "tau2": r.tau2,
                    "i2": r.i2,
                    "q": r.q,
                    "q_p": r.q_p,
                }
            )
        return pd.DataFrame(rows)

    def __repr__(self) -> str:
        tc = self.test_common
        lines = [
            "Subgroup analysis",
            self.to_frame().to_string(index=False, float_format=lambda v: f"{v:.4f}"),
            "",
            f"Test for subgroup differences (separate tau^2): Q = {self.q_between:.4f}, df = {self.q_between_df:g},"
            f" p = {self.q_between_p:.4g}",
            f"Test for subgroup differences (common tau^2 = {tc['tau2']:.4f}): stat = {tc['stat']:.4f},"
            f" df = {tc['df']}, p = {tc['p']:.4g}",
            "",
            "Conventions: " + self.conventions.describe(),
        ]
        return "\n".join(lines)

    def _repr_html_(self) -> str:
        return (
            "<div>" + self.to_frame().to_html(index=False, float_format=lambda v: f"{v:.4f}")
            + f"<p>Subgroup differences (separate tau²): Q = {self.q_between:.3f}, df = {self.q_between_df:g}, "
            f"p = {self.q_between_p:.4g}</p>"
            + f"<p><small>{html.escape(self.conventions.describe())}</small></p></div>"
        )


def subgroup(
    yi,
    vi,
    groups: Sequence,
    *,
    method: str | None = None,
    test: str | None = None,
    level: float | None = None,
    adhoc: bool | None = None,
    pi_type: str | None = None,
    i2_type: str | None = None,
    preset: str | None = None,
    labels: Sequence[str] | None = None,
) -> SubgroupResult:
    """Pool within each subgroup and test for differences between subgroups.

    Returns a :class:`SubgroupResult` with the per-group ``PoolResult``s, the overall result, the test with
    separate tau^2 (``test_separate``) and with a common tau^2 (``test_common``).
    """
    conv = resolve(preset=preset, method=method, test=test, adhoc=adhoc, level=level, pi_type=pi_type,
                   i2_type=i2_type)
    y = np.asarray(yi, dtype=float)
    v = np.asarray(vi, dtype=float)
    g = pd.Series(list(groups), dtype="object")
    if len(g) != len(y) or len(v) != len(y):
        raise ValueError(f"yi ({len(y)}), vi ({len(v)}) and groups ({len(g)}) must have the same length")
    if g.isna().any():
        raise ValueError(f"groups has missing labels at rows {np.flatnonzero(g.isna())[:10].tolist()}")
    labs = list(labels) if labels is not None else [f"study {j + 1}" for j in range(len(y))]
    kw = dict(method=conv.method, test=conv.test, level=conv.level, adhoc=conv.adhoc if conv.test == "hksj" else None,
              pi_type=conv.pi_type, i2_type=conv.i2_type)
    levels = list(pd.unique(g))
    res = {}
    for lev in levels:
        idx = np.flatnonzero(g.to_numpy() == lev)
        res[str(lev)] = pool(y[idx], v[idx], labels=[labs[j] for j in idx], **kw)
    overall = pool(y, v, labels=labs, **kw)
    est = np.array([r.estimate for r in res.values()])
    se = np.array([r.se for r in res.values()])
    G = len(levels)
    if G >= 2:
        w = 1 / se**2
        mu = np.sum(w * est) / np.sum(w)
        qb = float(np.sum(w * (est - mu) ** 2))
        qb_df = float(G - 1)
        qb_p = float(stats.chi2.sf(qb, G - 1))
    else:
        qb, qb_df, qb_p = float("nan"), float("nan"), float("nan")
    common = None
    if G >= 2 and len(y) - G >= 1:
        common = meta_regression(
            y, v, pd.DataFrame({"group": pd.Categorical(g.astype(str), categories=[str(x) for x in levels])}),
            method=conv.method, test=conv.test, level=conv.level,
            adhoc=conv.adhoc if conv.test == "hksj" else None,
        )
    return SubgroupResult(groups=res, overall=overall, q_between=qb, q_between_df=qb_df, q_between_p=qb_p,
                          common=common, conventions=conv)

"""Binary outcomes (adverse events): Mantel-Haenszel, Peto and inverse-variance pooling of 2x2 tables, and
pooling of single proportions on the logit and Freeman-Tukey scales.

``pool_binary`` follows metafor 3.8 ``rma.mh`` (measure OR, RR, RD) and ``rma.peto``: the Mantel-Haenszel and
Peto estimates use the tables as they are (no zero-cell correction: a table with no events in either arm adds
nothing to an odds or risk ratio), while the per-study estimates shown beside them and the heterogeneity test
use ``escalc``'s correction (1/2 added to every cell of a table with a zero, tables with no events in both arms
dropped). Both are common-effect methods. ``random=True`` adds the random-effects estimate the way R's meta
package does: inverse-variance pooling of the corrected per-study estimates with a tau^2 estimator.

RevMan 5 handles 2x2 tables differently in five places; each is a named option of ``pool_binary`` and
``preset="revman5"`` sets them all (see :data:`BINARY_PRESETS`; checked against RevMan's stored results in
tests/reference/README.md): tables with no events in both groups are dropped for ratios only (a risk difference of
0 is kept); a risk difference is computed from the counts as they are, the 1/2 only entering its variance; the
Mantel-Haenszel OR and RR use the corrected tables (R meta's ``MH.exact = FALSE``); the Mantel-Haenszel risk
difference has the Greenland-Robins variance with corrected cells in its numerator; and the random-effects tau^2 is
DerSimonian-Laird's from the Q of the Mantel-Haenszel (or Peto) analysis (R meta's ``Q.Cochrane``).

``pool_proportions`` pools event proportions within one kind of arm (e.g. adverse events among people given
manual therapy) as metafor ``rma(measure="PLO" | "PFT")``, back-transformed to proportions (Freeman-Tukey
with the harmonic mean of the sample sizes, Miller 1978, as metafor's ``transf.ipft.hm``).

Sign convention: group 1 over (or minus) group 2, as in :func:`effect_size`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field, replace

import numpy as np
import pandas as pd
from scipy import stats

from .effects import effect_size
from .conventions import normalise_method
from .pooling import PoolResult, pool

__all__ = ["BinaryConventions", "BinaryPoolResult", "ProportionPoolResult", "pool_binary", "pool_proportions",
           "BINARY_METHODS", "BINARY_PRESETS"]

BINARY_METHODS = {
    "MH": "Mantel-Haenszel (common effect; Robins-Breslow-Greenland variance for OR, "
          "Greenland-Robins for RR, Sato-Greenland-Robins for RD)",
    "PETO": "Peto one-step odds ratio (common effect)",
    "IV": "inverse variance on the zero-cell-corrected per-study estimates",
}


#: The conventions of each preset (``pool_binary(preset=...)``); explicit arguments override single ones.
BINARY_PRESETS: dict[str, dict] = {
    "metafor": dict(drop00=True, rd_correction="cells", mh_add=False, rd_variance="sato", tau2_from="studies"),
    "revman5": dict(drop00="ratio", rd_correction="variance", mh_add=True, rd_variance="greenland_robins",
                    tau2_from="fixed_q", tau2_method="DL", test="z"),
}
_CHOICES = {"drop00": (True, False, "ratio"), "rd_correction": ("cells", "variance"), "mh_add": (True, False),
            "rd_variance": ("sato", "greenland_robins"), "tau2_from": ("studies", "fixed_q")}


@dataclass(frozen=True)
class BinaryConventions:
    """The 2x2-table conventions a pooled result depends on (see ``pool_binary``); printed with the result."""

    drop00: bool | str = True
    rd_correction: str = "cells"
    mh_add: bool = False
    rd_variance: str = "sato"
    tau2_from: str = "studies"
    add: float = 0.5
    to: str = "only0"
    preset: str | None = None

    def describe(self) -> str:
        drop = {True: "tables without events (or only events) in both groups dropped",
                False: "no table dropped", "ratio": "tables without events (or only events) in both groups "
                "dropped for OR and RR, kept for RD"}[self.drop00]
        parts = [f"zero cells: {self.add:g} added ({self.to})", drop,
                 "RD from the cells as corrected" if self.rd_correction == "cells"
                 else "RD from the counts as they are (correction in its variance only)",
                 "Mantel-Haenszel sums on the corrected tables" if self.mh_add
                 else "Mantel-Haenszel sums on the tables as they are",
                 "MH RD variance: " + ("Sato-Greenland-Robins" if self.rd_variance == "sato"
                                       else "Greenland-Robins"),
                 "random-effects tau^2: " + ("estimated from the per-study estimates" if self.tau2_from == "studies"
                                             else "DerSimonian-Laird from the Q of the MH/Peto analysis")]
        if self.preset:
            parts.insert(0, f"preset: {self.preset}")
        return "; ".join(parts)


def _binary_conventions(preset: str | None, given: dict) -> tuple[BinaryConventions, dict]:
    """The conventions from a preset (default metafor) with explicit arguments applied; also the preset's
    pooling arguments (tau2_method, test) not given explicitly."""
    key = "metafor" if preset is None else str(preset).strip().lower()
    if key not in BINARY_PRESETS:
        raise ValueError(f"unknown preset {preset!r}: accepted are {', '.join(BINARY_PRESETS)}")
    spec = dict(BINARY_PRESETS[key])
    extra = {k: spec.pop(k) for k in ("tau2_method", "test") if k in spec}
    for name, value in given.items():
        if value is None:
            continue
        if name in _CHOICES and value not in _CHOICES[name]:
            raise ValueError(f"unknown {name} {value!r}: accepted are {', '.join(map(repr, _CHOICES[name]))}")
        spec[name] = value
    return BinaryConventions(**spec, preset=preset if preset is None else key), extra


def _counts(name: str, x) -> np.ndarray:
    try:
        a = np.atleast_1d(np.asarray(x, dtype=float))
    except (TypeError, ValueError):
        raise TypeError(f"{name} must be numeric counts; got {x!r}") from None
    if a.ndim != 1:
        raise ValueError(f"{name} must be one-dimensional (one value per study)")
    if not np.all(np.isfinite(a)):
        raise ValueError(f"{name} has missing or infinite values at positions {np.flatnonzero(~np.isfinite(a))[:5].tolist()}")
    if np.any(a < 0) or np.any(a != np.round(a)):
        bad = np.flatnonzero((a < 0) | (a != np.round(a)))[:5].tolist()
        raise ValueError(f"{name} must be whole numbers >= 0; see positions {bad}")
    return a


def _tables(events1, n1, events2, n2) -> tuple[np.ndarray, ...]:
    a, n1_, c, n2_ = (_counts(nm, v) for nm, v in
                      (("events1", events1), ("n1", n1), ("events2", events2), ("n2", n2)))
    lengths = {len(a), len(n1_), len(c), len(n2_)}
    if len(lengths) != 1:
        raise ValueError(f"events1, n1, events2 and n2 must have one value per study; got lengths "
                         f"{len(a)}, {len(n1_)}, {len(c)}, {len(n2_)}")
    if len(a) == 0:
        raise ValueError("no studies given")
    for ev, n, lab in ((a, n1_, "1"), (c, n2_, "2")):
        bad = np.flatnonzero((ev > n) | (n < 1))
        if bad.size:
            raise ValueError(f"group {lab}: events must be between 0 and n, and n >= 1; see positions {bad[:5].tolist()}")
    return a, n1_ - a, c, n2_ - c


@dataclass(frozen=True)
class BinaryPoolResult:
    """A pooled 2x2-table meta-analysis. Ratio measures (OR, RR) are on the log scale in ``estimate``,
    ``ci_low``, ``ci_high``; ``ratio``, ``ratio_ci_low``, ``ratio_ci_high`` give them back-transformed."""

    measure: str
    method: str
    estimate: float
    se: float
    z: float
    p: float
    ci_low: float
    ci_high: float
    q: float
    q_df: float
    q_p: float
    i2: float
    h2: float
    k: int
    k_yi: int
    k_events: int
    level: float
    cmh: float = float("nan")
    cmh_p: float = float("nan")
    breslow_day: float = float("nan")
    breslow_day_p: float = float("nan")
    tarone: float = float("nan")
    tarone_p: float = float("nan")
    random: PoolResult | None = None
    studies: pd.DataFrame = field(repr=False, default_factory=pd.DataFrame)
    notes: tuple[str, ...] = ()
    conventions: BinaryConventions = field(default_factory=BinaryConventions)

    @property
    def is_ratio(self) -> bool:
        return self.measure in ("OR", "RR")

    def _back(self, x: float) -> float:
        return float(np.exp(x)) if self.is_ratio else float(x)

    @property
    def ratio(self) -> float:
        return self._back(self.estimate)

    @property
    def ratio_ci_low(self) -> float:
        return self._back(self.ci_low)

    @property
    def ratio_ci_high(self) -> float:
        return self._back(self.ci_high)

    def describe(self) -> str:
        return (f"{self.measure}, {BINARY_METHODS[self.method]}, {100 * self.level:g}% CI (z); "
                + self.conventions.describe())

    def __repr__(self) -> str:
        lvl = f"{100 * self.level:g}%"
        name = {"OR": "odds ratio", "RR": "risk ratio", "RD": "risk difference"}[self.measure]
        est = f"{self.ratio:.4f} ({lvl} CI {self.ratio_ci_low:.4f} to {self.ratio_ci_high:.4f})"
        lines = [f"{name}, {self.method} (k = {self.k}; {self.k_events} with events): {est}, p = {self.p:.4g}"]
        lines.append(f"Q({self.q_df:g}) = {self.q:.4f}, p = {self.q_p:.4g}; I^2 = {self.i2:.1f}%")
        if np.isfinite(self.cmh):
            lines.append(f"Cochran-Mantel-Haenszel = {self.cmh:.4f}, p = {self.cmh_p:.4g}")
        if np.isfinite(self.tarone):
            lines.append(f"Tarone's test for heterogeneity = {self.tarone:.4f}, p = {self.tarone_p:.4g}")
        if self.random is not None:
            r = self.random
            b = (np.exp if self.is_ratio else (lambda v: v))
            lines.append(f"random effects ({r.method}, {r.test_used}): {b(r.estimate):.4f} "
                         f"({lvl} CI {b(r.ci_low):.4f} to {b(r.ci_high):.4f}); tau^2 = {r.tau2:.4f}")
        lines.append("Conventions: " + self.describe())
        lines.extend("Note: " + n for n in self.notes)
        return "\n".join(lines)


def _z(level: float) -> float:
    return float(stats.norm.ppf(1 - (1 - level) / 2))


def _het(yi: np.ndarray, vi: np.ndarray, beta: float) -> tuple[float, float, float, float, float]:
    ok = np.isfinite(yi) & np.isfinite(vi)
    y, v = yi[ok], vi[ok]
    k = len(y)
    if k > 1 and np.isfinite(beta):
        q = max(0.0, float(np.sum((y - beta) ** 2 / v)))
        df = k - 1
        return q, df, float(stats.chi2.sf(q, df)), max(0.0, 100 * (q - df) / q) if q > 0 else 0.0, q / df
    return 0.0, max(k - 1, 0), 1.0, 0.0, 1.0


def _rd_greenland_robins_var(raw: tuple, num: tuple) -> float:
    """Variance of the Mantel-Haenszel risk difference (Greenland & Robins 1985): the sum of
    (a b n2^3 + c d n1^3) / (n1 n2 N^2) over the tables ``num`` (RevMan 5: zero-cell-corrected), divided by the
    squared sum of the weights n1 n2 / N of the tables ``raw`` (as they are; for a single table RevMan 5 uses
    the corrected one, giving the study's own variance)."""
    a, b, c, d = num
    n1, n2 = a + b, c + d
    N = n1 + n2
    ra, rb, rc, rd = raw
    W = np.sum((ra + rb) * (rc + rd) / (ra + rb + rc + rd))
    return float(np.sum((a * b * n2**3 + c * d * n1**3) / (n1 * n2 * N**2)) / W**2)


def _mh(measure: str, a, b, c, d, correct: bool) -> dict:
    n1, n2 = a + b, c + d
    N = n1 + n2
    out: dict = {}
    if measure == "OR":
        P, Q = (a + d) / N, (b + c) / N
        R_i, S_i = a * d / N, b * c / N
        R, S = R_i.sum(), S_i.sum()
        if R == 0 or S == 0:
            beta = se = np.nan
        else:
            beta = np.log(R / S)
            se = np.sqrt(0.5 * (np.sum(P * R_i) / R**2 + np.sum(P * S_i + Q * R_i) / (R * S) + np.sum(Q * S_i) / S**2))
        xt, yt = a + c, b + d
        if xt.sum() > 0 and yt.sum() > 0:
            num = (abs(np.sum(a - n1 / N * xt)) - (0.5 if correct else 0.0)) ** 2
            out["cmh"] = float(num / np.sum(n1 / N * n2 / N * xt * yt / (N - 1)))
            out["cmh_p"] = float(stats.chi2.sf(out["cmh"], 1))
        if np.isfinite(beta):
            psi = R / S
            if psi == 1:
                N11 = n1 / N * xt
            else:
                A = psi * (n1 + xt) + (n2 - xt)
                B = np.sqrt(A**2 - 4 * n1 * xt * psi * (psi - 1))
                N11 = (A - B) / (2 * (psi - 1))
            pos = (N11 > 0) & (xt > 0) & (yt > 0)
            N11 = N11[pos]
            N12, N21 = n1[pos] - N11, xt[pos] - N11
            N22 = N11 - n1[pos] - xt[pos] + N[pos]
            w = 1 / (1 / N11 + 1 / N12 + 1 / N21 + 1 / N22)
            bd = max(0.0, float(np.sum((a[pos] - N11) ** 2 / w)))
            ta = max(0.0, bd - float(np.sum(a[pos] - N11) ** 2 / np.sum(w)))
            kp = int(pos.sum())
            if kp > 1:
                out.update(breslow_day=bd, breslow_day_p=float(stats.chi2.sf(bd, kp - 1)),
                           tarone=ta, tarone_p=float(stats.chi2.sf(ta, kp - 1)))
    elif measure == "RR":
        R, S = np.sum(a * n2 / N), np.sum(c * n1 / N)
        if a.sum() == 0 or c.sum() == 0:
            beta = se = np.nan
        else:
            beta = np.log(R / S)
            se = np.sqrt(np.sum(n1 / N * n2 / N * (a + c) - a / N * c) / (R * S))
    else:  # RD
        W = np.sum(n1 * n2 / N)
        beta = np.sum(a * n2 / N - c * n1 / N) / W
        se = np.sqrt((beta * np.sum(c * (n1 / N) ** 2 - a * (n2 / N) ** 2 + n1 / N * n2 / N * (n2 - n1) / 2)
                      + np.sum(a * (n2 - c) / N + c * (n1 - a) / N) / 2) / W**2)
    out.update(beta=float(beta), se=float(se))
    return out


def _peto(a, b, c, d) -> dict:
    n1, n2 = a + b, c + d
    N = n1 + n2
    xt, yt = a + c, b + d
    E = xt * n1 / N
    with np.errstate(divide="ignore", invalid="ignore"):
        V = xt * yt * (n1 / N) * (n2 / N) / (N - 1)
    V = np.where(np.isfinite(V), V, 0.0)
    sv = V.sum()
    if sv == 0:
        raise ValueError("no table has both events and non-events: Peto's method cannot be used "
                         "(the outcome never occurred, or always occurred, in every table)")
    beta = float(np.sum(a - E) / sv)
    pos = V > 0
    q = max(0.0, float(np.sum((a[pos] - E[pos]) ** 2 / V[pos]) - np.sum(a - E) ** 2 / sv))
    return {"beta": beta, "se": float(np.sqrt(1 / sv)), "q": q, "k_pos": int(pos.sum())}


def pool_binary(
    measure: str,
    events1,
    n1,
    events2,
    n2,
    *,
    method: str = "MH",
    random: bool = False,
    tau2_method: str | None = None,
    test: str | None = None,
    level: float = 0.95,
    add: float = 0.5,
    to: str = "only0",
    drop00: bool | str | None = None,
    correct: bool = True,
    labels: Sequence[str] | None = None,
    preset: str | None = None,
    rd_correction: str | None = None,
    mh_add: bool | None = None,
    rd_variance: str | None = None,
    tau2_from: str | None = None,
) -> BinaryPoolResult:
    """Pool 2x2 tables: events and group sizes of group 1 and group 2, one value per study.

    Parameters
    ----------
    measure : {"OR", "RR", "RD"}
        Odds ratio, risk ratio or risk difference, group 1 against group 2. Peto is an odds ratio only.
    method : {"MH", "PETO", "IV"}
        Mantel-Haenszel (metafor ``rma.mh``), Peto (``rma.peto``) or inverse variance (``rma(method="FE")`` on
        ``escalc`` estimates). MH and Peto use no zero-cell correction for the pooled estimate.
    random : bool
        Also give the random-effects estimate: inverse variance with ``tau2_method`` and ``test`` on the
        corrected per-study estimates (Peto's per-study log odds ratios for ``method="PETO"``), as R's meta.
    add, to, drop00 : zero-cell correction of the per-study estimates (``escalc``): 1/2 added to tables with
        a zero cell; tables with no events (or only events) in both groups dropped from them.
    correct : continuity correction of the Cochran-Mantel-Haenszel test (MH, OR).
    labels : study labels.

    Validated against: metafor 3.8 ``rma.mh``, ``rma.peto``, ``rma.uni`` on ``escalc`` (tests/reference).
    """
    measure = measure.upper()
    method = method.upper()
    if measure not in ("OR", "RR", "RD"):
        raise ValueError(f"unknown measure {measure!r}: accepted are OR, RR, RD")
    if method not in BINARY_METHODS:
        raise ValueError(f"unknown method {method!r}: accepted are {', '.join(BINARY_METHODS)}")
    if method == "PETO" and measure != "OR":
        raise ValueError("Peto's method gives an odds ratio only: use measure='OR', or method='MH' for RR and RD")
    conv, extra_args = _binary_conventions(preset, dict(drop00=drop00, rd_correction=rd_correction, mh_add=mh_add,
                                                        rd_variance=rd_variance, tau2_from=tau2_from))
    conv = replace(conv, add=add, to=to)
    if tau2_method is None:
        tau2_method = extra_args.get("tau2_method", "REML")
    if test is None:
        test = extra_args.get("test", "z")
    if conv.tau2_from == "fixed_q" and random and normalise_method(tau2_method) != "DL":
        raise ValueError("tau2_from='fixed_q' gives DerSimonian-Laird's tau^2 from the Q of the MH or Peto analysis; "
                         f"use tau2_method='DL' (got {tau2_method!r}) or tau2_from='studies'")
    if measure == "RD" and method == "MH" and conv.mh_add and conv.rd_variance == "sato":
        raise ValueError("mh_add=True for a Mantel-Haenszel risk difference corrects its Greenland-Robins variance; "
                         "use rd_variance='greenland_robins' (or mh_add=False)")
    a, b, c, d = _tables(events1, n1, events2, n2)
    k = len(a)
    if labels is not None and len(labels) != k:
        raise ValueError(f"labels has {len(labels)} entries but there are {k} studies")
    es_measure = "PETO" if method == "PETO" else measure
    drop = conv.drop00 if conv.drop00 != "ratio" else measure != "RD"
    es = effect_size(es_measure, a=a, b=b, c=c, d=d, add=add, to=to, drop00=drop)
    yi, vi = es["yi"].to_numpy(), es["vi"].to_numpy()
    if measure == "RD" and conv.rd_correction == "variance":
        yi = np.where(np.isfinite(yi), a / (a + b) - c / (c + d), np.nan)
    double = ((a == 0) & (c == 0)) | ((b == 0) & (d == 0))
    notes: list[str] = []
    extra: dict = {}
    if method == "MH":
        if conv.mh_add and measure != "RD":
            keep = ~double if drop else np.ones(k, dtype=bool)
            corr = ((a == 0) | (b == 0) | (c == 0) | (d == 0)) if to == "only0" else np.ones(k, dtype=bool)
            if to == "if0all":
                corr = np.full(k, bool(corr[keep].any()))
            elif to == "none":
                corr = np.zeros(k, dtype=bool)
            cells = [np.where(corr, x + add, x)[keep] for x in (a, b, c, d)]
            r = _mh(measure, *cells, correct)
            extra = {key: v for key, v in _mh(measure, a, b, c, d, correct).items() if key not in ("beta", "se")}
        else:
            r = _mh(measure, a, b, c, d, correct)
        beta, se = r.pop("beta"), r.pop("se")
        if not extra:
            extra = r
        if measure == "RD" and conv.rd_variance == "greenland_robins":
            zero = (a == 0) | (b == 0) | (c == 0) | (d == 0)
            num = tuple(np.where(zero, x + add, x) for x in (a, b, c, d)) if conv.mh_add else (a, b, c, d)
            # one table: its own (corrected) variance, as RevMan 5 shows a single study's own result
            se = float(np.sqrt(_rd_greenland_robins_var(num if k == 1 else (a, b, c, d), num)))
        q, q_df, q_p, i2, h2 = _het(yi, vi, beta)
    elif method == "PETO":
        r = _peto(a, b, c, d)
        beta, se = r["beta"], r["se"]
        kyi = int(np.isfinite(yi).sum())
        q, q_df = r["q"], max(kyi - 1, 0)
        if r["k_pos"] > 1:
            q_p, i2, h2 = float(stats.chi2.sf(q, q_df)), max(0.0, 100 * (q - q_df) / q) if q > 0 else 0.0, q / q_df
        else:
            q_p, i2, h2 = 1.0, 0.0, 1.0
    else:
        ok = np.isfinite(yi)
        if not ok.any():
            raise ValueError("no study gives an estimate (every table has no events, or only events, in both groups)")
        fe = pool(yi[ok], vi[ok], method="FE", level=level)
        beta, se = fe.estimate, fe.se
        q, q_df, q_p, i2, h2 = fe.q, fe.q_df, fe.q_p, fe.i2, fe.h2
    if not np.isfinite(beta):
        notes.append("the pooled estimate is not defined: no events in one of the groups across all studies")
    zc = _z(level)
    zval = beta / se if np.isfinite(beta) and se > 0 else np.nan
    pval = float(2 * stats.norm.sf(abs(zval))) if np.isfinite(zval) else np.nan
    rand = None
    ok = np.isfinite(yi)
    if random:
        if ok.sum() == 0:
            notes.append("random effects not estimable: no study gives an estimate")
        else:
            lab = [labels[i] for i in np.flatnonzero(ok)] if labels is not None else None
            if conv.tau2_from == "fixed_q":
                w = 1 / vi[ok]
                denom = w.sum() - (w**2).sum() / w.sum()
                dfree = int(ok.sum()) - 1
                t2 = max(0.0, (q - dfree) / denom) if dfree > 0 and denom > 0 and np.isfinite(q) else 0.0
                rand = pool(yi[ok], vi[ok], method="DL", test=test, level=level, labels=lab, tau2=t2)
            else:
                rand = pool(yi[ok], vi[ok], method=tau2_method, test=test, level=level, labels=lab)
    dropped = int((~ok).sum())
    if dropped:
        notes.append(f"{dropped} table(s) without events (or with only events) in both groups give no per-study "
                     "estimate; they are kept in the Mantel-Haenszel sums, where they add nothing to a ratio"
                     if not (conv.mh_add and method == "MH") else
                     f"{dropped} table(s) without events (or with only events) in both groups give no estimate and "
                     "are left out")
    studies = pd.DataFrame({
        "study": list(labels) if labels is not None else [f"study {i + 1}" for i in range(k)],
        "events1": a, "n1": a + b, "events2": c, "n2": c + d, "yi": yi, "vi": vi,
        "ci_low": yi - zc * np.sqrt(vi), "ci_high": yi + zc * np.sqrt(vi),
        "zero_cell_corrected": es["zero_cell_corrected"].to_numpy() if "zero_cell_corrected" in es else False,
    })
    return BinaryPoolResult(
        measure=measure, method=method, estimate=float(beta), se=float(se), z=float(zval), p=pval,
        ci_low=float(beta - zc * se), ci_high=float(beta + zc * se), q=float(q), q_df=float(q_df),
        q_p=float(q_p), i2=float(i2), h2=float(h2), k=k, k_yi=int(ok.sum()),
        k_events=int(((a + c) > 0).sum()), level=level, random=rand, studies=studies, notes=tuple(notes),
        conventions=conv, **extra,
    )


# ---------------------------------------------------------------------------------------------- proportions


def ipft_hm(t, n_harmonic: float) -> np.ndarray:
    """Back-transform a Freeman-Tukey double arcsine value to a proportion (Miller 1978), with the harmonic
    mean of the sample sizes, as metafor's ``transf.ipft.hm``."""
    t = np.asarray(t, dtype=float)
    n = float(n_harmonic)
    with np.errstate(divide="ignore", invalid="ignore"):
        s = np.sin(2 * t)
        p = 0.5 * (1 - np.sign(np.cos(2 * t)) * np.sqrt(1 - (s + (s - 1 / s) / n) ** 2))
    lo = 0.5 * (np.arcsin(np.sqrt(0 / (n + 1))) + np.arcsin(np.sqrt(1 / (n + 1))))
    hi = 0.5 * (np.arcsin(np.sqrt(n / (n + 1))) + np.arcsin(np.sqrt((n + 1) / (n + 1))))
    p = np.where(np.isnan(p), np.nan, p)
    p = np.where(t > hi, 1.0, p)
    p = np.where(t < lo, 0.0, p)
    return p


@dataclass(frozen=True)
class ProportionPoolResult:
    """Pooled proportion: ``fit`` on the transformed scale, ``proportion`` and its intervals back-transformed."""

    measure: str
    fit: PoolResult
    proportion: float
    ci_low: float
    ci_high: float
    pi_low: float
    pi_high: float
    studies: pd.DataFrame = field(repr=False, default_factory=pd.DataFrame)

    def __repr__(self) -> str:
        name = {"PLO": "logit", "PFT": "Freeman-Tukey double arcsine (harmonic-mean back-transformation)"}[self.measure]
        lvl = f"{100 * self.fit.level:g}%"
        return (f"pooled proportion {self.proportion:.4f} ({lvl} CI {self.ci_low:.4f} to {self.ci_high:.4f}; "
                f"{lvl} PI {self.pi_low:.4f} to {self.pi_high:.4f}), k = {self.fit.k}, scale: {name}\n"
                + "Conventions: " + self.fit.conventions.describe())


def pool_proportions(events, n, *, measure: str = "PLO", method: str = "REML", test: str = "z",
                     level: float = 0.95, pi_type: str | None = None, add: float = 0.5, to: str = "only0",
                     labels: Sequence[str] | None = None) -> ProportionPoolResult:
    """Pool proportions (events / n), one per study, on the logit (``"PLO"``) or Freeman-Tukey (``"PFT"``) scale.

    The logit scale needs a zero-cell correction (``add`` to events and non-events of a study with 0 or n
    events); the Freeman-Tukey scale does not, and so keeps studies with no events at their weight.

    Validated against: metafor 3.8 ``rma(measure="PLO" | "PFT", xi, ni)`` with ``predict(transf=)``
    (tests/reference).
    """
    measure = measure.upper()
    x = _counts("events", events)
    nn = _counts("n", n)
    if len(x) != len(nn):
        raise ValueError(f"events and n must have one value per study; got {len(x)} and {len(nn)}")
    if np.any(x > nn) or np.any(nn < 1):
        raise ValueError("events must be between 0 and n, and n >= 1")
    es = effect_size(measure, x=x, n=nn, add=add, to=to)
    res = pool(es["yi"].to_numpy(), es["vi"].to_numpy(), method=method, test=test, level=level, pi_type=pi_type,
               labels=labels)
    if measure == "PLO":
        def back(v):
            return 1 / (1 + np.exp(-np.asarray(v, dtype=float)))
    else:
        nh = 1 / np.mean(1 / nn)

        def back(v):
            return ipft_hm(v, nh)
    vals = back([res.estimate, res.ci_low, res.ci_high, res.pi_low, res.pi_high])
    studies = pd.DataFrame({"study": list(res.labels), "events": x, "n": nn, "yi": es["yi"], "vi": es["vi"],
                            "proportion": x / nn})
    return ProportionPoolResult(measure, res, *(float(v) for v in vals), studies=studies)

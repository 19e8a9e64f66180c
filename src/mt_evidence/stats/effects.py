"""Effect sizes and the conversions back-pain trials need.

``effect_size`` follows metafor's ``escalc`` (same names: ``"MD"``, ``"SMD"``, ``"RR"``, ``"OR"``, ``"RD"``) and
returns a DataFrame with the inputs plus ``yi`` and ``vi``.

Sign convention: ``yi`` is group 1 minus group 2 (for ratios, log of group 1 over group 2). On outcomes where
lower is better (pain, disability), a negative MD/SMD favours group 1.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from scipy import special, stats

__all__ = [
    "effect_size",
    "hedges_correction",
    "sd_from_se",
    "sd_from_ci",
    "se_from_ci",
    "se_from_p",
    "sd_from_ci_difference",
    "mean_sd_from_median",
    "sd_change",
    "combine_arms",
    "rescale",
    "SMD_VTYPES",
]

SMD_VTYPES = ("LS", "UB", "LS2", "AV", "REVMAN")
_SMD_VTYPE_NOTES = {
    "LS": "metafor default: 1/n1 + 1/n2 + g^2 / (2 (n1 + n2))",
    "UB": "unbiased (Hedges 1983): 1/n1 + 1/n2 + (1 - (m - 2)/(m J^2)) g^2",
    "LS2": "J^2 (1/n1 + 1/n2 + d^2 / (2 (n1 + n2)))",
    "AV": "1/n1 + 1/n2 + gbar^2 / (2 (n1 + n2)), gbar the sample-size weighted mean g",
    "REVMAN": "RevMan 5: g with J = 1 - 3/(4N - 9); 1/n1 + 1/n2 + g^2 / (2 (N - 3.94))",
}


def _arr(name: str, x, n: int | None = None) -> np.ndarray:
    try:
        a = np.atleast_1d(np.asarray(x, dtype=float))
    except (TypeError, ValueError):
        raise TypeError(f"{name} must be numeric; got {x!r}") from None
    return a


def _broadcast(**cols) -> dict[str, np.ndarray]:
    arrays = {k: _arr(k, v) for k, v in cols.items()}
    lengths = {k: len(v) for k, v in arrays.items() if len(v) != 1}
    if len(set(lengths.values())) > 1:
        detail = ", ".join(f"{k}={n}" for k, n in lengths.items())
        raise ValueError(f"columns have different lengths ({detail}); give one value per study, or one for all")
    n = max([len(v) for v in arrays.values()] + [1])
    return {k: np.broadcast_to(v, (n,)).astype(float) for k, v in arrays.items()}


def hedges_correction(m) -> np.ndarray:
    """Exact small-sample correction J(m) = Gamma(m/2) / (sqrt(m/2) Gamma((m-1)/2)), m = n1 + n2 - 2.

    Validated against: metafor ``.cmicalc`` (NaN for m <= 1, as metafor).
    """
    m = np.asarray(m, dtype=float)
    with np.errstate(invalid="ignore", divide="ignore"):
        out = np.exp(special.gammaln(m / 2) - np.log(np.sqrt(m / 2)) - special.gammaln((m - 1) / 2))
    return np.where(m <= 1, np.nan, out)


def _require(cond: np.ndarray, message: str) -> None:
    if np.any(cond):
        idx = np.flatnonzero(cond)[:10].tolist()
        raise ValueError(f"{message} (rows {idx})")


def effect_size(measure: str, *, vtype: str | None = None, add: float = 0.5, to: str = "only0",
                drop00: bool = False, level: float = 0.95, log: bool = False, preset: str | None = None,
                **columns) -> pd.DataFrame:
    """Compute effect sizes ``yi`` and sampling variances ``vi``.

    Parameters
    ----------
    measure : {"MD", "SMD", "RR", "OR", "RD", "PETO", "PLO", "PFT", "GEN"}
        "MD"/"SMD" from ``m1, sd1, n1, m2, sd2, n2``; "RR"/"OR"/"RD"/"PETO" (Peto's log odds ratio) from a 2x2
        table ``a, b, c, d`` (events and non-events in group 1, then group 2); "PLO" (logit) and "PFT"
        (Freeman-Tukey double arcsine) of a single proportion from ``x`` events of ``n``; "GEN" (generic) from ``estimate`` with ``se``, or with
        ``ci_low, ci_high`` (at ``level``; ``log=True`` for ratios, which are then log-transformed), or with
        ``p`` (two-sided p-value, normal approximation).
    vtype : str
        SMD variance: "LS" (metafor default), "UB", "LS2", "AV", "REVMAN" (RevMan 5 formula, with its approximate
        J = 1 - 3/(4N - 9)). MD: "LS" (default, unequal variances) or "HO" (pooled SD).
        RD: "LS" (default) or "UB".
    preset : {"metafor", "revman", "revman5"}, optional
        The effect-size conventions of another tool when ``vtype`` is not given: "revman5" gives RevMan 5's SMD
        (``vtype="REVMAN"``), as ``pool(..., preset="revman5")`` gives its pooling; the others metafor's "LS".
    add, to, drop00 : zero-cell correction for RR/OR/RD as metafor's escalc: ``add`` (default 1/2) is added to
        every cell of the tables that have a zero cell (``to="only0"``), to all tables (``"all"``), to all tables
        if any has a zero (``"if0all"``), or never (``"none"``); ``drop00`` drops tables with no events or no
        non-events in both groups (yi = NaN).

    Returns
    -------
    DataFrame with the input columns plus ``yi``, ``vi`` (and ``measure``, ``vtype``).

    Validated against: metafor 3.8 ``escalc(measure, ...)`` (tests/reference).
    """
    measure = measure.upper()
    if preset is not None:
        key = str(preset).strip().lower()
        if key not in ("metafor", "revman", "revman5"):
            raise ValueError(f"unknown preset {preset!r}: accepted are metafor, revman, revman5")
        if vtype is None and measure == "SMD" and key == "revman5":
            vtype = "REVMAN"
    if measure in ("MD", "SMD"):
        return _continuous(measure, vtype, columns)
    if measure in ("RR", "OR", "RD", "PETO"):
        return _binary(measure, vtype, add, to, drop00, columns)
    if measure in ("PLO", "PFT"):
        return _proportion(measure, add, to, columns)
    if measure in ("GEN", "GENERIC"):
        return _generic(columns, level=level, log=log)
    raise ValueError(f"unknown measure {measure!r}: accepted are MD, SMD, RR, OR, RD, PETO, PLO, PFT, GEN")


def _need(columns: dict, names: tuple[str, ...], measure: str) -> None:
    missing = [n for n in names if n not in columns]
    extra = [n for n in columns if n not in names]
    if missing:
        raise ValueError(f"measure {measure} needs columns {', '.join(names)}; missing: {', '.join(missing)}")
    if extra:
        raise ValueError(f"measure {measure} takes columns {', '.join(names)}; unexpected: {', '.join(extra)}")


def _continuous(measure: str, vtype: str | None, columns: dict) -> pd.DataFrame:
    names = ("m1", "sd1", "n1", "m2", "sd2", "n2")
    _need(columns, names, measure)
    c = _broadcast(**{k: columns[k] for k in names})
    m1, sd1, n1, m2, sd2, n2 = (c[k] for k in names)
    _require((sd1 < 0) | (sd2 < 0), "standard deviations must be >= 0")
    _require((n1 <= 0) | (n2 <= 0), "group sizes must be > 0")
    N = n1 + n2
    mi = N - 2
    sdp = np.sqrt(((n1 - 1) * sd1**2 + (n2 - 1) * sd2**2) / mi)
    if measure == "MD":
        vt = (vtype or "LS").upper()
        yi = m1 - m2
        if vt in ("LS", "UB"):
            vi = sd1**2 / n1 + sd2**2 / n2
        elif vt == "HO":
            vi = sdp**2 * (1 / n1 + 1 / n2)
        else:
            raise ValueError(f"unknown vtype {vtype!r} for MD: accepted are LS, HO")
    else:
        vt = (vtype or "LS").upper()
        if vt not in SMD_VTYPES:
            raise ValueError(f"unknown vtype {vtype!r} for SMD: accepted are {', '.join(SMD_VTYPES)}")
        _require(sdp <= 0, "pooled SD must be > 0 for SMD")
        d = (m1 - m2) / sdp
        if vt == "REVMAN":
            J = 1 - 3 / (4 * N - 9)
            yi = J * d
            vi = 1 / n1 + 1 / n2 + yi**2 / (2 * (N - 3.94))
        else:
            J = hedges_correction(mi)
            yi = J * d
            if vt == "LS":
                vi = 1 / n1 + 1 / n2 + yi**2 / (2 * N)
            elif vt == "UB":
                vi = 1 / n1 + 1 / n2 + (1 - (mi - 2) / (mi * J**2)) * yi**2
            elif vt == "LS2":
                vi = J**2 * (1 / n1 + 1 / n2 + d**2 / (2 * N))
            else:  # AV
                ok = ~np.isnan(yi)
                gbar = np.sum(yi[ok] * N[ok]) / np.sum(N[ok])
                vi = 1 / n1 + 1 / n2 + gbar**2 / (2 * N)
    out = pd.DataFrame({k: c[k] for k in names})
    out["yi"] = yi
    out["vi"] = vi
    out["measure"] = measure
    out["vtype"] = vt
    return out


def _binary(measure: str, vtype: str | None, add: float, to: str, drop00: bool, columns: dict) -> pd.DataFrame:
    names = ("a", "b", "c", "d")
    _need(columns, names, measure)
    cols = _broadcast(**{k: columns[k] for k in names})
    a, b, c, d = (cols[k].copy() for k in names)
    _require((a < 0) | (b < 0) | (c < 0) | (d < 0), "cell counts must be >= 0")
    if to not in ("only0", "all", "if0all", "none"):
        raise ValueError(f"unknown 'to' {to!r}: accepted are only0, all, if0all, none")
    if drop00:
        both = ((a == 0) & (c == 0)) | ((b == 0) & (d == 0))
        a[both] = b[both] = c[both] = d[both] = np.nan
    zero = (a == 0) | (b == 0) | (c == 0) | (d == 0)
    if to == "all":
        corr = np.ones_like(a, dtype=bool)
    elif to == "only0":
        corr = zero
    elif to == "if0all":
        corr = np.full_like(a, zero.any(), dtype=bool)
    else:
        corr = np.zeros_like(a, dtype=bool)
    a, b, c, d = (np.where(corr, x + add, x) for x in (a, b, c, d))
    n1, n2 = a + b, c + d
    p1, p2 = a / n1, c / n2
    with np.errstate(divide="ignore", invalid="ignore"):
        if measure == "PETO":
            N = n1 + n2
            xt, yt = a + c, b + d
            V = xt * yt * (n1 / N) * (n2 / N) / (N - 1)
            yi = (a - xt * n1 / N) / V
            vi = 1 / V
            vt = "LS"
        elif measure == "RR":
            yi = np.log(p1) - np.log(p2)
            vi = 1 / a - 1 / n1 + 1 / c - 1 / n2
            vt = "LS"
        elif measure == "OR":
            yi = np.log(p1 / (1 - p1)) - np.log(p2 / (1 - p2))
            vi = 1 / a + 1 / b + 1 / c + 1 / d
            vt = "LS"
        else:
            yi = p1 - p2
            vt = (vtype or "LS").upper()
            if vt == "LS":
                vi = p1 * (1 - p1) / n1 + p2 * (1 - p2) / n2
            elif vt == "UB":
                vi = p1 * (1 - p1) / (n1 - 1) + p2 * (1 - p2) / (n2 - 1)
            else:
                raise ValueError(f"unknown vtype {vtype!r} for RD: accepted are LS, UB")
    bad = ~np.isfinite(yi) | ~np.isfinite(vi)
    yi = np.where(bad, np.nan, yi)  # as metafor: a log of zero is missing, not infinite
    vi = np.where(bad, np.nan, vi)
    out = pd.DataFrame({k: cols[k] for k in names})
    out["yi"] = yi
    out["vi"] = vi
    out["measure"] = measure
    out["vtype"] = vt
    out["zero_cell_corrected"] = corr
    return out


def _proportion(measure: str, add: float, to: str, columns: dict) -> pd.DataFrame:
    names = ("x", "n")
    _need(columns, names, measure)
    cols = _broadcast(**{k: columns[k] for k in names})
    x, n = cols["x"].copy(), cols["n"].copy()
    _require((x < 0) | (n <= 0) | (x > n), "events x must be between 0 and n, and n > 0")
    if to not in ("only0", "all", "if0all", "none"):
        raise ValueError(f"unknown 'to' {to!r}: accepted are only0, all, if0all, none")
    corr = np.zeros_like(x, dtype=bool)
    with np.errstate(divide="ignore", invalid="ignore"):
        if measure == "PLO":
            edge = (x == 0) | (x == n)
            corr = {"all": np.ones_like(edge), "only0": edge, "if0all": np.full_like(edge, edge.any()),
                    "none": np.zeros_like(edge)}[to]
            xc = np.where(corr, x + add, x)
            nc = np.where(corr, n + 2 * add, n)
            yi = np.log(xc / (nc - xc))
            vi = 1 / xc + 1 / (nc - xc)
        else:  # PFT needs no correction
            yi = 0.5 * (np.arcsin(np.sqrt(x / (n + 1))) + np.arcsin(np.sqrt((x + 1) / (n + 1))))
            vi = 1 / (4 * n + 2)
    bad = ~np.isfinite(yi) | ~np.isfinite(vi)
    out = pd.DataFrame({"x": cols["x"], "n": cols["n"]})
    out["yi"] = np.where(bad, np.nan, yi)
    out["vi"] = np.where(bad, np.nan, vi)
    out["measure"] = measure
    out["vtype"] = "LS"
    out["zero_cell_corrected"] = corr
    return out


def _generic(columns: dict, *, level: float, log: bool) -> pd.DataFrame:
    if "estimate" not in columns:
        raise ValueError("measure GEN needs 'estimate' plus one of: se; ci_low and ci_high; p")
    allowed = {"estimate", "se", "ci_low", "ci_high", "p"}
    extra = set(columns) - allowed
    if extra:
        raise ValueError(f"measure GEN takes {', '.join(sorted(allowed))}; unexpected: {', '.join(sorted(extra))}")
    c = _broadcast(**columns)
    est = c["estimate"]
    if log:
        _require(est <= 0, "ratio estimates must be > 0 when log=True")
        yi = np.log(est)
    else:
        yi = est.copy()
    if "se" in c:
        _require(c["se"] <= 0, "standard errors must be > 0")
        se = c["se"]
        source = "se"
    elif "ci_low" in c and "ci_high" in c:
        lo, hi = c["ci_low"], c["ci_high"]
        _require(lo >= hi, "ci_low must be below ci_high")
        if log:
            _require((lo <= 0) | (hi <= 0), "ratio CI limits must be > 0 when log=True")
            lo, hi = np.log(lo), np.log(hi)
        _require((yi < lo) | (yi > hi), "the estimate must lie inside its CI")
        se = se_from_ci(lo, hi, level=level)
        source = "ci"
    elif "p" in c:
        _require((c["p"] <= 0) | (c["p"] >= 1), "p-values must be in (0, 1)")
        se = se_from_p(yi, c["p"])
        source = "p"
    else:
        raise ValueError("measure GEN needs one of: se; ci_low and ci_high; p")
    out = pd.DataFrame(c)
    out["yi"] = yi
    out["vi"] = se**2
    out["measure"] = "GEN"
    out["vtype"] = f"from_{source}"
    return out


# ------------------------------------------------------------------------------------------ conversions


def sd_from_se(se, n) -> np.ndarray:
    """SD of a group mean from its standard error: SD = SE * sqrt(n) (Cochrane Handbook 6.5.2.2)."""
    se, n = np.asarray(se, float), np.asarray(n, float)
    return se * np.sqrt(n)


def _quantile(level: float, df, dist: str) -> np.ndarray:
    alpha = 1 - level
    if dist == "z":
        return np.full(np.shape(df), stats.norm.ppf(1 - alpha / 2)) if np.ndim(df) else stats.norm.ppf(1 - alpha / 2)
    if dist == "t":
        return stats.t.ppf(1 - alpha / 2, df)
    raise ValueError(f"dist must be 'z', 't' or 'auto'; got {dist!r}")


def se_from_ci(ci_low, ci_high, *, level: float = 0.95, df=None) -> np.ndarray:
    """SE from a symmetric CI: (upper - lower) / (2 q), q the normal quantile, or t with ``df`` if given."""
    lo, hi = np.asarray(ci_low, float), np.asarray(ci_high, float)
    q = stats.norm.ppf(1 - (1 - level) / 2) if df is None else stats.t.ppf(1 - (1 - level) / 2, df)
    return (hi - lo) / (2 * q)


def sd_from_ci(ci_low, ci_high, n, *, level: float = 0.95, dist: str = "auto") -> np.ndarray:
    """SD of a group from the CI of its mean (Cochrane Handbook 6.5.2.2).

    SD = sqrt(n) (upper - lower) / (2 q), with q from the t distribution with n - 1 df when ``dist="t"``, the
    normal when ``"z"``; ``"auto"`` uses t for n < 60 and z otherwise, as the Handbook advises for small groups.
    """
    lo, hi, n = np.asarray(ci_low, float), np.asarray(ci_high, float), np.asarray(n, float)
    if dist == "auto":
        q = np.where(n < 60, stats.t.ppf(1 - (1 - level) / 2, n - 1), stats.norm.ppf(1 - (1 - level) / 2))
    else:
        q = _quantile(level, n - 1, dist)
    return np.sqrt(n) * (hi - lo) / (2 * q)


def sd_from_ci_difference(ci_low, ci_high, n1, n2, *, level: float = 0.95, dist: str = "auto") -> np.ndarray:
    """Common within-group SD from the CI of a difference in means (Cochrane Handbook 6.5.2.3).

    SE = (upper - lower) / (2 q), q from t with n1 + n2 - 2 df (``"t"``, default for n1 + n2 < 60 under
    ``"auto"``) or the normal; SD = SE / sqrt(1/n1 + 1/n2).
    """
    lo, hi = np.asarray(ci_low, float), np.asarray(ci_high, float)
    n1, n2 = np.asarray(n1, float), np.asarray(n2, float)
    df = n1 + n2 - 2
    if dist == "auto":
        q = np.where(n1 + n2 < 60, stats.t.ppf(1 - (1 - level) / 2, df), stats.norm.ppf(1 - (1 - level) / 2))
    else:
        q = _quantile(level, df, dist)
    se = (hi - lo) / (2 * q)
    return se / np.sqrt(1 / n1 + 1 / n2)


def se_from_p(estimate, p) -> np.ndarray:
    """SE from a two-sided p-value of a normal test: |estimate| / z_(1 - p/2) (Cochrane Handbook 6.3.2)."""
    est, p = np.asarray(estimate, float), np.asarray(p, float)
    return np.abs(est) / stats.norm.isf(p / 2)


def mean_sd_from_median(n, *, median, q1=None, q3=None, min=None, max=None, method: str = "luo_shi"):
    """Estimate mean and SD from a median with IQR and/or range.

    Scenarios: S1 = {min, median, max}; S2 = {min, q1, median, q3, max}; S3 = {q1, median, q3}.

    method="wan": Wan et al. 2014 (BMC Med Res Methodol 14:135) for both mean and SD.
    method="luo_shi" (default): means by Luo et al. 2018 (Stat Methods Med Res 27:1785), SDs by Wan 2014 for
    S1 and S3 and by Shi et al. 2020 (Res Synth Methods 11:641) for S2.

    Returns (mean, sd) arrays.
    """
    n = np.asarray(n, float)
    m = np.asarray(median, float)
    have_range = min is not None and max is not None
    have_iqr = q1 is not None and q3 is not None
    if not (have_range or have_iqr):
        raise ValueError("give q1 and q3, or min and max, or all four, with the median")
    if method not in ("wan", "luo_shi"):
        raise ValueError(f"method must be 'wan' or 'luo_shi'; got {method!r}")
    xi = 2 * stats.norm.ppf((n - 0.375) / (n + 0.25))
    eta = 2 * stats.norm.ppf((0.75 * n - 0.125) / (n + 0.25))
    if have_range and have_iqr:
        a, b = np.asarray(min, float), np.asarray(max, float)
        lo, hi = np.asarray(q1, float), np.asarray(q3, float)
        if method == "wan":
            mean = (a + 2 * lo + 2 * m + 2 * hi + b) / 8
            sd = (b - a) / (2 * xi) + (hi - lo) / (2 * eta)
        else:
            w1 = 2.2 / (2.2 + n**0.75)
            w2 = 0.7 - 0.72 / n**0.55
            mean = w1 * (a + b) / 2 + w2 * (lo + hi) / 2 + (1 - w1 - w2) * m
            w = 1 / (1 + 0.07 * n**0.6)
            sd = w * (b - a) / xi + (1 - w) * (hi - lo) / eta
    elif have_range:
        a, b = np.asarray(min, float), np.asarray(max, float)
        sd = (b - a) / xi
        if method == "wan":
            mean = (a + 2 * m + b) / 4
        else:
            w = 4 / (4 + n**0.75)
            mean = w * (a + b) / 2 + (1 - w) * m
    else:
        lo, hi = np.asarray(q1, float), np.asarray(q3, float)
        sd = (hi - lo) / eta
        if method == "wan":
            mean = (lo + m + hi) / 3
        else:
            w = 0.7 + 0.39 / n
            mean = w * (lo + hi) / 2 + (1 - w) * m
    return mean, sd


def sd_change(sd_baseline, sd_final, r) -> np.ndarray:
    """SD of change scores from baseline and follow-up SDs and their correlation r (Handbook 6.5.2.8).

    SD_change = sqrt(SD_b^2 + SD_f^2 - 2 r SD_b SD_f).
    """
    sb, sf, r = np.asarray(sd_baseline, float), np.asarray(sd_final, float), np.asarray(r, float)
    if np.any((r < -1) | (r > 1)):
        raise ValueError("correlation r must be in [-1, 1]")
    return np.sqrt(sb**2 + sf**2 - 2 * r * sb * sf)


def combine_arms(n1, m1, sd1, n2, m2, sd2) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Combine two groups into one (Cochrane Handbook Table 6.5.a): returns (n, mean, sd).

    N = n1 + n2; M = (n1 m1 + n2 m2)/N;
    SD = sqrt(((n1 - 1) sd1^2 + (n2 - 1) sd2^2 + n1 n2 / N (m1 - m2)^2) / (N - 1)).
    """
    n1, m1, sd1, n2, m2, sd2 = (np.asarray(x, float) for x in (n1, m1, sd1, n2, m2, sd2))
    N = n1 + n2
    M = (n1 * m1 + n2 * m2) / N
    SD = np.sqrt(((n1 - 1) * sd1**2 + (n2 - 1) * sd2**2 + n1 * n2 / N * (m1 - m2) ** 2) / (N - 1))
    return N, M, SD


def rescale(value, *, scale_min: float, scale_max: float, kind: str = "mean", reverse: bool = False,
            target: tuple[float, float] = (0.0, 100.0)):
    """Rescale an instrument to 0-100 (or ``target``).

    ``kind="mean"`` for a score (location and scale change); ``kind="spread"`` for SDs, SEs and mean
    differences (scale only). ``reverse=True`` flips the direction (so that higher becomes worse, or better);
    a flipped spread keeps its sign, a flipped difference changes sign (use ``kind="difference"``).
    """
    v = np.asarray(value, float)
    if scale_max <= scale_min:
        raise ValueError(f"scale_max ({scale_max}) must exceed scale_min ({scale_min})")
    f = (target[1] - target[0]) / (scale_max - scale_min)
    if kind == "mean":
        out = (v - scale_min) * f + target[0]
        return (target[1] + target[0]) - out if reverse else out
    if kind == "spread":
        return np.abs(v) * f if reverse else v * f
    if kind == "difference":
        return -v * f if reverse else v * f
    raise ValueError(f"kind must be 'mean', 'spread' or 'difference'; got {kind!r}")

"""Network meta-analysis: every trial at once, treatments as nodes (contrast-based, common between-trial variance).

The model (docs/methods.md section 16). Each trial contributes the differences of its arms against one arm of the
trial (its baseline: the network's reference when the trial has it, else the first of its treatments in the
network's order), with their sampling covariance (a multi-arm trial's differences share the baseline arm, so
they covary by the baseline arm's variance). Then ``y = X d + u + e``: ``d`` are the treatments' effects against
the reference, ``e ~ N(0, V)`` and ``u ~ N(0, tau^2 R)`` with one between-trial variance for every comparison and
R = 1 on the diagonal and 1/2 between two differences of one trial (the consistency model; metafor's
``rma.mv(yi, V, mods = X, random = ~ comp | study, rho = 1/2)``). tau^2 by REML (default), the generalised
method of moments (``"DL"``: Jackson, White & Riley 2012; DerSimonian-Laird for a single comparison) or 0
(``"FE"``). Wald z inference, as metafor and netmeta.

Also here: the league table of every pair, P-scores (Rücker & Schwarzer 2015), the network graph, the
design-by-treatment interaction test (Higgins 2012; common effect and random effects), node-splitting (direct
against indirect evidence per comparison, Dias 2010, by a separate parameter for the direct evidence) and the
additive component model (:func:`component_network_meta`, as netmeta's ``netcomb``).

Validated against metafor 3.8 ``rma.mv`` on metadat's dat.senn2013 and dat.hasselblad1998
(tests/reference/make_network_reference.R -> network_reference.json).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
from scipy import optimize, stats

__all__ = ["NetworkInputError", "NetworkResult", "ComponentNetworkResult", "network_meta", "component_network_meta",
           "P_SCORE_CAVEAT", "prepare_studies", "study_baseline", "gls"]

NETWORK_METHODS = ("REML", "DL", "FE")
METHOD_WORDS = {"REML": "restricted maximum likelihood", "DL": "method of moments (Jackson, White & Riley 2012)",
                "FE": "common effect (tau^2 = 0)"}
P_SCORE_CAVEAT = ("P-scores rank treatments by their estimated effects and the certainty of those estimates; they "
                  "ignore the size of the differences, and a treatment ranked first need not be importantly better "
                  "than the next (Rücker & Schwarzer 2015).")
ARM_MD = ("study", "treatment", "mean", "sd", "n")
ARM_GENERIC = ("study", "treatment", "estimate", "variance")
CONTRAST = ("study", "treat1", "treat2", "yi", "se")


class NetworkInputError(ValueError):
    """Every problem found in network input, each naming the study and what to do."""

    def __init__(self, problems: list[str]):
        self.problems = list(problems)
        super().__init__(f"{len(self.problems)} problem(s) in the network data:\n"
                         + "\n".join(f"  - {p}" for p in self.problems))


# ----------------------------------------------------------------------------------------------- input


@dataclass(frozen=True)
class _Study:
    """One trial as differences against its baseline: ``treats[0]`` is the baseline; ``y`` and ``V`` are the
    differences of ``treats[1:]`` against it."""

    name: str
    treats: tuple[str, ...]
    y: np.ndarray
    V: np.ndarray
    n: dict[str, float]

    def rebase(self, base: str) -> _Study:
        """The same trial with ``base`` as its baseline (a linear transformation of y and V)."""
        if base == self.treats[0]:
            return self
        i = self.treats.index(base) - 1  # position of ``base`` among the differences
        m = len(self.treats) - 1
        rows = [-np.eye(m)[i]]  # the old baseline against the new one: -y_i
        rows += [np.eye(m)[j] - np.eye(m)[i] for j in range(m) if j != i]  # y_j - y_i
        L = np.vstack(rows)
        new = (base, self.treats[0]) + tuple(t for t in self.treats[1:] if t != base)
        return _Study(self.name, new, L @ self.y, L @ self.V @ L.T, self.n)


def _num(df: pd.DataFrame, col: str, problems: list[str], *, positive: bool, label: str) -> np.ndarray:
    x = pd.to_numeric(df[col], errors="coerce").to_numpy(float)
    bad = ~np.isfinite(x) | ((x <= 0) if positive else np.zeros(len(x), bool))
    for i in np.flatnonzero(bad):
        problems.append(f"{label} row {i + 1} (study {df['study'].iloc[i]!r}), column {col!r}: found "
                        f"{df[col].iloc[i]!r}; expected a {'positive ' if positive else ''}number")
    return x


def _from_arms(df: pd.DataFrame, problems: list[str]) -> list[_Study]:
    generic = all(c in df.columns for c in ARM_GENERIC) and not all(c in df.columns for c in ARM_MD)
    if generic:
        est = _num(df, "estimate", problems, positive=False, label="arms")
        var = _num(df, "variance", problems, positive=True, label="arms")
        n = (pd.to_numeric(df["n"], errors="coerce").to_numpy(float) if "n" in df.columns
             else np.full(len(df), np.nan))
    else:
        est = _num(df, "mean", problems, positive=False, label="arms")
        sd = _num(df, "sd", problems, positive=True, label="arms")
        n = _num(df, "n", problems, positive=True, label="arms")
        var = sd**2 / n
    out = []
    for name, idx in df.groupby("study", sort=False).indices.items():
        treats = [str(t) for t in df["treatment"].iloc[idx]]
        dup = sorted({t for t in treats if treats.count(t) > 1})
        if dup:
            problems.append(f"study {name!r}: two or more arms of {', '.join(dup)}; combine them first (Cochrane "
                            "Handbook Table 6.5.a, mt_evidence.combine_arms) so each treatment appears once per study")
            continue
        if len(idx) < 2:
            problems.append(f"study {name!r} has a single arm ({treats[0]}); a network needs two or more treatments "
                            "per study: add its comparator arm or leave the study out")
            continue
        e, v = est[idx], var[idx]
        if not (np.isfinite(e).all() and np.isfinite(v).all()):
            continue
        out.append(_Study(str(name), tuple(treats), e[1:] - e[0], np.diag(v[1:]) + v[0],
                          {t: float(x) for t, x in zip(treats, n[idx])}))
    return out


def _from_contrasts(df: pd.DataFrame, problems: list[str], n: Mapping | None = None) -> list[_Study]:
    yi = _num(df, "yi", problems, positive=False, label="contrasts")
    se = _num(df, "se", problems, positive=True, label="contrasts")
    n1 = pd.to_numeric(df["n1"], errors="coerce").to_numpy(float) if "n1" in df.columns else None
    n2 = pd.to_numeric(df["n2"], errors="coerce").to_numpy(float) if "n2" in df.columns else None
    out = []
    for name, idx in df.groupby("study", sort=False).indices.items():
        t1 = [str(t) for t in df["treat1"].iloc[idx]]
        t2 = [str(t) for t in df["treat2"].iloc[idx]]
        if any(a == b for a, b in zip(t1, t2)):
            problems.append(f"study {name!r}: a contrast of a treatment with itself; each contrast compares two "
                            "different treatments")
            continue
        y, s = yi[idx], se[idx]
        if not (np.isfinite(y).all() and np.isfinite(s).all()):
            continue
        treats = list(dict.fromkeys(t2[:1] + t1 + t2))
        m = len(treats)
        nn: dict[str, float] = {}
        if n1 is not None and n2 is not None:
            for a, b, x1, x2 in zip(t1, t2, n1[idx], n2[idx]):
                nn.setdefault(a, x1)
                nn.setdefault(b, x2)
        if m == 2:
            if len(idx) > 1:
                problems.append(f"study {name!r}: {len(idx)} contrasts of the same two treatments; give one")
                continue
            sign = 1.0 if t2[0] == treats[0] else -1.0
            out.append(_Study(str(name), tuple(treats), np.array([sign * y[0]]), np.array([[s[0] ** 2]]), nn))
            continue
        pairs = {frozenset((a, b)) for a, b in zip(t1, t2)}
        need = m * (m - 1) // 2
        if len(pairs) != need or len(idx) != need:
            problems.append(f"study {name!r} has {m} treatments ({', '.join(treats)}) but {len(idx)} contrast(s); a "
                            f"multi-arm study given as contrasts needs all {need} pairwise contrasts (so that the "
                            "covariance between them can be recovered, as netmeta), or give its arm-level data")
            continue
        # arm variances from the pairwise variances (v_a + v_b = se_ab^2), least squares
        A = np.zeros((need, m))
        for r, (a, b) in enumerate(zip(t1, t2)):
            A[r, treats.index(a)] = A[r, treats.index(b)] = 1.0
        v, *_ = np.linalg.lstsq(A, s**2, rcond=None)
        # arm "effects" from the differences (theta_a - theta_b = y_ab), least squares with theta_base = 0
        D = np.zeros((need, m))
        for r, (a, b) in enumerate(zip(t1, t2)):
            D[r, treats.index(a)] += 1.0
            D[r, treats.index(b)] -= 1.0
        theta, *_ = np.linalg.lstsq(D[:, 1:], y, rcond=None)
        resid_y = y - D[:, 1:] @ theta
        resid_v = s**2 - A @ v
        scale = max(float(np.max(np.abs(y))), 1e-8)
        if np.max(np.abs(resid_y)) > 1e-4 * scale + 1e-8:
            problems.append(f"study {name!r}: its pairwise contrasts are not consistent (e.g. A-C is not A-B plus "
                            f"B-C; largest discrepancy {np.max(np.abs(resid_y)):.4g}); check the signs and the "
                            "treatment labels of its rows")
            continue
        if np.any(v <= 0) or np.max(np.abs(resid_v)) > 1e-4 * float(np.max(s**2)):
            problems.append(f"study {name!r}: its standard errors do not fit one variance per arm (the variance of "
                            "A-B must be the sum of the arms' variances); check its SEs")
            continue
        out.append(_Study(str(name), tuple(treats), theta, np.diag(v[1:]) + v[0], nn))
    return out


def _components_of_graph(studies: list[_Study]) -> list[set[str]]:
    parent: dict[str, str] = {}

    def find(x):
        while parent.setdefault(x, x) != x:
            parent[x] = parent[parent[x]]
            x = parent[x]
        return x

    for s in studies:
        for t in s.treats[1:]:
            parent[find(t)] = find(s.treats[0])
        find(s.treats[0])
    groups: dict[str, set[str]] = {}
    for t in parent:
        groups.setdefault(find(t), set()).add(t)
    return sorted(groups.values(), key=lambda g: (-len(g), sorted(g)))


def _prepare(data, contrasts, reference) -> tuple[list[_Study], list[str], str]:
    problems: list[str] = []
    studies: list[_Study] = []
    frames = [data] if contrasts is None else [data, contrasts]
    seen: set[str] = set()
    for df in frames:
        if df is None:
            continue
        if not isinstance(df, pd.DataFrame):
            raise TypeError("network data must be a pandas DataFrame")
        cols = set(df.columns)
        if set(CONTRAST) <= cols:
            new = _from_contrasts(df.reset_index(drop=True), problems)
        elif set(ARM_MD) <= cols or set(ARM_GENERIC) <= cols:
            new = _from_arms(df.reset_index(drop=True), problems)
        else:
            raise NetworkInputError([
                f"columns {sorted(cols)} are neither arms ({', '.join(ARM_MD)}; or {', '.join(ARM_GENERIC)}) nor "
                f"contrasts ({', '.join(CONTRAST)})"])
        for s in new:
            if s.name in seen:
                problems.append(f"study {s.name!r} is given both as arms and as contrasts; give it once")
            seen.add(s.name)
        studies += new
    if not studies and not problems:
        problems.append("no study with two or more treatments")
    treatments = sorted({t for s in studies for t in s.treats})
    if reference is None:
        reference = treatments[0] if treatments else ""
    elif studies and reference not in treatments:
        problems.append(f"reference {reference!r} is not a treatment of the network (treatments: "
                        f"{', '.join(treatments)})")
    groups = _components_of_graph(studies)
    if len(groups) > 1:
        parts = []
        for g in groups:
            names = sorted({s.name for s in studies if s.treats[0] in g})
            parts.append(f"{{{', '.join(sorted(g))}}} (studies {', '.join(names[:6])}{' ...' if len(names) > 6 else ''})")
        problems.append("the network is disconnected: " + "; ".join(parts) + ". Treatments in different parts "
                        "cannot be compared; analyse each part as its own network, or add a trial that links them")
    if problems:
        raise NetworkInputError(problems)
    return studies, treatments, reference


def prepare_studies(data, contrasts=None, reference=None) -> tuple[list[_Study], list[str], str]:
    """The checked input of a network: (studies as differences against their first arm, treatments, reference).
    Raises :class:`NetworkInputError` listing every problem (used by the network over time)."""
    return _prepare(data, contrasts, reference)


def study_baseline(study: _Study, order: list[str]) -> str:
    """The arm a study's differences are taken against: its first treatment in the network's order."""
    return _baseline(study, order)


# ------------------------------------------------------------------------------------------------ model


@dataclass(frozen=True)
class _Stacked:
    y: np.ndarray
    V: np.ndarray
    R: np.ndarray
    rows: pd.DataFrame  # study, treat, base


def _order(treatments: list[str], reference: str) -> list[str]:
    return [reference] + [t for t in treatments if t != reference]


def _baseline(s: _Study, order: list[str]) -> str:
    return min(s.treats, key=order.index)


def _stack(studies: list[_Study]) -> _Stacked:
    ys, Vs, Rs, rows = [], [], [], []
    for s in studies:
        m = len(s.treats) - 1
        ys.append(s.y)
        Vs.append(s.V)
        Rs.append(np.full((m, m), 0.5) + 0.5 * np.eye(m))
        rows += [(s.name, t, s.treats[0]) for t in s.treats[1:]]
    from scipy.linalg import block_diag

    return _Stacked(np.concatenate(ys), block_diag(*Vs), block_diag(*Rs),
                    pd.DataFrame(rows, columns=["study", "treat", "base"]))


def _design(rows: pd.DataFrame, columns: list[str]) -> np.ndarray:
    X = np.zeros((len(rows), len(columns)))
    pos = {t: j for j, t in enumerate(columns)}
    for i, (t, b) in enumerate(zip(rows["treat"], rows["base"])):
        if t in pos:
            X[i, pos[t]] += 1.0
        if b in pos:
            X[i, pos[b]] -= 1.0
    return X


def gls(y, S, X):
    """Generalised least squares: (coefficients, their covariance, the residual quadratic form, S^-1, X'S^-1X)."""
    Si = np.linalg.inv(S)
    XtSiX = X.T @ Si @ X
    A = np.linalg.inv(XtSiX)
    b = A @ X.T @ Si @ y
    r = y - X @ b
    return b, A, float(r @ Si @ r), Si, XtSiX


def _reml_ll(y, V, R, X, t2):
    S = V + t2 * R
    b, A, q, Si, XtSiX = gls(y, S, X)
    return -0.5 * (np.linalg.slogdet(S)[1] + np.linalg.slogdet(XtSiX)[1] + q)


def _tau2_reml(y, V, R, X) -> float:
    if len(y) - X.shape[1] < 1:
        return 0.0
    spread = float(np.var(y)) + float(np.max(np.diag(V)))
    ub = 10 * spread + 1e-8
    grid = np.concatenate([[0.0], ub * np.logspace(-8, 0, 60)])
    lls = np.array([_reml_ll(y, V, R, X, t) for t in grid])
    j = int(np.argmax(lls))
    lo, hi = grid[max(j - 1, 0)], grid[min(j + 1, len(grid) - 1)]
    res = optimize.minimize_scalar(lambda t: -_reml_ll(y, V, R, X, t), bounds=(lo, hi), method="bounded",
                                   options={"xatol": 1e-13 * max(hi, 1.0), "maxiter": 2000})
    t2 = float(res.x) if -res.fun >= lls[j] else float(grid[j])
    if _reml_ll(y, V, R, X, 0.0) >= _reml_ll(y, V, R, X, t2) - 1e-13:
        return 0.0
    return t2


def _q_fe(y, V, X) -> tuple[float, int]:
    _, _, q, _, _ = gls(y, V, X)
    return q, len(y) - X.shape[1]


def _tau2_mm(y, V, R, X) -> float:
    """Generalised method of moments: E[Q] = df + tau^2 tr(P R), P = W - W X (X'WX)^-1 X'W, W = V^-1."""
    W = np.linalg.inv(V)
    P = W - W @ X @ np.linalg.inv(X.T @ W @ X) @ X.T @ W
    q = float(y @ P @ y)
    df = len(y) - X.shape[1]
    denom = float(np.trace(P @ R))
    return max(0.0, (q - df) / denom) if df > 0 and denom > 0 else 0.0


def _tau2(method, y, V, R, X) -> float:
    if method == "FE":
        return 0.0
    if method == "DL":
        return _tau2_mm(y, V, R, X)
    return _tau2_reml(y, V, R, X)


def _check_method(method: str) -> str:
    m = str(method).upper()
    m = {"COMMON": "FE", "FIXED": "FE", "CE": "FE", "EE": "FE", "MM": "DL"}.get(m, m)
    if m not in NETWORK_METHODS:
        raise ValueError(f"method = {method!r}; expected one of {', '.join(NETWORK_METHODS)}")
    return m


# ----------------------------------------------------------------------------------------------- results


@dataclass(frozen=True)
class NetworkResult:
    """A fitted network meta-analysis (consistency model). Effects are of each treatment minus the reference."""

    treatments: tuple[str, ...]  # the reference first
    reference: str
    method: str
    tau2: float
    coef: np.ndarray = field(repr=False)  # effects of treatments[1:] against the reference
    vcov: np.ndarray = field(repr=False)
    q: float = np.nan  # heterogeneity/inconsistency statistic of the common-effect model
    df: int = 0
    level: float = 0.95
    k: int = 0  # studies
    n_contrasts: int = 0
    studies: tuple = field(default=(), repr=False)  # the _Study objects
    notes: tuple[str, ...] = ()

    # -- basic numbers
    @property
    def q_p(self) -> float:
        return float(stats.chi2.sf(self.q, self.df)) if self.df > 0 else np.nan

    @property
    def i2(self) -> float:
        """Higgins' I^2 from the common-effect Q, (Q - df)/Q truncated at 0 (as netmeta)."""
        return max(0.0, (self.q - self.df) / self.q) if self.df > 0 and self.q > 0 else 0.0

    def _crit(self) -> float:
        return float(stats.norm.ppf(1 - (1 - self.level) / 2))

    def _effect(self, a: str, b: str) -> tuple[float, float]:
        """(estimate, se) of treatment ``a`` minus treatment ``b``."""
        c = np.zeros(len(self.treatments) - 1)
        if a != self.reference:
            c[self.treatments.index(a) - 1] += 1
        if b != self.reference:
            c[self.treatments.index(b) - 1] -= 1
        return float(c @ self.coef), float(np.sqrt(max(c @ self.vcov @ c, 0.0)))

    @property
    def relative_effects(self) -> pd.DataFrame:
        """Each treatment against the reference: treatment, estimate, se, ci_low, ci_high, p."""
        z = self._crit()
        rows = []
        for t in self.treatments:
            if t == self.reference:
                rows.append({"treatment": t, "estimate": 0.0, "se": np.nan, "ci_low": np.nan, "ci_high": np.nan,
                             "p": np.nan})
                continue
            e, s = self._effect(t, self.reference)
            rows.append({"treatment": t, "estimate": e, "se": s, "ci_low": e - z * s, "ci_high": e + z * s,
                         "p": float(2 * stats.norm.sf(abs(e / s)))})
        return pd.DataFrame(rows)

    def pairs(self) -> pd.DataFrame:
        """Every pair (treat1 minus treat2): estimate, se, ci_low, ci_high, p."""
        z = self._crit()
        rows = []
        for i, a in enumerate(self.treatments):
            for b in self.treatments[i + 1:]:
                e, s = self._effect(a, b)
                rows.append({"treat1": a, "treat2": b, "estimate": e, "se": s, "ci_low": e - z * s,
                             "ci_high": e + z * s, "p": float(2 * stats.norm.sf(abs(e / s)))})
        return pd.DataFrame(rows)

    def league(self, digits: int = 1, order: list[str] | None = None) -> pd.DataFrame:
        """The league table: the cell in row A, column B is A minus B with its CI (treatments on the diagonal)."""
        order = order or list(self.treatments)
        z = self._crit()
        out = pd.DataFrame("", index=order, columns=order)
        for a in order:
            for b in order:
                if a == b:
                    out.loc[a, b] = a
                    continue
                e, s = self._effect(a, b)
                out.loc[a, b] = f"{e:.{digits}f} ({e - z * s:.{digits}f} to {e + z * s:.{digits}f})"
        return out

    def p_scores(self, small_values: str = "good") -> pd.Series:
        """P-scores (Rücker & Schwarzer 2015): the mean, over the other treatments, of the probability of being
        better. ``small_values="good"`` when lower is better (pain scores). Read with :data:`P_SCORE_CAVEAT`."""
        if small_values not in ("good", "bad"):
            raise ValueError("small_values must be 'good' or 'bad'")
        sign = -1.0 if small_values == "good" else 1.0
        out = {}
        for a in self.treatments:
            ps = []
            for b in self.treatments:
                if a == b:
                    continue
                e, s = self._effect(a, b)
                ps.append(float(stats.norm.cdf(sign * e / s)))
            out[a] = float(np.mean(ps))
        return pd.Series(out, name="p_score").sort_values(ascending=False)

    def graph(self) -> tuple[pd.DataFrame, pd.DataFrame]:
        """(nodes, edges): nodes with the number of studies and participants (where known) per treatment; edges
        with the number of studies comparing each pair directly."""
        nodes = {t: {"treatment": t, "studies": 0, "participants": 0.0, "participants_known": True}
                 for t in self.treatments}
        edges: dict[tuple[str, str], dict] = {}
        for s in self.studies:
            for t in s.treats:
                nodes[t]["studies"] += 1
                n = s.n.get(t, np.nan)
                if np.isfinite(n):
                    nodes[t]["participants"] += n
                else:
                    nodes[t]["participants_known"] = False
            for i, a in enumerate(s.treats):
                for b in s.treats[i + 1:]:
                    key = tuple(sorted((a, b), key=self.treatments.index))
                    e = edges.setdefault(key, {"treat1": key[0], "treat2": key[1], "studies": 0,
                                               "study_names": []})
                    e["studies"] += 1
                    e["study_names"].append(s.name)
        ed = pd.DataFrame(list(edges.values()), columns=["treat1", "treat2", "studies", "study_names"])
        ed["study_names"] = ed["study_names"].map(", ".join)
        return pd.DataFrame(list(nodes.values())), ed

    def describe(self) -> str:
        return (f"network meta-analysis, contrast-based, one between-trial variance for all comparisons (tau^2 by "
                f"{self.method}: {METHOD_WORDS[self.method]}); Wald z intervals, level {self.level:g}; reference "
                f"{self.reference}")

    def __repr__(self) -> str:
        re_ = self.relative_effects
        lines = [f"Network meta-analysis ({self.k} studies, {self.n_contrasts} contrasts, {len(self.treatments)} "
                 f"treatments; reference {self.reference})",
                 f"tau^2 = {self.tau2:.4f} ({self.method}); Q = {self.q:.4f} on {self.df} df (p = {self.q_p:.4g}); "
                 f"I^2 = {100 * self.i2:.1f}%", "",
                 re_.to_string(index=False, float_format=lambda v: f"{v:.4f}"), "", "Conventions: " + self.describe()]
        lines += [f"Note: {n}" for n in self.notes]
        return "\n".join(lines)

    # -- consistency
    def _stack(self):
        order = list(self.treatments)
        studies = [s.rebase(_baseline(s, order)) for s in self.studies]
        return studies, _stack(studies)

    def design_by_treatment(self) -> dict:
        """Design-by-treatment interaction test (Higgins 2012): the consistency model against a model giving
        every design (set of treatments compared in a study) its own effects.

        Common effect: Q of the consistency model = Q within designs + Q between designs (inconsistency), each on
        its df (netmeta's ``decomp.design``). Random effects: the Wald test of the inconsistency, with the
        between-trial variance of the design-by-treatment model (estimated by this result's method; 0 when that
        model leaves no degrees of freedom)."""
        studies, st = self._stack()
        cols = list(self.treatments[1:])
        X = _design(st.rows, cols)
        design = {s.name: ":".join(sorted(s.treats, key=self.treatments.index)) for s in studies}
        keys = [(design[s], t) for s, t in zip(st.rows["study"], st.rows["treat"])]
        uniq = list(dict.fromkeys(keys))
        Xf = np.zeros((len(keys), len(uniq)))
        for i, k in enumerate(keys):
            Xf[i, uniq.index(k)] = 1.0
        q_tot, df_tot = _q_fe(st.y, st.V, X)
        q_het, df_het = _q_fe(st.y, st.V, Xf)
        df_inc = df_tot - df_het
        q_inc = q_tot - q_het
        t2f = _tau2(self.method, st.y, st.V, st.R, Xf) if df_het > 0 else 0.0
        S = st.V + t2f * st.R
        _, _, q_c, _, _ = gls(st.y, S, X)
        _, _, q_f, _, _ = gls(st.y, S, Xf)
        wald = q_c - q_f
        sf = (lambda q, d: float(stats.chi2.sf(q, d)) if d > 0 else np.nan)
        return {"designs": len(set(design.values())),
                "q_total": q_tot, "df_total": df_tot, "p_total": sf(q_tot, df_tot),
                "q_within": q_het, "df_within": df_het, "p_within": sf(q_het, df_het),
                "q_inconsistency": q_inc, "df_inconsistency": df_inc, "p_inconsistency": sf(q_inc, df_inc),
                "tau2_design_by_treatment": t2f, "q_inconsistency_random": wald,
                "p_inconsistency_random": sf(wald, df_inc)}

    def node_split(self) -> pd.DataFrame:
        """Direct against indirect evidence for every pair compared directly (Dias 2010): the studies that
        compare A and B (A earlier in the network's order; multi-arm studies rebased on A) get a separate
        parameter for their A-B difference; its coefficient is direct minus indirect. The between-trial variance
        is re-estimated in each split model. Pairs with no indirect evidence are listed as such."""
        order = list(self.treatments)
        cols = order[1:]
        z = self._crit()
        out = []
        _, edges = self.graph()
        for e in edges.itertuples():
            a, b = e.treat1, e.treat2
            studies = [s.rebase(a) if (a in s.treats and b in s.treats) else s.rebase(_baseline(s, order))
                       for s in self.studies]
            st = _stack(studies)
            X = _design(st.rows, cols)
            ind = ((st.rows["base"] == a) & (st.rows["treat"] == b)).to_numpy(float)[:, None]
            Xs = np.hstack([X, ind])
            row = {"treat1": b, "treat2": a, "k_direct": int(e.studies), "studies": e.study_names}
            if np.linalg.matrix_rank(Xs) < Xs.shape[1] or len(st.y) - Xs.shape[1] < 0:
                row.update(direct=np.nan, direct_se=np.nan, indirect=np.nan, indirect_se=np.nan,
                           difference=np.nan, difference_se=np.nan, z=np.nan, p=np.nan, tau2=np.nan,
                           note="no indirect evidence: every path between the two treatments runs through these "
                                "studies")
                out.append(row)
                continue
            t2 = _tau2(self.method, st.y, st.V, st.R, Xs)
            beta, A, _, _, _ = gls(st.y, st.V + t2 * st.R, Xs)
            c = np.zeros(len(cols) + 1)
            if b != self.reference:
                c[cols.index(b)] += 1
            if a != self.reference:
                c[cols.index(a)] -= 1
            ind_est, ind_se = float(c @ beta), float(np.sqrt(c @ A @ c))
            cd = c.copy()
            cd[-1] = 1.0
            dir_est, dir_se = float(cd @ beta), float(np.sqrt(cd @ A @ cd))
            diff, diff_se = float(beta[-1]), float(np.sqrt(A[-1, -1]))
            zz = diff / diff_se
            row.update(direct=dir_est, direct_se=dir_se, indirect=ind_est, indirect_se=ind_se, difference=diff,
                       difference_se=diff_se, z=zz, p=float(2 * stats.norm.sf(abs(zz))), tau2=t2, note="")
            row.update(direct_ci_low=dir_est - z * dir_se, direct_ci_high=dir_est + z * dir_se,
                       indirect_ci_low=ind_est - z * ind_se, indirect_ci_high=ind_est + z * ind_se)
            out.append(row)
        cols_out = ["treat1", "treat2", "k_direct", "direct", "direct_se", "direct_ci_low", "direct_ci_high",
                    "indirect", "indirect_se", "indirect_ci_low", "indirect_ci_high", "difference", "difference_se",
                    "z", "p", "tau2", "studies", "note"]
        return pd.DataFrame(out).reindex(columns=cols_out)


def _fit(studies: list[_Study], treatments: list[str], reference: str, method: str, level: float,
         columns_matrix=None):
    order = _order(treatments, reference)
    studies = [s.rebase(_baseline(s, order)) for s in studies]
    st = _stack(studies)
    X = _design(st.rows, order[1:])
    if columns_matrix is not None:
        X = X @ columns_matrix
    if np.linalg.matrix_rank(X) < X.shape[1]:
        raise NetworkInputError(["the model's effects cannot all be estimated from these studies (the design is "
                                 "not of full rank); check that every treatment or component is linked to the "
                                 "reference"])
    t2 = _tau2(method, st.y, st.V, st.R, X)
    b, A, _, _, _ = gls(st.y, st.V + t2 * st.R, X)
    q, df = _q_fe(st.y, st.V, X)
    return order, studies, st, X, t2, b, A, q, df


def network_meta(data: pd.DataFrame, *, contrasts: pd.DataFrame | None = None, reference: str | None = None,
                 method: str = "REML", level: float = 0.95) -> NetworkResult:
    """Network meta-analysis of a tidy frame of arms or contrasts (see the module docstring for the model).

    ``data``: arms (``study, treatment, mean, sd, n``: mean differences; or ``study, treatment, estimate,
    variance``: any arm-level estimate such as a log odds) or contrasts (``study, treat1, treat2, yi, se``:
    treat1 minus treat2; optional ``n1, n2``). ``contrasts``: more studies given as contrasts, to combine
    arm-level and contrast-level data. A multi-arm study given as contrasts needs all its pairwise contrasts.
    ``reference``: the treatment every effect is against (default: the first in alphabetical order).
    ``method``: "REML" (default), "DL" (method of moments) or "FE".

    Every problem in the input (single-arm studies, a treatment twice in one study, an incomplete or inconsistent
    multi-arm study, a disconnected network, an unknown reference) is reported at once as
    :class:`NetworkInputError`, naming the studies and what to do.

    Validated against metafor 3.8 ``rma.mv(yi, V, mods = X, random = ~ comp | study, rho = 1/2)``.
    """
    method = _check_method(method)
    studies, treatments, reference = _prepare(data, contrasts, reference)
    order, studies, st, X, t2, b, A, q, df = _fit(studies, treatments, reference, method, level)
    notes = []
    counts = {t: sum(t in s.treats for s in studies) for t in order}
    single = [t for t, c in counts.items() if c == 1]
    if single:
        notes.append(f"{', '.join(single)} rest(s) on a single study")
    return NetworkResult(tuple(order), reference, method, t2, b, A, q, df, level, len(studies), len(st.y),
                         tuple(studies), tuple(notes))


# ------------------------------------------------------------------------------------ component model


@dataclass(frozen=True)
class ComponentNetworkResult:
    """The additive component model: each treatment's effect is the sum of its components' effects."""

    components: tuple[str, ...]
    mapping: dict[str, tuple[str, ...]]  # treatment -> its components (the inactive treatment: none)
    inactive: str
    method: str
    tau2: float
    coef: np.ndarray = field(repr=False)
    vcov: np.ndarray = field(repr=False)
    q: float = np.nan
    df: int = 0
    level: float = 0.95
    k: int = 0
    standard: NetworkResult | None = field(default=None, repr=False)

    def _crit(self) -> float:
        return float(stats.norm.ppf(1 - (1 - self.level) / 2))

    @property
    def component_effects(self) -> pd.DataFrame:
        """component, estimate, se, ci_low, ci_high, p (each against the inactive treatment)."""
        z = self._crit()
        se = np.sqrt(np.diag(self.vcov))
        return pd.DataFrame({"component": list(self.components), "estimate": self.coef, "se": se,
                             "ci_low": self.coef - z * se, "ci_high": self.coef + z * se,
                             "p": 2 * stats.norm.sf(np.abs(self.coef / se))})

    @property
    def treatment_effects(self) -> pd.DataFrame:
        """Each treatment against the inactive one under the additive model."""
        z = self._crit()
        rows = []
        for t, comps in self.mapping.items():
            c = np.array([1.0 if x in comps else 0.0 for x in self.components])
            e, s = float(c @ self.coef), float(np.sqrt(c @ self.vcov @ c))
            rows.append({"treatment": t, "components": " + ".join(comps) or "(inactive)", "estimate": e, "se": s,
                         "ci_low": e - z * s if s > 0 else np.nan, "ci_high": e + z * s if s > 0 else np.nan})
        return pd.DataFrame(rows)

    @property
    def additivity(self) -> dict:
        """The additive model against the standard network model (common-effect Q difference, as netmeta's
        ``netcomb``): a small p says the treatments' effects are not the sums of their components' effects."""
        s = self.standard
        dq, ddf = self.q - s.q, self.df - s.df
        return {"q_additive": self.q, "df_additive": self.df, "q_standard": s.q, "df_standard": s.df,
                "q_diff": dq, "df_diff": ddf, "p": float(stats.chi2.sf(dq, ddf)) if ddf > 0 else np.nan}

    def describe(self) -> str:
        return (f"additive component network meta-analysis (tau^2 by {self.method}: {METHOD_WORDS[self.method]}); "
                f"components against {self.inactive}; Wald z intervals, level {self.level:g}")

    def __repr__(self) -> str:
        a = self.additivity
        return (f"Additive component network meta-analysis ({self.k} studies; tau^2 = {self.tau2:.4f}, "
                f"{self.method})\n" + self.component_effects.to_string(index=False, float_format=lambda v: f"{v:.4f}")
                + f"\nAdditivity: Q difference {a['q_diff']:.4f} on {a['df_diff']} df, p = {a['p']:.4g}\n"
                + "Conventions: " + self.describe())


def component_network_meta(data: pd.DataFrame, components: Mapping[str, list[str]], *,
                           contrasts: pd.DataFrame | None = None, reference: str | None = None,
                           inactive: str | None = None, method: str = "REML",
                           level: float = 0.95) -> ComponentNetworkResult:
    """Additive component network meta-analysis (Welton 2009; netmeta's ``netcomb``).

    ``components`` maps a treatment to its components (``{"combined": ["manual_therapy", "exercise"]}``); a
    treatment not named is its own single component; the ``inactive`` treatment (default: ``reference``, e.g.
    usual care) has none, so every component's effect is against it. ``additivity`` compares the additive model
    with the standard network model on the same data.

    Validated against metafor 3.8 ``rma.mv`` with the component design matrix as moderators.
    """
    method = _check_method(method)
    studies, treatments, reference = _prepare(data, contrasts, reference)
    inactive = inactive or reference
    if inactive not in treatments:
        raise NetworkInputError([f"inactive treatment {inactive!r} is not in the network"])
    unknown = [t for t in components if t not in treatments]
    if unknown:
        raise NetworkInputError([f"components given for {', '.join(unknown)}, which is not a treatment of the "
                                 f"network (treatments: {', '.join(treatments)})"])
    mapping = {t: tuple(components.get(t, [t])) if t != inactive else () for t in treatments}
    comps = list(dict.fromkeys(c for t in treatments for c in mapping[t]))
    order = _order(treatments, reference)
    C = np.zeros((len(order), len(comps)))
    for i, t in enumerate(order):
        for c in mapping[t]:
            C[i, comps.index(c)] = 1.0
    # the full treatment design (every treatment a column) times C: the reference column is kept here
    order, studies2, st, _, _, _, _, _, _ = _fit(studies, treatments, reference, "FE", level)
    Xfull = _design(st.rows, order)
    X = Xfull @ C
    if np.linalg.matrix_rank(X) < X.shape[1]:
        raise NetworkInputError(["the components' effects cannot all be estimated: some component never varies "
                                 "between the arms of a study; check the component mapping"])
    t2 = _tau2(method, st.y, st.V, st.R, X)
    b, A, _, _, _ = gls(st.y, st.V + t2 * st.R, X)
    q, df = _q_fe(st.y, st.V, X)
    standard = network_meta(data, contrasts=contrasts, reference=reference, method=method, level=level)
    return ComponentNetworkResult(tuple(comps), {t: mapping[t] for t in order}, inactive, method, t2, b, A, q, df,
                                  level, len(studies2), standard)

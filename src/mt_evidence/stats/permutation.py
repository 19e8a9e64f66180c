"""Permutation tests for a pooled effect and for meta-regression coefficients (metafor ``permutest``).

Without moderators, the test flips the signs of the effects (under H0: mu = 0 each sign is equally likely);
with moderators, it permutes the rows of the moderator matrix against the effects (under H0 of no association).
Every permuted data set is refitted with the same model, all at once by the batch engine, and the p-value is the
share of permuted test statistics at least as extreme as the observed one.

Validated against metafor 3.8 ``permutest`` (tests/reference/make_robust_reference.R -> robust_reference.json).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
from scipy import stats

from .printing import PrintedResult, WithConventions, format_p
from . import engine
from .bias import check_studies
from .conventions import Conventions, resolve
from .progress import progress_reporter
from .regression import design_matrix

__all__ = ["PermutationResult", "permutation_test", "MAX_EXACT"]

MAX_EXACT = 10**7  # more distinct permutations than this are refused for an exact test
_COMPTOL = float(np.sqrt(np.finfo(float).eps))  # metafor's comptol: ties within this count as "as extreme"
_ALTERNATIVES = {"two-sided": "|stat_perm| >= |stat| - tol", "greater": "stat_perm >= stat - tol",
                 "less": "stat_perm <= stat + tol"}


@dataclass(frozen=True, repr=False)
class PermutationResult(PrintedResult, WithConventions):
    """Permutation p-values next to the model's asymptotic ones.

    ``coefficients`` (one row per term): estimate, se, stat, p (asymptotic), p_perm. ``qm`` is the omnibus test of
    the coefficients in ``btt`` (Wald chi-square, or F under t/Knapp-Hartung) with its asymptotic ``qm_p`` and
    permutation ``qm_p_perm``. ``exact`` tells whether every distinct permutation (``n_exact`` of them) was used,
    else ``n_perm`` random ones (the first being the observed data, as metafor) drawn with ``seed``.
    ``stat_perm``, ``beta_perm`` and ``qm_perm`` hold the permutation distributions.
    """

    coefficients: pd.DataFrame
    qm: float
    qm_df: tuple[float, float]
    qm_p: float
    qm_p_perm: float
    btt: tuple[int, ...]
    k: int
    n_perm: int
    n_exact: int
    exact: bool
    kind: str
    seed: int | None
    alternative: str
    tol: float
    conventions: Conventions
    stat_perm: np.ndarray = field(repr=False)
    beta_perm: np.ndarray = field(repr=False)
    qm_perm: np.ndarray = field(repr=False)

    def to_frame(self) -> pd.DataFrame:
        """The coefficient table plus a row for the omnibus test (term ``QM``)."""
        c = self.coefficients.reset_index()
        qm = pd.DataFrame({"term": ["QM"], "estimate": [np.nan], "se": [np.nan], "stat": [self.qm],
                           "p": [self.qm_p], "p_perm": [self.qm_p_perm]})
        out = pd.concat([c, qm], ignore_index=True)
        out["n_perm"], out["exact"], out["method"], out["test"] = self.n_perm, self.exact, self.method, self.test
        return out

    def _lines(self) -> list[str]:
        how = (f"exact: all {self.n_perm} distinct {self.kind}" if self.exact
               else f"{self.n_perm} random {self.kind}, seed {self.seed}; the first is the observed data")
        use_f = self.conventions.test in ("t", "hksj")
        qname = f"F({self.qm_df[0]:g}, {self.qm_df[1]:g})" if use_f else f"QM({self.qm_df[0]:g})"
        lines = [f"Permutation test (k = {self.k}; {how})", "",
                 f"Test of coefficients {list(self.btt)}: {qname} = {self.qm:.4f}, p {format_p(self.qm_p)} "
                 f"(asymptotic), p {format_p(self.qm_p_perm)} (permutation)", "",
                 self.coefficients.to_string(float_format=lambda x: f"{x:.4f}"), "",
                 f"Conventions: permutation p-value = share of permutations with {_ALTERNATIVES[self.alternative]}"
                 f" (tol = {self.tol:.3g}); " + self.conventions.describe()]
        if not self.exact:
            se = np.sqrt(self.coefficients["p_perm"].clip(1e-12, 1) * (1 - self.coefficients["p_perm"]) / self.n_perm)
            lines.append(f"Monte Carlo SE of the permutation p-values: up to {float(se.max()):.4f}; another seed "
                         "gives other permutations (and metafor's R random numbers others again)")
        return lines



def _sign_matrix(k: int) -> np.ndarray:
    """All 2^k sign vectors, metafor's order (expand.grid of c(1, -1): the first study flips fastest)."""
    r = np.arange(2**k)[:, None]
    return np.where((r >> np.arange(k)[None, :]) & 1, -1.0, 1.0)


def _multiset_permutations(groups: np.ndarray) -> np.ndarray:
    """Every distinct arrangement of the group labels (0..G-1, with repeats), one per row."""
    counts = np.bincount(groups)
    pref = np.zeros((1, 0), dtype=np.int32)
    rem = counts[None, :].copy()
    for _ in range(len(groups)):
        parts_p, parts_r = [], []
        for g in range(len(counts)):
            ok = rem[:, g] > 0
            if not ok.any():
                continue
            parts_p.append(np.column_stack([pref[ok], np.full(int(ok.sum()), g, dtype=np.int32)]))
            r = rem[ok].copy()
            r[:, g] -= 1
            parts_r.append(r)
        pref, rem = np.concatenate(parts_p), np.concatenate(parts_r)
    return pref


def _row_groups(X: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Identical rows of X share a group: (distinct rows, group of each row)."""
    uniq, inv = np.unique(X, axis=0, return_inverse=True)
    return uniq, inv.ravel()


def _n_distinct(groups: np.ndarray) -> int:
    counts = np.bincount(groups)
    n = math.factorial(len(groups))
    for c in counts:
        n //= math.factorial(int(c))
    return n


def _fit_chunk(Y: np.ndarray, V: np.ndarray, X: np.ndarray | None, conv: Conventions, btt: list[int]):
    batch = engine.Batch.from_arrays(Y, V, X)
    fa = engine.fit(batch, conv)
    b = fa.b[:, btt]
    vb = fa.vb[:, btt][:, :, btt]
    qm = np.einsum("mi,mi->m", b, np.linalg.solve(vb, b[..., None])[..., 0])
    if conv.test in ("t", "hksj"):
        qm = np.where(fa.test_used == "z", qm, qm / len(btt))
    return fa, qm


def permutation_test(yi, vi, mods=None, *, method: str | None = "REML", test: str | None = "z",
                     level: float | None = None, adhoc: bool | None = None, intercept: bool = True, btt=None,
                     iter: int = 1000, exact: bool | None = None, seed: int | None = None,
                     alternative: str = "two-sided", tol: float = _COMPTOL,
                     progress=False, chunk: int = 2000) -> PermutationResult:
    """Permutation test of a pooled effect (sign flipping) or of meta-regression coefficients (permuting the
    moderator rows), as metafor's ``permutest``.

    Parameters
    ----------
    yi, vi : array-like
        Effect sizes and sampling variances.
    mods : DataFrame, mapping or array, optional
        Moderators (as :func:`meta_regression`); none tests the pooled effect.
    method, test, level, adhoc, intercept, btt
        The model, as :func:`pool` / :func:`meta_regression`. ``btt``: coefficients tested jointly by QM (default:
        all but the intercept; the intercept without moderators).
    iter : int
        Number of random permutations when the test is not exact.
    exact : bool or None
        None (default, metafor's rule): exact when the number of distinct permutations (2^k sign vectors, or
        k! over the product of the factorials of the numbers of identical moderator rows) is at most ``iter``.
        True: always exact (refused above 10^7 permutations). False: always random.
    seed : int, optional
        Seed of the random permutations (numpy's generator); drawn and reported when not given. R's random
        numbers differ, so random permutation p-values agree with metafor's only within Monte Carlo error.
    alternative : {"two-sided", "greater", "less"}
        For the coefficients: count permuted statistics with ``|stat| >= |observed| - tol`` (default) or one-sided.
        QM is always counted upwards.
    tol : float
        Ties within ``tol`` count as at least as extreme (metafor's ``comptol``, sqrt of machine epsilon).
    progress : bool or callable
        True shows a progress bar; a callable gets ``(done, total)`` after each chunk.
    chunk : int
        Permutations fitted per batch (memory is proportional to chunk * k).

    Returns
    -------
    PermutationResult

    Validated against: metafor 3.8 ``permutest(rma(yi, vi, mods =, method =, test =), exact = TRUE)`` to 1e-10
    (exact tests), and by the observed statistics and Monte Carlo error (random permutations).
    """
    y, v = check_studies(yi, vi, what="The permutation test")
    k = len(y)
    if k < 2:
        raise ValueError(f"a permutation test needs at least 2 studies; got {k}")
    conv = resolve(preset=None, method=method, test=test, adhoc=adhoc, level=level, pi_type=None, i2_type=None)
    if alternative not in _ALTERNATIVES:
        raise ValueError(f"alternative must be one of {', '.join(map(repr, _ALTERNATIVES))}; got {alternative!r}")
    if not (isinstance(iter, int | np.integer) and iter >= 2):
        raise ValueError(f"iter must be an integer of at least 2; got {iter!r}")
    if exact not in (None, True, False):
        raise ValueError(f"exact must be None, True or False; got {exact!r}")
    if not (isinstance(chunk, int | np.integer) and chunk >= 1):
        raise ValueError(f"chunk must be a positive integer; got {chunk!r}")
    if mods is None:
        X, names = None, ["intrcpt"]
        p = 1
        btt = [0] if btt is None else list(btt)
        kind = "sign flips"
        n_exact = 2**k
    else:
        X, names = design_matrix(mods, k, intercept=intercept)
        p = X.shape[1]
        if k - p < 1 and conv.method != "FE":
            raise ValueError(f"{p} coefficients and {k} studies leave no residual degrees of freedom for tau^2")
        btt = [j for j in range(p) if not (intercept and j == 0)] if btt is None else list(btt)
        kind = "permutations of the moderator rows"
        uniq, groups = _row_groups(X)
        n_exact = _n_distinct(groups)
    if not btt or any(not 0 <= j < p for j in btt):
        raise ValueError(f"btt must name coefficients 0..{p - 1}; got {btt}")
    use_exact = (n_exact <= iter) if exact is None else exact
    if use_exact and n_exact > MAX_EXACT:
        raise ValueError(f"an exact test needs {n_exact:,} permutations (more than {MAX_EXACT:,}); use exact=None "
                         "or False for random permutations")
    if not use_exact and seed is None:
        seed = int(np.random.SeedSequence().entropy % 2**32)
    rng = np.random.default_rng(seed) if not use_exact else None

    # the observed fit
    fa0, qm0 = _fit_chunk(y[None, :], v[None, :], None if X is None else X[None], conv, btt)
    b_obs, z_obs = fa0.b[0], fa0.stat[0]

    # the permutations, as index/sign matrices
    if mods is None:
        if use_exact:
            perms = _sign_matrix(k)
        else:
            perms = rng.choice(np.array([-1.0, 1.0]), size=(iter, k))
            perms[0] = 1.0
    else:
        if use_exact:
            perms = _multiset_permutations(groups)  # group label per study; rows of X are uniq[perms]
        else:
            perms = groups[rng.permuted(np.tile(np.arange(k), (iter, 1)), axis=1)]
            perms[0] = groups
    n = len(perms)
    beta = np.empty((n, p))
    zs = np.empty((n, p))
    qms = np.empty(n)
    with progress_reporter(progress, n, f"permutation test ({'exact' if use_exact else 'random'})") as advance:
        for start in range(0, n, chunk):
            sl = slice(start, min(n, start + chunk))
            m = sl.stop - sl.start
            if mods is None:
                Y, V, Xc = perms[sl] * y[None, :], np.broadcast_to(v, (m, k)), None
            else:
                Y, V, Xc = np.broadcast_to(y, (m, k)), np.broadcast_to(v, (m, k)), uniq[perms[sl]]
            fa, qm = _fit_chunk(np.array(Y), np.array(V), Xc, conv, btt)
            beta[sl], zs[sl], qms[sl] = fa.b, fa.stat, qm
            advance(m)

    if alternative == "two-sided":
        pv = np.mean(np.abs(zs) >= np.abs(z_obs)[None, :] - tol, axis=0)
    elif alternative == "greater":
        pv = np.mean(zs >= z_obs[None, :] - tol, axis=0)
    else:
        pv = np.mean(zs <= z_obs[None, :] + tol, axis=0)
    pv = np.minimum(pv, 1.0)
    qm_p_perm = float(np.mean(qms >= qm0[0] - tol))
    use_t = fa0.test_used[0] in ("t", "hksj")
    dfree = float(k - p)
    if use_t:
        qm_df = (float(len(btt)), dfree)
        qm_p = float(stats.f.sf(qm0[0], len(btt), dfree))
    else:
        qm_df = (float(len(btt)), float("nan"))
        qm_p = float(stats.chi2.sf(qm0[0], len(btt)))
    coef = pd.DataFrame({"estimate": b_obs, "se": fa0.se[0], "stat": z_obs, "p": fa0.pval[0], "p_perm": pv},
                        index=pd.Index(names, name="term"))
    return PermutationResult(
        coefficients=coef, qm=float(qm0[0]), qm_df=qm_df, qm_p=qm_p, qm_p_perm=qm_p_perm, btt=tuple(btt), k=k,
        n_perm=n, n_exact=int(n_exact), exact=bool(use_exact), kind=kind, seed=None if use_exact else int(seed),
        alternative=alternative, tol=float(tol), conventions=conv, stat_perm=zs, beta_perm=beta, qm_perm=qms)

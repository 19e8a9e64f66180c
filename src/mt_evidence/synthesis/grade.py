"""Certainty of evidence (GRADE), proposed automatically from the data, with reviewer overrides.

Every judgement states its rule; a reviewer can override any domain in a TOML file, and the override is shown
with its reason. Rules (randomised trials start at high certainty):

* **Risk of bias**: down one level when more than half of the weight comes from trials without a published
  overall judgement of low risk of bias ("not assessed" counts as not low: it is never guessed); down two when
  more than half of the weight is judged high risk.
* **Inconsistency**: down one when I² >= 50% (k >= 2), or when the evidence is a single trial (consistency
  cannot be judged; Cochrane Back and Neck group practice); down two when I² >= 75% and the prediction interval
  spans both an important benefit and an important harm.
* **Imprecision** (GRADE guidelines 6, Guyatt 2011, J Clin Epidemiol 64:1283; GRADE guidance 34, 2022): down one
  when the 95% CI crosses the minimal important difference (it includes both an important and an unimportant
  effect) or when the participants fall short of the optimal information size (the total size of a single trial
  powered at 80% with two-sided alpha 0.05 to detect the minimal important difference, with the SD estimated
  from the trials); down two when the CI includes both an important benefit and an important harm.
* **Indirectness**: not judged automatically (reviewer's domain; default no concern).
* **Publication bias**: with 10 or more trials, down one when Egger's regression test gives p < 0.10; with
  fewer, not assessable (stated, not downgraded).
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
from scipy import stats

RULES = (
    "Randomised trials start at high certainty.",
    "Risk of bias: down one level when more than half of the weight comes from trials without a published overall "
    "low risk-of-bias judgement (not assessed counts as not low); down two when more than half is judged high risk.",
    "Inconsistency: down one when I² is 50% or more, or when the evidence is a single trial; down two when I² is "
    "75% or more and the prediction interval spans both an important benefit and an important harm.",
    "Imprecision: down one when the 95% CI crosses the minimal important difference or the participants fall short "
    "of the optimal information size (one trial powered at 80%, two-sided alpha 0.05, to detect the MID); down two "
    "when the CI includes both an important benefit and an important harm (GRADE guidelines 6 and 34).",
    "Indirectness: not judged automatically (a reviewer's judgement, entered as an override).",
    "Publication bias: with 10 or more trials, down one when Egger's test gives p < 0.10; otherwise not assessable.",
    "A reviewer can override any domain in a TOML file ([[override]] comparison, outcome, window, domain, "
    "downgrade, reason, reviewer); overrides are shown next to the automatic judgement.",
)
LEVELS = ("very low", "low", "moderate", "high")
DOMAINS = ("risk_of_bias", "inconsistency", "indirectness", "imprecision", "publication_bias")
DOMAIN_LABELS = {
    "risk_of_bias": "risk of bias",
    "inconsistency": "inconsistency",
    "indirectness": "indirectness",
    "imprecision": "imprecision",
    "publication_bias": "publication bias",
}


@dataclass(frozen=True)
class Judgement:
    domain: str
    downgrade: int
    reason: str
    overridden: bool = False
    reviewer: str = ""


@dataclass(frozen=True)
class Certainty:
    level: str
    judgements: tuple[Judgement, ...]

    def reasons(self) -> list[str]:
        return [f"{DOMAIN_LABELS[j.domain]} (-{j.downgrade}): {j.reason}" + (f" [override by {j.reviewer}]"
                                                                              if j.overridden else "")
                for j in self.judgements if j.downgrade > 0 or j.overridden]

    @property
    def symbol(self) -> str:
        n = LEVELS.index(self.level) + 1
        return "\u2295" * n + "\u25ef" * (4 - n)


def optimal_information_size(mid: float, sd: float, alpha: float = 0.05, power: float = 0.8) -> float:
    """Total participants of one two-arm trial (1:1) powered to detect ``mid`` with outcome SD ``sd``."""
    z = stats.norm.ppf(1 - alpha / 2) + stats.norm.ppf(power)
    return float(4 * z**2 * sd**2 / mid**2)


def egger_test(yi: np.ndarray, vi: np.ndarray) -> tuple[float, float]:
    """Egger's regression test (standardised effect on precision): intercept and its two-sided p-value."""
    se = np.sqrt(vi)
    y = yi / se
    x = 1 / se
    X = np.column_stack([np.ones_like(x), x])
    beta, *_ = np.linalg.lstsq(X, y, rcond=None)
    resid = y - X @ beta
    dof = len(y) - 2
    s2 = resid @ resid / dof
    cov = s2 * np.linalg.inv(X.T @ X)
    t = beta[0] / np.sqrt(cov[0, 0])
    return float(beta[0]), float(2 * stats.t.sf(abs(t), dof))


def propose(studies: pd.DataFrame, result, mid: float | None) -> tuple[Judgement, ...]:
    """Automatic judgements for one pooled analysis.

    ``studies``: the rows pooled (``yi``, ``vi``, ``n1``, ``n2``, ``rob_overall``, in the result's order);
    ``result``: its :class:`~mt_evidence.stats.pooling.PoolResult`; ``mid``: minimal important difference on the
    effect's scale (None when unknown: imprecision is then judged on whether the CI includes no effect).
    """
    w = np.asarray(result.weights, float) / 100.0
    rob = list(studies["rob_overall"].fillna("not assessed"))
    not_low = sum(wi for wi, r in zip(w, rob) if r != "low")
    high = sum(wi for wi, r in zip(w, rob) if r == "high")
    if high > 0.5:
        j_rob = Judgement("risk_of_bias", 2, f"{100 * high:.0f}% of the weight from trials at high risk of bias")
    elif not_low > 0.5:
        n_na = sum(1 for r in rob if r == "not assessed")
        j_rob = Judgement("risk_of_bias", 1, f"{100 * not_low:.0f}% of the weight from trials without a published "
                          f"low risk-of-bias judgement ({n_na} of {len(rob)} not assessed)")
    else:
        j_rob = Judgement("risk_of_bias", 0, "most weight from trials judged at low risk of bias")

    k = result.k
    if k == 1:
        j_inc = Judgement("inconsistency", 1, "a single trial: consistency cannot be judged")
    else:
        spans = mid is not None and result.pi_low < -mid and result.pi_high > mid
        if result.i2 >= 75 and spans:
            j_inc = Judgement("inconsistency", 2, f"I² = {result.i2:.0f}% and the prediction interval spans an "
                              "important benefit and an important harm")
        elif result.i2 >= 50:
            j_inc = Judgement("inconsistency", 1, f"I² = {result.i2:.0f}%")
        else:
            j_inc = Judgement("inconsistency", 0, f"I² = {result.i2:.0f}%")

    n = float(np.nansum(studies["n1"].to_numpy(float)) + np.nansum(studies["n2"].to_numpy(float)))
    lo, hi = result.ci_low, result.ci_high
    if mid is None:
        j_imp = (Judgement("imprecision", 1, "the 95% CI includes no effect") if lo < 0 < hi
                 else Judgement("imprecision", 0, "the 95% CI excludes no effect"))
    else:
        both = lo < -mid and hi > mid
        crosses = (lo < -mid < hi) or (lo < mid < hi)
        sd = _sd_estimate(studies)
        ois = optimal_information_size(mid, sd) if np.isfinite(sd) else np.nan
        short = np.isfinite(ois) and n < ois
        if both:
            j_imp = Judgement("imprecision", 2, f"the 95% CI ({lo:.1f} to {hi:.1f}) includes both an important "
                              f"benefit and an important harm (MID {mid:g})")
        elif crosses or short:
            why = []
            if crosses:
                why.append(f"the 95% CI ({lo:.1f} to {hi:.1f}) crosses the MID of {mid:g}")
            if short:
                why.append(f"{n:.0f} participants, fewer than the optimal information size of {ois:.0f}")
            j_imp = Judgement("imprecision", 1, "; ".join(why))
        else:
            j_imp = Judgement("imprecision", 0, f"the 95% CI ({lo:.1f} to {hi:.1f}) does not cross the MID and "
                              f"{n:.0f} participants meet the optimal information size"
                              + (f" of {ois:.0f}" if np.isfinite(ois) else ""))
    j_ind = Judgement("indirectness", 0, "not judged automatically (no concern unless a reviewer says so)")
    if k >= 10:
        _, p = egger_test(studies["yi"].to_numpy(float), studies["vi"].to_numpy(float))
        j_pub = (Judgement("publication_bias", 1, f"Egger's test p = {p:.3f}") if p < 0.10
                 else Judgement("publication_bias", 0, f"Egger's test p = {p:.3f}"))
    else:
        j_pub = Judgement("publication_bias", 0, f"not assessable with {k} trial(s) (10 or more needed)")
    return (j_rob, j_inc, j_ind, j_imp, j_pub)


def _sd_estimate(studies: pd.DataFrame) -> float:
    """Outcome SD on the effect's scale, from each trial's SE and group sizes: SE / sqrt(1/n1 + 1/n2)."""
    n1, n2 = studies["n1"].to_numpy(float), studies["n2"].to_numpy(float)
    se = np.sqrt(studies["vi"].to_numpy(float))
    ok = np.isfinite(n1) & np.isfinite(n2) & (n1 > 0) & (n2 > 0)
    if not ok.any():
        return float("nan")
    sds = se[ok] / np.sqrt(1 / n1[ok] + 1 / n2[ok])
    return float(np.median(sds))


@dataclass(frozen=True)
class Overrides:
    """Reviewer overrides: (comparison, outcome, window, domain) -> (downgrade, reason, reviewer)."""

    entries: dict = field(default_factory=dict)
    source: str = ""

    @classmethod
    def load(cls, path: str | Path | None) -> Overrides:
        if path is None:
            return cls()
        p = Path(path)
        try:
            spec = tomllib.loads(p.read_text(encoding="utf-8"))
        except (OSError, tomllib.TOMLDecodeError) as exc:
            raise ValueError(f"{p}: cannot read the certainty overrides ({exc})") from None
        entries, problems = {}, []
        for i, o in enumerate(spec.get("override", []), start=1):
            missing = [k for k in ("comparison", "outcome", "window", "domain", "downgrade", "reason", "reviewer")
                       if k not in o]
            if missing:
                problems.append(f"[[override]] {i}: missing {', '.join(missing)}")
                continue
            if o["domain"] not in DOMAINS:
                problems.append(f"[[override]] {i}: domain {o['domain']!r} is not one of {', '.join(DOMAINS)}")
                continue
            if o["downgrade"] not in (0, 1, 2):
                problems.append(f"[[override]] {i}: downgrade must be 0, 1 or 2; got {o['downgrade']!r}")
                continue
            entries[(o["comparison"], o["outcome"], o["window"], o["domain"])] = (
                int(o["downgrade"]), str(o["reason"]), str(o["reviewer"]))
        if problems:
            raise ValueError(f"{p}: " + "; ".join(problems))
        return cls(entries, str(p))


def certainty(judgements: tuple[Judgement, ...], key: tuple[str, str, str] | None = None,
              overrides: Overrides | None = None) -> Certainty:
    """Apply overrides (if any) and rate: start at high, subtract the downgrades, floor at very low."""
    js = []
    for j in judgements:
        o = overrides.entries.get((*key, j.domain)) if overrides and key else None
        if o is not None:
            js.append(Judgement(j.domain, o[0], o[1] + f" (automatic: -{j.downgrade}, {j.reason})", True, o[2]))
        else:
            js.append(j)
    total = sum(j.downgrade for j in js)
    level = LEVELS[max(0, 3 - total)]
    return Certainty(level, tuple(js))

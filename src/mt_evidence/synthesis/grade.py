"""Certainty of evidence (GRADE), proposed automatically from the data, with reviewer overrides, and the GRADE
informative statement of each analysis (Santesso et al. 2020).

Every judgement states its rule; a reviewer can override any domain in a TOML file, and the override is shown
with its reason. The rules are those of the analysis plan (``docs/methods.md`` sections 7 and 8); randomised
trials start at high certainty:

* **Risk of bias**: down one level when more than half of the weight comes from trials judged at high risk or
  with some concerns or unclear risk; down two when more than half of the weight is at high risk. Trials without
  any judgement ("not assessed") count as at risk, and the level they would give if they were at low risk is
  kept beside it (``Certainty.level_if_unassessed_low``), so the report shows certainty both ways.
* **Inconsistency**: not judged from one trial. From two trials: down one when I² >= 50%; down two when
  I² >= 75% and the prediction interval (from three trials) spans both an important benefit and an important
  harm.
* **Indirectness**: from recorded facts: down one when more than half of the weight comes from trials that
  measured pain or disability as bothersomeness instead of intensity. Otherwise no concern unless a reviewer
  says so (control type is handled by keeping sham and pragmatic controls apart).
* **Imprecision** (GRADE guidelines 6, Guyatt 2011; GRADE guidance 34, 2022; minimally contextualised, against
  the between-group important difference T): when the estimate is an important effect, down one if the 95% CI
  crosses T; when it is little or no difference, down one if the CI crosses -T or +T, down two if both; also
  down one below the optimal information size (one trial powered at 80%, two-sided alpha 0.05, to detect T).
  Without a T (SMD analyses): down one when the CI includes no effect.
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
    "Risk of bias: down one level when more than half of the weight comes from trials at high risk, with some "
    "concerns or unclear; down two when more than half is at high risk. Trials with no judgement count as at risk; "
    "the certainty they would give if they were at low risk is shown beside it.",
    "Inconsistency: not judged from one trial; down one when I² is 50% or more; down two when I² is 75% or more "
    "and the prediction interval (three or more trials) spans both an important benefit and an important harm.",
    "Indirectness: down one when most of the weight comes from trials that measured bothersomeness instead of "
    "intensity, or from trials whose first-named arm received a co-intervention its comparator did not; sham and "
    "pragmatic controls are analysed apart; a reviewer may add other concerns.",
    "Imprecision, against the between-group important difference (the same threshold as the statement): when the "
    "estimate is an important effect, down one if the 95% CI crosses it; when it is little or no difference, down "
    "one if the CI crosses the important benefit or the important harm, two if both; down one below the optimal "
    "information size (one trial powered at 80%, two-sided alpha 0.05, to detect the important difference). "
    "The width of one interval is never counted twice (GRADE guidelines 6 and 34).",
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
    #: risk of bias only: the downgrade if the trials without any judgement were at low risk (None: all judged)
    if_unassessed_low: int | None = None


@dataclass(frozen=True)
class Certainty:
    level: str
    judgements: tuple[Judgement, ...]
    #: the level if trials without a risk-of-bias judgement were at low risk (None when every trial is judged)
    level_if_unassessed_low: str | None = None

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
    """Egger's regression test (standardised effect on precision): intercept and its two-sided p-value
    (:func:`mt_evidence.stats.bias.egger_test`, validated against metafor's ``regtest``)."""
    from ..stats.bias import egger_test as _egger

    r = _egger(yi, vi, model="lm", min_k=None)
    return r["coef"], r["pval"]


def propose(studies: pd.DataFrame, result, mid: float | None) -> tuple[Judgement, ...]:
    """Automatic judgements for one pooled analysis.

    ``studies``: the rows pooled (``yi``, ``vi``, ``n1``, ``n2``, ``rob_overall``, in the result's order);
    ``result``: its :class:`~mt_evidence.stats.pooling.PoolResult`; ``mid``: minimal important difference on the
    effect's scale (None when unknown: imprecision is then judged on whether the CI includes no effect).
    """
    w = np.asarray(result.weights, float) / 100.0
    rob = [r if isinstance(r, str) and r else "not assessed" for r in studies["rob_overall"]]
    j_rob = _risk_of_bias(w, rob)

    k = result.k
    i2 = _i2_for_judgement(result)
    if k == 1:
        j_inc = Judgement("inconsistency", 0, "one trial: consistency is not judged")
    else:
        spans = mid is not None and result.pi_low < -mid and result.pi_high > mid  # no PI below 3 trials: False
        if i2 >= 75 and spans:
            j_inc = Judgement("inconsistency", 2, f"I² = {i2:.0f}% and the prediction interval spans an "
                              "important benefit and an important harm")
        elif i2 >= 50:
            j_inc = Judgement("inconsistency", 1, f"I² = {i2:.0f}%")
        else:
            j_inc = Judgement("inconsistency", 0, f"I² = {i2:.0f}%")

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
    j_ind = _indirectness(w, studies)
    if k >= 10:
        _, p = egger_test(studies["yi"].to_numpy(float), studies["vi"].to_numpy(float))
        j_pub = (Judgement("publication_bias", 1, f"Egger's test p = {p:.3f}") if p < 0.10
                 else Judgement("publication_bias", 0, f"Egger's test p = {p:.3f}"))
    else:
        j_pub = Judgement("publication_bias", 0, f"not assessable with {k} trial(s) (10 or more needed)")
    return (j_rob, j_inc, j_ind, j_imp, j_pub)


def _risk_of_bias(w: np.ndarray, rob: list[str]) -> Judgement:
    def judge(labels: list[str]) -> tuple[int, float, float]:
        at_risk = sum(wi for wi, r in zip(w, labels) if r != "low")
        high = sum(wi for wi, r in zip(w, labels) if r == "high")
        return (2 if high > 0.5 else 1 if at_risk > 0.5 else 0), at_risk, high

    down, at_risk, high = judge(rob)
    n_na = sum(1 for r in rob if r == "not assessed")
    alt = judge(["low" if r == "not assessed" else r for r in rob])[0] if n_na else None
    if down == 2:
        why = f"{100 * high:.0f}% of the weight from trials at high risk of bias"
    elif down == 1:
        why = f"{100 * at_risk:.0f}% of the weight from trials not judged at low risk of bias"
    else:
        why = "most weight from trials judged at low risk of bias"
    if n_na:
        why += (f"; {n_na} of {len(rob)} trial(s) have no risk-of-bias judgement and are counted as at risk "
                f"(-{alt} if they were at low risk)")
    return Judgement("risk_of_bias", down, why, if_unassessed_low=alt)


def _i2_for_judgement(result) -> float:
    """I² for the inconsistency judgement: the result's own (for a common-effect result it is Higgins' I² from
    Q, so two trials are judged too)."""
    return 0.0 if result.k < 2 else float(result.i2)


def _indirectness(w: np.ndarray, studies: pd.DataFrame) -> Judgement:
    """Indirectness from recorded facts: the outcome measured as bothersomeness instead of intensity."""
    inst = [str(x).lower() for x in studies.get("instrument", pd.Series([""] * len(w)))]
    bother = sum(wi for wi, x in zip(w, inst) if "bother" in x)
    if bother > 0.5:
        return Judgement("indirectness", 1, f"{100 * bother:.0f}% of the weight from trials that measured "
                         "bothersomeness instead of intensity")
    co = studies.get("co_intervention_differs", pd.Series([False] * len(w))).fillna(False).astype(bool).to_numpy()
    share = float(sum(wi for wi, c in zip(w, co) if c))
    if share > 0.5:
        return Judgement("indirectness", 1, f"{100 * share:.0f}% of the weight from trials whose first-named arm "
                         "received a co-intervention its comparator did not")
    return Judgement("indirectness", 0, "no recorded concern (outcome measured as intensity; control types kept "
                     "apart); a reviewer may add one")


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
        from ..evidence.files import MAX_SETTINGS_BYTES, read_bytes

        p = Path(path)
        try:
            spec = tomllib.loads(read_bytes(p, MAX_SETTINGS_BYTES, "a certainty overrides file (TOML)")
                                 .decode("utf-8"))
        except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
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
    alt = None
    for j in js:
        if j.domain == "risk_of_bias" and j.if_unassessed_low is not None and not j.overridden:
            alt = LEVELS[max(0, 3 - (total - j.downgrade + j.if_unassessed_low))]
    return Certainty(level, tuple(js), alt)


# ------------------------------------------------------------------------------------------- statements

#: GRADE informative statements (Santesso et al. 2020, J Clin Epidemiol 119:126), by size and certainty
STATEMENTS = {
    "benefit": {"high": "reduces", "moderate": "probably reduces", "low": "may reduce",
                "very low": "very uncertain"},
    "little": {"high": "results in little or no difference in", "moderate": "probably results in little or no "
               "difference in", "low": "may result in little or no difference in", "very low": "very uncertain"},
    "harm": {"high": "increases", "moderate": "probably increases", "low": "may increase",
             "very low": "very uncertain"},
    "shown": {"high": "reduces", "moderate": "probably reduces", "low": "may reduce", "very low": "very uncertain"},
    "unclear": {"high": "does not clearly change", "moderate": "probably does not clearly change",
                "low": "may not clearly change", "very low": "very uncertain"},
}


def size_category(estimate: float, ci_low: float, ci_high: float, threshold: float | None) -> str:
    """Where the point estimate lies against the between-group important difference T (negative = benefit):
    ``benefit`` (<= -T), ``little`` (between), ``harm`` (>= +T). Without a T: ``shown`` when the CI excludes
    no effect in favour of the first care, ``harm`` when it excludes it the other way, else ``unclear``."""
    if threshold is None or not np.isfinite(threshold):
        return "shown" if ci_high < 0 else "harm" if ci_low > 0 else "unclear"
    if estimate <= -threshold:
        return "benefit"
    if estimate >= threshold:
        return "harm"
    return "little"


def statement(category: str, level: str, outcome: str, first: str, second: str, when: str = "") -> str:
    """The GRADE informative statement, e.g. "Manual therapy probably reduces pain compared with sham at up
    to 3 months." (``category`` from :func:`size_category`, ``level`` a certainty level)."""
    verb = STATEMENTS[category][level]
    when = f" {when}" if when else ""
    if verb == "very uncertain":
        return (f"The evidence is very uncertain about the effect of {first} on {outcome} compared with "
                f"{second}{when}.")
    return f"{first[:1].upper() + first[1:]} {verb} {outcome} compared with {second}{when}."

"""Clinic claims checked against the evidence: each claim maps to analyses (``data/claims.toml``), each
analysis gets a pooled result, a certainty rating and a verdict, and the claim a verdict worded with care.

Verdict of one test (effects on 0-100, negative favours the first-named care; MID = minimal important
difference of the outcome):

* ``benefit`` expected: **supported** when the 95% CI excludes no effect in the claimed direction and the
  certainty is moderate or high; **not supported** when the CI excludes an important benefit (it lies above
  -MID) with moderate or high certainty, or when the CI excludes no effect in the other direction;
  otherwise **uncertain**.
* ``no_important_benefit`` expected: **supported** when the CI excludes an important benefit (above -MID)
  with moderate or high certainty; **not supported** when the CI lies wholly beyond -MID; otherwise
  **uncertain**.
* ``fades`` expected (within-trial change from short to long term, at the assumed correlation and across the
  sensitivity range): **supported** when every interval of the range lies above zero (the difference shrinks);
  **not supported** when every interval lies below zero; otherwise **uncertain**. No GRADE rating is made for
  this within-trial contrast; it is reported as uncertain unless the sign is clear at every correlation.
* No trial for the analysis: **not testable with this evidence**.

A claim is supported when all its tests are; not supported when any test is not supported; not testable when
none of its tests can be run; uncertain otherwise.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from ..evidence.tomlfile import read_toml
from ..stats.pooling import PoolResult, pool
from . import analysis as A
from . import grade

RULES = (
    "A claim that a care helps is supported when the 95% CI excludes no effect in the claimed direction and the "
    "certainty is moderate or high; not supported when the CI excludes an important benefit with moderate or high "
    "certainty, or points the other way; uncertain otherwise.",
    "A claim that an effect is short-lived is checked within trials that report both windows (the change from "
    "short to long term, with the correlation between a trial's two estimates assumed and varied): supported only "
    "when the difference shrinks at every assumed correlation.",
    "A claim whose analyses have no trials is not testable with this evidence; a claim is supported when all its "
    "analyses are, not supported when any is not, and uncertain otherwise.",
)
VERDICTS = ("supported", "not supported", "uncertain", "not testable with this evidence")


@dataclass(frozen=True)
class ClaimTest:
    comparison: str
    outcome: str
    window: str
    expect: str
    population: str | None = None
    technique: str | None = None

    def describe(self) -> str:
        first, second = A.COMPARISON_LABELS.get(self.comparison, (self.comparison, ""))
        where = {"short": "in the short term (up to 3 months)", "intermediate": "at 3 to 12 months",
                 "long": "in the long term (12 months or more)",
                 "short_vs_long": "from short to long term"}.get(self.window, self.window)
        extra = []
        if self.population:
            extra.append(f"{self.population} back pain")
        if self.technique:
            extra.append(f"{self.technique.replace('_', ' ')} techniques")
        ex = f" ({', '.join(extra)})" if extra else ""
        return f"{first} vs {second}, {self.outcome}, {where}{ex}"


@dataclass(frozen=True)
class Claim:
    id: int
    text: str
    tests: tuple[ClaimTest, ...]
    not_testable: str = ""


@dataclass(frozen=True)
class TestResult:
    test: ClaimTest
    verdict: str
    explanation: str
    result: PoolResult | None = None
    certainty: grade.Certainty | None = None
    studies: tuple[str, ...] = ()
    participants: float = 0.0
    mid: float | None = None
    change: A.ShortLongResult | None = None


@dataclass(frozen=True)
class ClaimResult:
    claim: Claim
    verdict: str
    explanation: str
    tests: tuple[TestResult, ...] = field(default_factory=tuple)


def load_claims(path: str | Path | None = None) -> list[Claim]:
    """Read the claims file (TOML); ``None`` gives the package's nine clinic claims."""
    spec, src = read_toml(path, "claims.toml")
    claims, problems = [], []
    known = set(A.ALL_COMPARISONS)
    for i, c in enumerate(spec.get("claim", []), start=1):
        if "id" not in c or "text" not in c:
            problems.append(f"claim {i}: needs id and text")
            continue
        tests = []
        for j, t in enumerate(c.get("test", []), start=1):
            missing = [k for k in ("comparison", "outcome", "window", "expect") if k not in t]
            if missing:
                problems.append(f"claim {c['id']} test {j}: missing {', '.join(missing)}")
                continue
            if t["comparison"] not in known:
                problems.append(f"claim {c['id']} test {j}: unknown comparison {t['comparison']!r} "
                                f"(known: {', '.join(sorted(known))})")
                continue
            if t["expect"] not in ("benefit", "no_important_benefit", "fades"):
                problems.append(f"claim {c['id']} test {j}: expect must be benefit, no_important_benefit or fades")
                continue
            tests.append(ClaimTest(t["comparison"], t["outcome"], t["window"], t["expect"], t.get("population"),
                                   t.get("technique")))
        if not tests and not c.get("not_testable"):
            problems.append(f"claim {c['id']}: give at least one [[claim.test]] or a not_testable reason")
        claims.append(Claim(int(c["id"]), str(c["text"]), tuple(tests), str(c.get("not_testable", ""))))
    if problems:
        raise ValueError(f"{src}: " + "; ".join(problems))
    return claims


def _filter(frame: pd.DataFrame, t: ClaimTest) -> pd.DataFrame:
    f = frame[frame["used"] & (frame["comparison"] == t.comparison) & (frame["outcome"] == t.outcome)]
    if t.population:
        f = f[f["population"] == t.population]
    if t.technique:
        mask = np.array([A._has_technique(x, t.technique) for x in f["technique1"].fillna("")], dtype=bool)
        f = f.loc[mask] if len(f) else f
    return f


def evaluate_test(frame: pd.DataFrame, t: ClaimTest, config: A.AnalysisConfig,
                  overrides: grade.Overrides | None = None) -> TestResult:
    mid = config.thresholds.get(t.outcome)
    f = _filter(frame, t)
    if t.window == "short_vs_long":
        sl = A.short_vs_long(f, t.comparison, t.outcome, config)
        if sl.within is None:
            return TestResult(t, VERDICTS[3], "no trial reports both the short and the long term for this "
                              "analysis", change=sl)
        s = sl.sensitivity
        if (s["ci_low"] > 0).all():
            v = "supported"
        elif (s["ci_high"] < 0).all():
            v = "not supported"
        else:
            v = "uncertain"
        w = sl.within
        expl = (f"within {w.k} trial(s) the difference changes by {w.estimate:+.1f} points from short to long term "
                f"(95% CI {w.ci_low:.1f} to {w.ci_high:.1f}, correlation assumed {sl.correlation:g}; range of "
                f"assumptions {s['correlation'].min():g} to {s['correlation'].max():g})")
        return TestResult(t, v, expl, result=w, studies=tuple(sl.trials["study_id"]), mid=mid, change=sl)
    g = f[f["window"] == t.window].sort_values("study_id")
    if g.empty:
        tried = frame[(frame["comparison"] == t.comparison) & (frame["outcome"] == t.outcome)
                      & (frame["window"] == t.window) & ~frame["used"]]
        if len(tried):
            why = "; ".join(sorted({f"{r.study_id}: {r.why_not}" for r in tried.itertuples()}))
            return TestResult(t, VERDICTS[3], f"trials report this comparison but none can be used ({why})", mid=mid)
        return TestResult(t, VERDICTS[3], "no trial in the bundled evidence reports this comparison", mid=mid)
    r = pool(g["yi"].to_numpy(float), g["vi"].to_numpy(float), labels=list(g["study_id"]), method=config.method,
             test=config.test, pi_type=config.pi_type)
    cert = grade.certainty(grade.propose(g, r, mid), (t.comparison, t.outcome, t.window), overrides)
    n = float(np.nansum(g["n1"].to_numpy(float)) + np.nansum(g["n2"].to_numpy(float)))
    good = cert.level in ("moderate", "high")
    lo, hi = r.ci_low, r.ci_high
    m = mid if mid is not None else 0.0
    if t.expect == "benefit":
        if hi < 0 and good:
            v = "supported"
        elif (lo > -m and good) or lo > 0:
            v = "not supported"
        else:
            v = "uncertain"
    else:  # no_important_benefit
        if lo > -m and good:
            v = "supported"
        elif hi < -m:
            v = "not supported"
        else:
            v = "uncertain"
    size = ""
    if mid is not None:
        size = (" - smaller than the minimal important difference of " if abs(r.estimate) < mid
                else " - at least the minimal important difference of ") + f"{mid:g}"
    expl = (f"{r.k} trial(s), {n:.0f} participants: {r.estimate:+.1f} points on 0-100 (95% CI {lo:.1f} to "
            f"{hi:.1f}){size}; certainty {cert.level}")
    return TestResult(t, v, expl, result=r, certainty=cert, studies=tuple(g["study_id"]), participants=n, mid=mid)


def combine(tests: list[TestResult]) -> str:
    verdicts = [t.verdict for t in tests]
    testable = [v for v in verdicts if v != VERDICTS[3]]
    if not testable:
        return VERDICTS[3]
    if "not supported" in testable:
        return "not supported"
    if all(v == "supported" for v in verdicts):
        return "supported"
    return "uncertain"


WORDING = {
    "supported": "The trials support this claim.",
    "not supported": "The trials do not support this claim.",
    "uncertain": "The trials leave this uncertain: the evidence is too limited or too imprecise to say.",
    "not testable with this evidence": "This claim cannot be tested with the evidence bundled here.",
}


def evaluate_claims(frame: pd.DataFrame, config: A.AnalysisConfig | None = None, claims: list[Claim] | None = None,
                    overrides: grade.Overrides | None = None) -> list[ClaimResult]:
    config = config or A.load_config()
    claims = claims if claims is not None else load_claims()
    out = []
    for c in claims:
        if not c.tests:
            out.append(ClaimResult(c, VERDICTS[3], c.not_testable or WORDING[VERDICTS[3]]))
            continue
        tests = [evaluate_test(frame, t, config, overrides) for t in c.tests]
        v = combine(tests)
        extra = ""
        if v == "uncertain" and any(t.verdict == VERDICTS[3] for t in tests):
            extra = " Part of the claim could not be tested with this evidence."
        out.append(ClaimResult(c, v, WORDING[v] + extra, tuple(tests)))
    return out

"""Clinic claims checked against the evidence: each claim maps to analyses (``data/claims.toml``, each mapping
with its reason), each analysis gets a pooled result (by the rule for few trials), a certainty rating, a GRADE
statement and a verdict; the claim gets a verdict from its tests. The rules are those of the analysis plan
(``docs/methods.md`` sections 8 and 9); T is the between-group important difference of the outcome, and
negative differences favour the first-named care.

A test expecting ``benefit``: **supported** when the estimate is an important benefit (<= -T) with moderate or
high certainty; **not supported** when it is little or no difference or a harm with moderate or high certainty;
**uncertain** at low or very low certainty. ``no_important_benefit``: the mirror image. ``worse`` (the second
care is importantly better): supported when the estimate is >= +T with moderate or high certainty. Without a T (SMD-only
analyses) a benefit is "shown" when the CI excludes no effect; its importance is not judged.
A ``fades`` test (the change from short to long term within trials, at the assumed correlation and across the
sensitivity range): **supported** when every interval lies above zero, **not supported** when every one lies
below, otherwise **uncertain**. No trial: **not testable**.

A claim is **supported** when every test is (a ``context`` test, an indirect answer, cannot decide a claim
alone: when no direct test can be run, the claim is uncertain); **not supported** when none is supported and at least one is not
supported; **partly supported** when some tests are supported and others are not, are uncertain or cannot be
tested; **uncertain** when no test is supported or not supported; **not testable** when no test can be run.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from ..evidence.tomlfile import read_toml
from ..stats.pooling import PoolResult
from . import analysis as A
from . import grade
from . import harms as H

RULES = (
    "Each claim is tested on the comparisons that answer it, each mapping stated in the claims file with its "
    "reason; sham and pragmatic controls (usual care, advice, wait list) are never pooled for a verdict.",
    "A test expecting a benefit is supported when the estimate is at least the important difference between groups "
    "with moderate or high certainty; not supported when it shows little or no difference (or harm) with moderate "
    "or high certainty; uncertain when the certainty is low or very low. A test expecting no important benefit is "
    "the mirror image.",
    "A claim that an effect is short-lived is checked within trials that report both windows (the change from "
    "short to long term, with the correlation between a trial's two estimates assumed and varied): supported only "
    "when the difference shrinks at every assumed correlation.",
    "A claim is supported when all its tests are; not supported when none is and at least one is not; partly "
    "supported when some are and others are not, are uncertain or cannot be tested; uncertain when no test is "
    "supported or not supported; not testable when none of its tests can be run.",
)
SUPPORTED, PARTLY, NOT_SUPPORTED, UNCERTAIN, NOT_TESTABLE = (
    "supported", "partly supported", "not supported", "uncertain", "not testable")
VERDICTS = (SUPPORTED, PARTLY, NOT_SUPPORTED, UNCERTAIN, NOT_TESTABLE)
EXPECTS = ("benefit", "no_important_benefit", "worse", "fades", "fades_more", "no_serious_harm", "describe")
#: harm tests (docs/methods.md section 13): comparisons of harms.csv and the within-arm description
HARM_EXPECTS = ("no_serious_harm", "describe")
HARM_TEST_COMPARISONS = tuple(H.HARM_COMPARISONS) + ("manual_therapy_arms",)


@dataclass(frozen=True)
class ClaimTest:
    comparison: str
    outcome: str
    window: str
    expect: str
    population: tuple[str, ...] = ()
    technique: tuple[str, ...] = ()
    why: str = ""
    minus: str = ""  # short_vs_long only: compare this comparison's change over time with another's
    context: bool = False  # answers the claim only indirectly: shown, but cannot decide the verdict alone

    def describe(self) -> str:
        if self.expect in HARM_EXPECTS:
            what = H.EVENT_LABELS.get(self.outcome, self.outcome)
            if self.comparison == "manual_therapy_arms":
                return f"how often people given manual therapy have {what}"
            f, s, _ = H.HARM_COMPARISONS.get(self.comparison, (self.comparison, "", ()))
            return f"{what}, {f} vs {s}, any time during the trial"
        first, second = A.COMPARISON_LABELS.get(self.comparison, (self.comparison, ""))
        where = {"short": "in the short term (up to 3 months)", "intermediate": "at 3 to 12 months",
                 "long": "in the long term (12 months or more)",
                 "short_vs_long": "from short to long term"}.get(self.window, self.window)
        extra = []
        if self.population:
            extra.append(f"{' or '.join(self.population)} back pain")
        if self.technique:
            extra.append(f"{' or '.join(t.replace('_', ' ') for t in self.technique)} techniques")
        ex = f" ({', '.join(extra)})" if extra else ""
        if self.minus:
            f2, s2 = A.COMPARISON_LABELS.get(self.minus, (self.minus, ""))
            return (f"change {where} of {first} vs {second}, against that of {f2} vs {s2}, {self.outcome}{ex}")
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
    statement: str = ""
    category: str = ""
    harm: object | None = None  # HarmAnalysis or ProportionPoolResult for harm tests


@dataclass(frozen=True)
class ClaimResult:
    claim: Claim
    verdict: str
    explanation: str
    tests: tuple[TestResult, ...] = field(default_factory=tuple)
    #: tests for subgroup differences between tests that differ only by population (e.g. acute vs chronic)
    subgroup_tests: tuple[dict, ...] = ()
    #: analyses shown as context, never part of the verdict (the between-trial dose regression for dose claims)
    context: tuple[dict, ...] = ()


def load_claims(path: str | Path | None = None, vocabulary=None) -> list[Claim]:
    """Read the claims file (TOML); ``None`` gives the package's nine clinic claims. ``vocabulary``: a review's
    own vocabulary, whose comparisons the claims may then test (docs/methods.md section 18)."""
    spec, src = read_toml(path, "claims.toml")
    claims, problems = [], []
    known = set(A.comparison_order(vocabulary))
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
            if t["expect"] in HARM_EXPECTS or (t["comparison"] in HARM_TEST_COMPARISONS
                                               and t["comparison"] not in known):
                problem = _harm_test_problem(t)
                if problem:
                    problems.append(f"claim {c['id']} test {j}: {problem}")
                    continue
                tests.append(ClaimTest(t["comparison"], t["outcome"], t["window"], t["expect"], (), (),
                                       str(t.get("why", "")), "", bool(t.get("context", False))))
                continue
            if t["comparison"] not in known:
                problems.append(f"claim {c['id']} test {j}: unknown comparison {t['comparison']!r} "
                                f"(known: {', '.join(sorted(known))})")
                continue
            if t["comparison"] in A.views_of(vocabulary):
                problems.append(f"claim {c['id']} test {j}: {t['comparison']!r} pools sham with usual care, advice "
                                "and wait list, which answer different questions; test the claim on "
                                f"{t['comparison'].replace('_control', '_sham')!r} and/or "
                                f"{t['comparison'].replace('_control', '_pragmatic')!r} (docs/methods.md section 1)")
                continue
            minus = str(t.get("minus", ""))
            if minus and (minus not in known or minus in A.ANY_CONTROL_VIEWS or t["window"] != "short_vs_long"
                          or t["expect"] != "fades_more"):
                problems.append(f"claim {c['id']} test {j}: minus = {minus!r} needs window = \"short_vs_long\", "
                                "expect = \"fades_more\" and a known comparison other than an any-control view")
                continue
            if (t["expect"] == "fades_more") != bool(minus):
                problems.append(f"claim {c['id']} test {j}: expect = \"fades_more\" goes with minus = "
                                "\"<comparison>\" (the change it is compared with)")
                continue
            if t["expect"] not in EXPECTS:
                problems.append(f"claim {c['id']} test {j}: expect must be one of {', '.join(EXPECTS)}")
                continue
            tests.append(ClaimTest(t["comparison"], t["outcome"], t["window"], t["expect"],
                                   _as_tuple(t.get("population")), _as_tuple(t.get("technique")),
                                   str(t.get("why", "")), minus, bool(t.get("context", False))))
        if not tests and not c.get("not_testable"):
            problems.append(f"claim {c['id']}: give at least one [[claim.test]] or a not_testable reason")
        claims.append(Claim(int(c["id"]), str(c["text"]), tuple(tests), str(c.get("not_testable", ""))))
    if problems:
        raise ValueError(f"{src}: " + "; ".join(problems))
    return claims


def _harm_test_problem(t: dict) -> str:
    from ..evidence.schema import EVENT_TYPES

    if t["expect"] not in HARM_EXPECTS:
        return f"{t['comparison']!r} is a harms comparison: expect must be one of {', '.join(HARM_EXPECTS)}"
    if t["comparison"] not in HARM_TEST_COMPARISONS:
        return (f"expect = {t['expect']!r} needs comparison one of {', '.join(HARM_TEST_COMPARISONS)}; got "
                f"{t['comparison']!r}")
    if t["outcome"] not in EVENT_TYPES:
        return f"a harms test needs outcome one of {', '.join(EVENT_TYPES)}; got {t['outcome']!r}"
    if t["expect"] == "describe" and (t["comparison"] != "manual_therapy_arms" or not t.get("context")):
        return ("expect = \"describe\" (how common an event is with manual therapy) goes with comparison = "
                "\"manual_therapy_arms\" and context = true: a description cannot decide a claim")
    if t["expect"] == "no_serious_harm" and t["comparison"] == "manual_therapy_arms":
        return "expect = \"no_serious_harm\" needs a comparison against arms without manual therapy or sham"
    return ""


def _as_tuple(value) -> tuple[str, ...]:
    if value is None or value == "":
        return ()
    return (str(value),) if isinstance(value, str) else tuple(str(v) for v in value)


def _filter(frame: pd.DataFrame, t: ClaimTest, used_only: bool = True) -> pd.DataFrame:
    f = frame[(frame["comparison"] == t.comparison) & (frame["outcome"] == t.outcome)]
    if used_only:
        f = f.loc[f["used"].astype(bool)]
    if t.population:
        f = f[f["population"].isin(t.population)]
    if t.technique:
        mask = np.array([any(A.has_technique(x, tok) for tok in t.technique) for x in f["technique1"].fillna("")],
                        dtype=bool)
        f = f.loc[mask] if len(f) else f
    return f


def _test_verdict(expect: str, category: str, level: str) -> str:
    good = level in ("moderate", "high")
    if not good:
        return UNCERTAIN
    if expect == "benefit":
        return SUPPORTED if category in ("benefit", "shown") else NOT_SUPPORTED if category in ("little", "harm") \
            else UNCERTAIN
    if expect == "worse":
        return SUPPORTED if category == "harm" else NOT_SUPPORTED if category in ("little", "benefit", "shown") \
            else UNCERTAIN
    return SUPPORTED if category in ("little", "harm") else NOT_SUPPORTED if category == "benefit" else UNCERTAIN


def _interval_verdict(rows: pd.DataFrame) -> str:
    """A change over time, at every assumed correlation: supported when every interval lies above zero, not
    supported when every one lies below, otherwise uncertain."""
    if (rows["ci_low"] > 0).all():
        return SUPPORTED
    if (rows["ci_high"] < 0).all():
        return NOT_SUPPORTED
    return UNCERTAIN


def _evaluate_harm(t: ClaimTest, harms: H.HarmsResult | None) -> TestResult:
    """Harm tests (docs/methods.md section 13): never "supported" from trials alone."""
    what = H.EVENT_LABELS.get(t.outcome, t.outcome)
    if t.expect == "describe":
        p = harms.proportions.get(t.outcome) if harms is not None else None
        if p is None:
            return TestResult(t, NOT_TESTABLE, f"no trial reports {what} among people given manual therapy as "
                              "counts of participants")
        k = p.fit.k
        pi = (f"; in a new trial between {100 * p.pi_low:.0f} and {100 * p.pi_high:.0f} in 100 (prediction interval)"
              if k >= 3 else "")
        expl = (f"{k} trial(s), {int(p.studies['n'].sum())} people given manual therapy: about {100 * p.proportion:.0f} "
                f"in 100 had {what} (95% CI {100 * p.ci_low:.0f} to {100 * p.ci_high:.0f}{pi}; Freeman-Tukey, "
                "REML). Context: how common it is, not whether it is mild or settles quickly.")
        return TestResult(t, UNCERTAIN, expl, studies=tuple(p.fit.labels), harm=p)
    a = harms.get(t.comparison, t.outcome) if harms is not None else None
    if a is None or a.k == 0:
        f, s, _ = H.HARM_COMPARISONS[t.comparison]
        extra = (" " + H.serious_sentence(harms.serious)) if harms is not None and harms.serious else ""
        return TestResult(t, NOT_TESTABLE, f"no trial reports {what} per arm as counts for {f} vs {s}.{extra}")
    rr = a.rr
    n = float(a.tables["n1"].sum() + a.tables["n2"].sum())
    if rr is not None and np.isfinite(rr.estimate) and rr.ci_low > 0:
        v = NOT_SUPPORTED
        st = f"{what} are more frequent with manual therapy"
    else:
        v = UNCERTAIN
        st = ("no difference can be shown, and trials of this size cannot show that rare serious harms do not happen"
              if t.outcome == "serious_adverse_event" else "no difference can be shown")
    expl = a.text() + ". " + (H.serious_sentence(harms.serious) if t.outcome == "serious_adverse_event" else "")
    return TestResult(t, v, expl.strip(), studies=tuple(a.tables["study_id"]), participants=n, statement=st,
                      harm=a)


def evaluate_test(frame: pd.DataFrame, t: ClaimTest, config: A.AnalysisConfig,
                  overrides: grade.Overrides | None = None, harms: H.HarmsResult | None = None) -> TestResult:
    if t.expect in HARM_EXPECTS:
        return _evaluate_harm(t, harms)
    mid = config.important_difference.get(t.outcome)
    f = _filter(frame, t)
    first, second = A.COMPARISON_LABELS.get(t.comparison, (t.comparison, "its comparator"))
    if t.window == "short_vs_long" and t.minus:
        return _evaluate_fades_more(frame, t, config, mid)
    if t.window == "short_vs_long":
        sl = A.short_vs_long(f, t.comparison, t.outcome, config)
        if sl.within is None:
            return TestResult(t, NOT_TESTABLE, "no trial reports both the short and the long term for this "
                              "analysis", change=sl)
        s = sl.sensitivity
        v = _interval_verdict(s)
        w = sl.within
        expl = (f"within {w.k} trial(s) the difference changes by {w.estimate:+.1f} points from short to long term "
                f"(95% CI {w.ci_low:.1f} to {w.ci_high:.1f}, correlation assumed {sl.correlation:g}; range of "
                f"assumptions {s['correlation'].min():g} to {s['correlation'].max():g})")
        return TestResult(t, v, expl, result=w, studies=tuple(sl.trials["study_id"]), mid=mid, change=sl)
    g = f[f["window"] == t.window].sort_values("study_id")
    if g.empty:
        tried = _filter(frame, t, used_only=False)
        tried = tried[(tried["window"] == t.window) & ~tried["used"]]
        who = f" of {' or '.join(t.population)} back pain" if t.population else ""
        if len(tried):
            why = "; ".join(sorted({f"{r.study_id}: {r.why_not}" for r in tried.itertuples()}))
            return TestResult(t, NOT_TESTABLE, f"trials{who} report this comparison but none can be used ({why})",
                              mid=mid)
        others = frame[(frame["comparison"] == t.comparison) & (frame["outcome"] == t.outcome)
                       & (frame["window"] == t.window) & frame["used"]]
        extra = (f" ({others['study_id'].nunique()} trial(s) of other populations or techniques do)"
                 if len(others) and (t.population or t.technique) else "")
        return TestResult(t, NOT_TESTABLE, f"no trial{who} in this evidence reports this comparison{extra}", mid=mid)
    r = A.pool_analysis(g["yi"].to_numpy(float), g["vi"].to_numpy(float), list(g["study_id"]), config)
    cert = grade.certainty(grade.propose(g, r, mid), (t.comparison, t.outcome, t.window), overrides)
    n = float(np.nansum(g["n1"].to_numpy(float)) + np.nansum(g["n2"].to_numpy(float)))
    cat = grade.size_category(r.estimate, r.ci_low, r.ci_high, mid)
    v = _test_verdict(t.expect, cat, cert.level)
    when = {"short": "at up to 3 months", "intermediate": "at 3 to 12 months",
            "long": "at 12 months or more"}.get(t.window, "")
    outcome_word = {"disability": "function and disability"}.get(t.outcome, t.outcome.replace("_", " "))
    st = grade.statement(cat, cert.level, outcome_word, first, second, when)
    size = ("no between-group important difference is set for this outcome, so its size is not judged"
            if mid is None else f"the important difference between groups is {mid:g} points")
    complete = np.isfinite(g[["n1", "n2"]].to_numpy(float)).all()
    people = ("participants not reported" if n <= 0 else f"{n:.0f} participants" if complete
              else f"at least {n:.0f} participants (some group sizes not reported)")
    n_trials = A.trial_count(g["study_id"])
    split = f" ({r.k} comparisons: a shared arm split)" if r.k > n_trials else ""
    expl = (f"{n_trials} trial(s){split}, {people}: {r.estimate:+.1f} points on 0-100 (95% CI {r.ci_low:.1f} to "
            f"{r.ci_high:.1f}); {size}; certainty {cert.level}. {st}")
    return TestResult(t, v, expl, result=r, certainty=cert, studies=tuple(g["study_id"]), participants=n, mid=mid,
                      statement=st, category=cat)


def _evaluate_fades_more(frame: pd.DataFrame, t: ClaimTest, config: A.AnalysisConfig, mid) -> TestResult:
    """Does the first comparison's effect fade more than the second's (claim 2: manual therapy's against
    exercise's)? The difference of the two within-trial changes, at every assumed correlation."""
    f = _filter(frame, t)
    other = ClaimTest(t.minus, t.outcome, t.window, t.expect, t.population, t.technique)
    a = A.short_vs_long(f, t.comparison, t.outcome, config)
    b = A.short_vs_long(_filter(frame, other), t.minus, t.outcome, config)
    d = A.difference_of_changes(a, b)
    if d.empty:
        missing = [c for c, sl in ((t.comparison, a), (t.minus, b)) if sl.within is None]
        return TestResult(t, NOT_TESTABLE, "no trial reports both the short and the long term for "
                          + " and ".join(A.COMPARISON_LABELS.get(c, (c, ""))[0] + " vs "
                                         + A.COMPARISON_LABELS.get(c, ("", c))[1] for c in missing), mid=mid)
    v = _interval_verdict(d)
    main = d.iloc[(d["correlation"] - config.correlation).abs().argmin()]
    shared = f"; trials in both: {main['shared']} (the interval is then too narrow)" if main["shared"] else ""
    expl = (f"the change from short to long term differs by {main['estimate']:+.1f} points (95% CI "
            f"{main['ci_low']:.1f} to {main['ci_high']:.1f}; {int(main['k_a'])} and {int(main['k_b'])} trial(s); "
            f"correlation assumed {config.correlation:g}, range {d['correlation'].min():g} to "
            f"{d['correlation'].max():g}){shared}")
    return TestResult(t, v, expl, result=a.within, mid=mid, change=a,
                      studies=tuple(sorted(set(a.trials["study_id"]) | set(b.trials["study_id"]))))


def combine(tests: list[TestResult]) -> str:
    """The claim's verdict from its tests' (rule in the module docstring). Context tests (indirect answers)
    count only beside a direct test that can be run: with none, the claim is uncertain."""
    direct = [t for t in tests if not t.test.context]
    if direct and all(t.verdict == NOT_TESTABLE for t in direct) and any(
            t.verdict != NOT_TESTABLE for t in tests if t.test.context):
        return UNCERTAIN
    verdicts = [t.verdict for t in tests]
    if all(v == NOT_TESTABLE for v in verdicts):
        return NOT_TESTABLE
    if all(v == SUPPORTED for v in verdicts):
        return SUPPORTED
    if SUPPORTED in verdicts:
        return PARTLY
    if NOT_SUPPORTED in verdicts:
        return NOT_SUPPORTED
    return UNCERTAIN


WORDING = {
    SUPPORTED: "The trials support this claim.",
    PARTLY: "The trials support part of this claim, not all of it.",
    NOT_SUPPORTED: "The trials do not support this claim: where they answer it, they show little or no important "
                   "difference, or the opposite.",
    UNCERTAIN: "The trials leave this uncertain: the evidence is too limited or too imprecise to say.",
    NOT_TESTABLE: "This claim cannot be tested with this evidence.",
}


def _dose_context(d) -> dict:
    c = d.slope()
    return {"analysis": "between-trial dose regression (context only)", "comparison": d.comparison,
            "outcome": d.outcome, "window": d.window, "k": d.k, "comparisons": len(d.trials),
            "per_session": None if c is None else float(c["estimate"]),
            "ci_low": None if c is None else float(c["ci_low"]), "ci_high": None if c is None else float(c["ci_high"]),
            "not_estimated_because": d.reason if c is None else None, "text": d.text()}


def evaluate_claims(frame: pd.DataFrame, config: A.AnalysisConfig | None = None, claims: list[Claim] | None = None,
                    overrides: grade.Overrides | None = None, harms: H.HarmsResult | None = None,
                    dose_context: list | None = None, durability_context: list | None = None) -> list[ClaimResult]:
    """Verdicts for every claim. ``frame`` is the comparison frame (with the dose rows of ``dose.dose_frame`` for
    claim 9); ``harms`` the result of ``harms.analyse_harms`` (claim 8); ``dose_context`` the between-trial
    ``dose.DoseRegression`` results, shown beside every claim with a ``more_vs_fewer_sessions`` test as context
    (never part of its verdict); ``durability_context`` the network-over-time answers (``network.durability_context``),
    shown beside every claim with a short-vs-long test, likewise never part of its verdict."""
    config = config or A.load_config()
    claims = claims if claims is not None else load_claims()
    out = []
    for c in claims:
        if not c.tests:
            out.append(ClaimResult(c, NOT_TESTABLE, c.not_testable or WORDING[NOT_TESTABLE]))
            continue
        tests = [evaluate_test(frame, t, config, overrides, harms) for t in c.tests]
        v = combine(tests)
        extra = ""
        if v in (UNCERTAIN, PARTLY, NOT_SUPPORTED) and any(t.verdict == NOT_TESTABLE for t in tests):
            extra = " Part of the claim could not be tested with this evidence."
        context = ()
        if dose_context and any(t.comparison == "more_vs_fewer_sessions" for t in c.tests):
            context = tuple(_dose_context(d) for d in dose_context)
        if durability_context and any(t.window == "short_vs_long" for t in c.tests):
            context += tuple(durability_context)
        out.append(ClaimResult(c, v, WORDING[v] + extra, tuple(tests), population_differences(tests), context))
    return out


def population_differences(tests: list[TestResult]) -> tuple[dict, ...]:
    """For tests of one comparison, outcome and window that differ only by population: the test for a difference
    between those populations (docs/methods.md section 9). Separate verdicts cannot show that an effect differs."""
    groups: dict[tuple, list[TestResult]] = {}
    for t in tests:
        if t.test.population and t.result is not None and t.test.window != "short_vs_long":
            key = (t.test.comparison, t.test.outcome, t.test.window, t.test.technique)
            groups.setdefault(key, []).append(t)
    out = []
    for (comp, outcome, window, _tech), ts in groups.items():
        labels = {" or ".join(t.test.population): t.result for t in ts}
        if len(labels) < 2:
            continue
        d = A.subgroup_difference(labels)
        first, second = A.COMPARISON_LABELS.get(comp, (comp, ""))
        est = "; ".join(f"{g}: {labels[g].estimate:+.1f} ({labels[g].ci_low:.1f} to {labels[g].ci_high:.1f})"
                        for g in d["groups"])
        out.append({"comparison": comp, "outcome": outcome, "window": window, "groups": d["groups"],
                    "q": d["q"], "df": d["df"], "p": d["p"],
                    "text": (f"Does the effect differ by population? {first} vs {second}, {outcome}, {window}: {est}; "
                             f"test for subgroup differences Q = {d['q']:.2f} on {d['df']} df, p = {d['p']:.3f}. "
                             "Few trials per group make this test weak: a large p-value does not show the effects "
                             "are the same.")})
    return tuple(out)

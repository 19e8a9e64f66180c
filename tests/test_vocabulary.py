"""A review's own vocabulary (docs/methods.md section 18): validation, comparisons, build and the report follow the
treatments, outcomes and populations it declares.

The review here is SYNTHETIC (made-up trials of acupuncture, built so that every answer is known); it never
reaches a bundled report.
"""

from __future__ import annotations

import textwrap
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from mt_evidence.evidence import schema
from mt_evidence.evidence.io import check_path, load_evidence
from mt_evidence.evidence.vocabulary import (VocabularyError, default_vocabulary, load_vocabulary,
                                             vocabulary_from_spec)
from mt_evidence.synthesis import analysis as A
from mt_evidence.synthesis import network as SN

REVIEW = textwrap.dedent('''
    [review]
    title = "Acupuncture for neck pain (SYNTHETIC test review)"
    primary_outcomes = ["pain", "mental_health"]

    [treatments]
    acupuncture = { label = "acupuncture", role = "active" }
    massage = { label = "massage", role = "active" }
    sham_needling = { label = "sham needling", role = "control", group = "sham" }
    usual_care = { label = "usual care", role = "control", group = "pragmatic" }
    advice = { label = "advice", role = "control", group = "pragmatic" }

    [groups]
    pragmatic = "usual care or advice"

    [outcomes]
    pain = "neck pain"
    mental_health = "mental health"

    [populations]
    chronic = "chronic neck pain"
''')

STUDIES = ["study_id,citation,year,population,sources,note",
           "SynA2020,SYNTHETIC A (not a real study),2020,chronic,https://example.org/a,synthetic",
           "SynB2021,SYNTHETIC B (not a real study),2021,chronic,https://example.org/b,synthetic",
           "SynC2022,SYNTHETIC C (not a real study),2022,chronic,https://example.org/c,synthetic"]
ARMS_HEAD = ("study_id,arm,intervention,outcome,instrument,scale_min,scale_max,higher_is_worse,timepoint_weeks,"
             "value_type,n,mean,sd,source_url,source_location")


def arm(study, name, intervention, outcome, mean, sd=20, n=50, week=8, instrument="VAS", lo=0, hi=100, hiw="true"):
    return (f"{study},{name},{intervention},{outcome},{instrument},{lo},{hi},{hiw},{week},final,{n},{mean},{sd},"
            f"https://example.org/{study.lower()},Table 2")


def write_review(folder: Path, arms: list[str], review: str | None = REVIEW) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "studies.csv").write_text("\n".join(STUDIES) + "\n")
    (folder / "arms.csv").write_text("\n".join([ARMS_HEAD] + arms) + "\n")
    if review is not None:
        (folder / "review.toml").write_text(review)
    return folder


# known answers: the usual-care arm is listed first in the file, yet acupuncture (declared first) is the first-named
# care, so each difference is acupuncture minus its comparator: 40 - 50 = -10 (A), 42 - 47 = -5 (B); massage
# against sham needling 45 - 48 = -3 (C); mental health (higher is better) 70 vs 55: oriented so that negative
# favours acupuncture, -15 (SE 4: its CI excludes no effect).
ARMS = [
    arm("SynA2020", "uc", "usual_care", "pain", 50),
    arm("SynA2020", "acu", "acupuncture", "pain", 40),
    arm("SynA2020", "uc", "usual_care", "mental_health", 55, hiw="false"),
    arm("SynA2020", "acu", "acupuncture", "mental_health", 70, hiw="false"),
    arm("SynB2021", "adv", "advice", "pain", 47),
    arm("SynB2021", "acu", "acupuncture", "pain", 42),
    arm("SynC2022", "sham", "sham_needling", "pain", 48),
    arm("SynC2022", "mas", "massage", "pain", 45),
]


@pytest.fixture()
def review(tmp_path):
    return write_review(tmp_path / "review", ARMS)


def test_the_default_vocabulary_is_the_package_question():
    v = default_vocabulary()
    assert v.is_default
    assert set(v.treatment_names) == set(schema.INTERVENTIONS)
    assert set(v.outcomes) == set(schema.OUTCOMES)
    assert set(v.populations) == set(schema.POPULATIONS)
    assert set(v.controls) == set(schema.CONTROLS) == set(A.CONTROLS)
    assert {c.name: (c.first, set(c.second)) for c in v.comparisons} == {
        k: (f, set(s)) for k, (f, s) in A.COMPARISONS.items() if k != "more_vs_fewer_sessions"}
    assert {c.name: c.labels for c in v.comparisons} == {
        k: A.COMPARISON_LABELS[k] for k in A.COMPARISONS if k != "more_vs_fewer_sessions"}
    assert set(v.views()) == set(A.ANY_CONTROL_VIEWS)
    assert v.network_nodes == tuple(n for n in v.treatment_names if n != "other")
    assert set(v.network_nodes) == set(SN.NODES)


def test_validation_follows_the_declared_vocabulary(review, tmp_path):
    assert check_path(review) == ([], [])
    ev = load_evidence(review)
    assert not ev.vocabulary.is_default and ev.vocabulary.title.startswith("Acupuncture")
    # without the review's vocabulary every treatment and outcome it declares is refused
    plain = write_review(tmp_path / "plain", ARMS, review=None)
    problems, _ = check_path(plain)
    cols = {(p.column, p.found) for p in problems}
    assert ("intervention", "'acupuncture'") in cols and ("outcome", "'mental_health'") in cols
    # ... and with it a name it does not declare is refused, naming the declared ones
    bad = write_review(tmp_path / "bad", ARMS + [arm("SynC2022", "x", "cupping", "pain", 44)])
    problems, _ = check_path(bad)
    assert len(problems) == 1 and problems[0].column == "intervention" and problems[0].row == 10
    assert "acupuncture" in problems[0].expected and "sham_needling" in problems[0].expected


def test_a_vocabulary_file_given_explicitly_wins(review, tmp_path):
    other = tmp_path / "other.toml"
    other.write_text(REVIEW.replace('massage = { label = "massage", role = "active" }\n', ""))
    problems, _ = check_path(review, other)
    assert [p.column for p in problems] == ["intervention"]  # SynC2022's massage arm
    assert load_evidence(review).vocabulary.treatment("massage") is not None


def test_comparisons_follow_the_declaration_order_with_known_answers(review):
    ev = load_evidence(review)
    names = [c.name for c in ev.vocabulary.comparisons]
    # default comparisons: each active care against later active cares and against each control group
    assert names == ["acupuncture_vs_massage", "acupuncture_vs_sham", "acupuncture_vs_pragmatic",
                     "massage_vs_sham", "massage_vs_pragmatic"]
    assert ev.vocabulary.comparison_labels("acupuncture_vs_pragmatic") == ("acupuncture", "usual care or advice")
    f = A.comparison_frame(ev)
    got = {(r.study_id, r.comparison, r.outcome): (r.md100, r.control_type) for r in f.itertuples() if r.used}
    assert got == {("SynA2020", "acupuncture_vs_pragmatic", "pain"): (-10.0, "usual_care"),
                   ("SynA2020", "acupuncture_vs_pragmatic", "mental_health"): (-15.0, "usual_care"),
                   ("SynB2021", "acupuncture_vs_pragmatic", "pain"): (-5.0, "advice"),
                   ("SynC2022", "massage_vs_sham", "pain"): (-3.0, "sham_needling")}
    pooled = {(w.comparison, w.outcome): w.result for w in A.pool_windows(f)}
    r = pooled[("acupuncture_vs_pragmatic", "pain")]
    # two trials: the common-effect model; equal SEs, so the plain mean
    assert r.k == 2 and r.estimate == pytest.approx(-7.5, abs=1e-12)
    assert list(pooled) == [("acupuncture_vs_pragmatic", "mental_health"), ("acupuncture_vs_pragmatic", "pain"),
                            ("massage_vs_sham", "pain")]


def test_declared_comparisons_replace_the_default_ones(tmp_path):
    text = REVIEW + textwrap.dedent('''
        [[comparisons]]
        name = "acupuncture_vs_any"
        first = "acupuncture"
        second = ["usual_care", "advice", "sham_needling"]
        labels = ["acupuncture", "any control"]
        view = true
    ''')
    folder = write_review(tmp_path / "r", ARMS, text)
    ev = load_evidence(folder)
    assert [c.name for c in ev.vocabulary.comparisons] == ["acupuncture_vs_any"]
    assert A.views_of(ev.vocabulary) == ("acupuncture_vs_any",)
    f = A.comparison_frame(ev)
    assert set(f["comparison"]) == {"acupuncture_vs_any"}


def test_build_orders_arms_by_the_declaration(review, tmp_path):
    from mt_evidence.evidence.build import build_processed

    res = build_processed(load_evidence(review), tmp_path / "processed")
    e = res.effects.set_index(["study_id", "outcome"])
    assert e.loc[("SynA2020", "pain"), "intervention1"] == "acupuncture"
    assert e.loc[("SynA2020", "pain"), "md"] == pytest.approx(-10.0)
    assert e.loc[("SynC2022", "pain"), "intervention1"] == "massage"


@pytest.mark.parametrize("text, key, words", [
    ('[treatments]\nacu = { lable = "acupuncture" }\n[outcomes]\npain = "pain"\n',
     "treatments.acu.lable", "did you mean 'label'"),
    ('[treatments]\nacu = { role = "experimental" }\n[outcomes]\npain = "pain"\n', "treatments.acu.role",
     "'active' or 'control'"),
    ('[treatments]\nacu = "acupuncture"\n[outcomes]\npain = "pain"\n[comparisons]\nname = "x"\n', "comparisons",
     "[[comparisons]]"),
    ('[treatments]\nacu = "acupuncture"\n[outcomes]\npain = "pain"\n[[comparisons]]\nname = "x"\nfirst = "acu"\n'
     'second = ["placebo"]\n', "comparisons[1].second", "declared treatments"),
    ('[treatment]\nacu = "acupuncture"\n[outcomes]\npain = "pain"\n', "treatment", "did you mean 'treatments'"),
    ('[treatments]\n"acu puncture" = "acupuncture"\n[outcomes]\npain = "pain"\n', "treatments.acu puncture",
     "letters, digits"),
    ('[review]\nprimary_outcomes = ["function"]\n[treatments]\nacu = "a"\n[outcomes]\npain = "pain"\n',
     "review.primary_outcomes", "declared outcomes"),
])
def test_a_broken_vocabulary_names_the_key_and_what_is_allowed(tmp_path, text, key, words):
    f = tmp_path / "review.toml"
    f.write_text(text)
    with pytest.raises(VocabularyError) as err:
        load_vocabulary(f)
    keys = dict(err.value.problems)
    assert key in keys and words in keys[key], err.value.problems
    assert str(f) in str(err.value)


def test_every_problem_of_a_vocabulary_is_reported_at_once(tmp_path):
    spec = {"treatments": {"a": {"role": "x"}, "b": {"lable": "b"}}, "outcomes": {}, "colour": 1}
    with pytest.raises(VocabularyError) as err:
        vocabulary_from_spec(spec, "r.toml")
    assert {k for k, _ in err.value.problems} == {"treatments.a.role", "treatments.b.lable", "outcomes", "colour"}


def test_a_broken_review_file_stops_validation_with_the_file_and_key(review):
    (review / "review.toml").write_text(REVIEW.replace('role = "active" }', 'role = "activ" }', 1))
    problems, _ = check_path(review)
    assert len(problems) == 1
    p = problems[0]
    assert p.file.endswith("review.toml") and p.column == "treatments.acupuncture.role"
    assert "key 'treatments.acupuncture.role'" in str(p)
    (review / "review.toml").write_text("[treatments\n")
    problems, _ = check_path(review)
    assert len(problems) == 1 and "not valid TOML" in problems[0].found


def test_the_report_follows_the_review(review):
    from mt_evidence.reporting.report import _render

    ev = load_evidence(review)
    html, claims, sof, _ = _render(ev, generated="test")
    assert claims == []  # the clinic claims belong to the package's own question
    assert "Acupuncture for neck pain (SYNTHETIC test review)" in html
    assert "No claims were set for this review" in html
    comps = {(r["comparison"], r["outcome"]) for r in sof}
    assert ("acupuncture vs usual care or advice", "pain") in comps
    assert ("acupuncture vs usual care or advice", "mental_health") in comps
    row = next(r for r in sof if r["comparison_id"] == "acupuncture_vs_pragmatic" and r["outcome"] == "pain")
    assert row["estimate"] == pytest.approx(-7.5) and row["k"] == 2
    assert "neck pain" in row["statement"]
    mh = next(r for r in sof if r["comparison_id"] == "acupuncture_vs_pragmatic" and r["outcome"] == "mental_health")
    # no important difference is set for mental health: judged on its CI, and the statement says so
    assert mh["category"] == "shown" and mh["statement"].endswith("(no important difference is set for this outcome)")
    assert "manual therapy" not in html.split("<h2")[1]  # nothing of the package's question on page one


def test_the_network_uses_the_declared_treatments(review):
    ev = load_evidence(review)
    na = SN.analyse_network(ev, "pain", "short")
    assert na.fitted and set(na.result.treatments) == {"acupuncture", "usual_care", "advice"}
    assert na.result.reference == "usual_care"
    eff = na.result.relative_effects.set_index("treatment")
    assert eff.loc["acupuncture", "estimate"] == pytest.approx(-10.0)
    assert np.isfinite(eff.loc["advice", "estimate"])
    assert {d["study"] for d in na.left_out} >= {"SynC2022"}  # massage vs sham: not connected


def test_claims_may_test_the_review_comparisons(review, tmp_path):
    from mt_evidence.synthesis.settings import load_settings

    (tmp_path / "claims.toml").write_text(textwrap.dedent('''
        [[claim]]
        id = 1
        text = "Acupuncture relieves neck pain better than usual care."
        [[claim.test]]
        comparison = "acupuncture_vs_pragmatic"
        outcome = "pain"
        window = "short"
        expect = "benefit"
    '''))
    from importlib import resources

    default = resources.files("mt_evidence").joinpath("data/analysis.toml").read_text()
    (tmp_path / "settings.toml").write_text(default + '\n[report]\nclaims = "claims.toml"\n')
    ev = load_evidence(review)
    s = load_settings(tmp_path / "settings.toml", vocabulary=ev.vocabulary)
    assert [c.id for c in s.claims] == [1]
    with pytest.raises(ValueError, match="unknown comparison"):
        load_settings(tmp_path / "settings.toml")  # the package's vocabulary has no such comparison
    assert load_settings(vocabulary=ev.vocabulary).claims == []
    assert pd.Series(len(load_settings().claims)).item() == 9

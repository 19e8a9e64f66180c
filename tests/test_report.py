"""The clinician report, tested for real: content, escaping, determinism, headless Chromium (no console
errors, no broken images, no network), and the PDF rendered to PNG pages that are not blank."""

import shutil
import re
import subprocess
from html import unescape as html_unescape
from pathlib import Path

import numpy as np
import pytest

import mt_evidence as me
from mt_evidence.synthesis import analysis as A
from mt_evidence.synthesis import claims as C
from mt_evidence.synthesis import grade
from mt_evidence.reporting import report as R

ROOT = Path(__file__).resolve().parents[1]
FIX = Path(__file__).parent / "fixtures" / "synthetic_clean"


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    out = tmp_path_factory.mktemp("report")
    res = R.build_report(None, out)
    return res


def test_report_files_and_sections(built):
    html = built.html_path.read_text()
    for section in ("Key messages", "Claims checked", "Summary of findings", "Short and long term, side by side",
                    "Limitations", "Methods", "Included trials and where every number came from",
                    "Not used, and why"):
        assert section in html
    assert built.pdf_path.exists() and built.pdf_path.read_bytes()[:5] == b"%PDF-"
    for n in range(1, 10):
        assert f"<h3>{n}. " in html  # the nine clinic claims
    assert "<table" in html and "data:image/png;base64," in html
    assert 'src="http' not in html and "<script" not in html  # self-contained, no requests
    assert "Ostelo 2008" in html and "metafor" in html and "sha256" in html
    assert "Does the difference fade or grow" in html and "Naive subgroup test" not in html  # not for clinicians
    assert "Hayden 2021" in html and "Content-Security-Policy" in html
    assert "What it means" in html and ("probably" in html or "may " in html or "very uncertain" in html)
    # a safety section: the plain sentence on rare serious harms, the pooled table, every count with its definition
    assert "Safety: adverse events" in html and "cannot rule out a risk of up to" in html
    assert "Mantel-Haenszel" in html and "Every count, with the trial's definition" in html
    # every trial's risk of bias with its basis: the review's own RoB 2 (both readers shown) or published
    assert "this review's own RoB 2 assessment, two independent readers" in html and "both readers:" in html
    assert "Published:" in html and "Risk of bias: " in html


def test_report_is_deterministic_apart_from_timestamp():
    ev = me.load_evidence()
    a = R.render_html(ev, generated="FIXED")
    b = R.render_html(ev, generated="FIXED")
    assert a == b


def test_strings_from_data_are_escaped(tmp_path):
    d = tmp_path / "ev"
    shutil.copytree(FIX, d)
    p = d / "studies.csv"
    p.write_text(p.read_text().replace("SYNTHETIC trial A (not a real study)", "<script>alert(1)</script>"))
    out = R.build_report(d, tmp_path / "out", pdf=False)
    html = out.html_path.read_text()
    assert "<script>alert(1)</script>" not in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html


def test_failed_report_leaves_the_old_one(tmp_path):
    d = tmp_path / "ev"
    shutil.copytree(FIX, d)
    out = tmp_path / "out"
    R.build_report(d, out, pdf=False)
    before = (out / "index.html").read_bytes()
    (d / "arms.csv").write_text((d / "arms.csv").read_text().replace(",30,6.5,", ",1,6.5,"))
    with pytest.raises(me.EvidenceError):
        R.build_report(d, out, pdf=False)
    assert (out / "index.html").read_bytes() == before


def test_certainty_overrides_are_applied_and_shown(tmp_path):
    ov = tmp_path / "ov.toml"
    ov.write_text('[[override]]\ncomparison = "manual_therapy_vs_control"\noutcome = "disability"\nwindow = "short"\n'
                  'domain = "risk_of_bias"\ndowngrade = 0\nreason = "reviewer judged the trials"\nreviewer = "A.B."\n')
    cfg = tmp_path / "settings.toml"
    default = (ROOT / "src" / "mt_evidence" / "data" / "analysis.toml").read_text()
    cfg.write_text(default + '\n[report]\noverrides = "ov.toml"\n')
    settings = R.load_settings(cfg)
    sof = R.summary_of_findings(me.load_evidence(), settings)
    row = next(r for r in sof if r["comparison_id"] == "manual_therapy_vs_control" and r["outcome"] == "disability"
               and r["window"] == "short")
    assert row["overridden"] and any("override by A.B." in x for x in row["reasons"])
    bad = tmp_path / "bad.toml"
    bad.write_text('[[override]]\ncomparison = "x"\n')
    with pytest.raises(ValueError, match="missing"):
        grade.Overrides.load(bad)


def test_claims_file_is_data_and_extensible(tmp_path):
    claims = C.load_claims()
    assert [c.id for c in claims] == list(range(1, 10))
    extra = tmp_path / "claims.toml"
    extra.write_text('[[claim]]\nid = 10\ntext = "Exercise helps disability at 12 months."\n[[claim.test]]\n'
                     'comparison = "exercise_vs_pragmatic"\noutcome = "disability"\nwindow = "long"\nexpect = "benefit"\n')
    res = C.evaluate_claims(A.comparison_frame(me.load_evidence()), claims=C.load_claims(extra))
    assert res[0].claim.id == 10 and res[0].verdict in C.VERDICTS
    bad = tmp_path / "bad.toml"
    bad.write_text('[[claim]]\nid = 11\ntext = "x"\n[[claim.test]]\ncomparison = "magic_vs_control"\noutcome = "pain"\n'
                   'window = "short"\nexpect = "benefit"\n')
    with pytest.raises(ValueError, match="unknown comparison 'magic_vs_control'"):
        C.load_claims(bad)


def test_verdict_rules():
    def tr(est, lo, hi, level):
        class Res:
            pass

        return est, lo, hi, level

    # a synthetic frame with one clear, precise benefit across several trials (not real data)
    import pandas as pd

    frame = pd.DataFrame({
        "study_id": [f"S{i}" for i in range(6)], "comparison": "manual_therapy_vs_sham", "outcome": "pain",
        "window": "short", "yi": [-30.0, -28, -32, -31, -29, -30], "vi": [4.0] * 6, "n1": [300.0] * 6,
        "n2": [300.0] * 6, "rob_overall": ["low"] * 6, "used": True, "population": "chronic", "technique1": "",
    })
    t = C.ClaimTest("manual_therapy_vs_sham", "pain", "short", "benefit")
    r = C.evaluate_test(frame, t, A.load_config())
    assert r.certainty.level == "high" and r.verdict == "supported"
    t2 = C.ClaimTest("manual_therapy_vs_sham", "pain", "short", "no_important_benefit")
    assert C.evaluate_test(frame, t2, A.load_config()).verdict == "not supported"
    small = frame.assign(yi=[-1.0, 0.5, -0.5, 0.0, 1.0, -0.2])
    assert C.evaluate_test(small, t, A.load_config()).verdict == "not supported"
    assert C.evaluate_test(small, t2, A.load_config()).verdict == "supported"


def test_egger_matches_regression_by_hand():
    rng = np.random.default_rng(4)
    vi = rng.uniform(0.01, 0.3, 12)
    yi = rng.normal(0.2, np.sqrt(vi)) + 0.8 * np.sqrt(vi)
    b0, p = grade.egger_test(yi, vi)
    import statsmodels.api as sm

    fit = sm.OLS(yi / np.sqrt(vi), sm.add_constant(1 / np.sqrt(vi))).fit()
    assert b0 == pytest.approx(fit.params[0]) and p == pytest.approx(fit.pvalues[0])


def test_html_in_headless_chromium(built, tmp_path):
    from playwright.sync_api import sync_playwright

    errors, external = [], []
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=R.chromium_path(), args=R.CHROMIUM_ARGS)
        try:
            for width, name in ((1200, "report-screenshot.png"), (390, "report-screenshot-phone.png")):
                page = browser.new_page(viewport={"width": width, "height": 1600})
                page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
                page.on("pageerror", lambda e: errors.append(str(e)))
                page.on("request", lambda r: external.append(r.url)
                        if not r.url.startswith(("file:", "data:")) else None)
                page.goto(built.html_path.resolve().as_uri(), wait_until="load")
                broken = page.evaluate("Array.from(document.images).filter(i => !i.complete || i.naturalWidth === 0)"
                                       ".length")
                n_images = page.evaluate("document.images.length")
                no_alt = page.evaluate("Array.from(document.images).filter(i => !i.alt).length")
                n_tables = page.evaluate("document.querySelectorAll('table').length")
                sof_rows = page.evaluate("document.querySelectorAll('table.sof tbody tr').length")
                overflow = page.evaluate("document.documentElement.scrollWidth - window.innerWidth")
                assert broken == 0 and n_images >= 3 and no_alt == 0
                assert n_tables >= 5 and sof_rows >= 5
                assert overflow <= 1, f"page wider than a {width}px screen by {overflow}px"
                shot = tmp_path / name  # never in the project's reports/: `make report` owns that folder
                page.screenshot(path=str(shot))
                assert shot.stat().st_size > 10_000
                page.close()
        finally:
            browser.close()
    assert errors == []
    assert external == []


def test_pdf_pages_are_not_blank(built, tmp_path):
    subprocess.run(["pdftoppm", "-r", "30", "-png", str(built.pdf_path), str(tmp_path / "page")], check=True)
    pages = sorted(tmp_path.glob("page*.png"))
    assert len(pages) >= 5
    from PIL import Image

    for p in pages:
        with Image.open(p) as im:
            arr = np.asarray(im.convert("L"), dtype=float)
        assert arr.std() > 5, f"{p.name} looks blank"


def test_pdf_shows_where_every_number_came_from(built, tmp_path):
    """The HTML keeps the provenance behind <details>; the PDF prints it open."""
    import shutil as _sh

    if _sh.which("pdftotext") is None:  # installed with poppler-utils by `make setup`
        pytest.fail("pdftotext (poppler-utils) is needed; run make setup")
    txt = tmp_path / "report.txt"
    subprocess.run(["pdftotext", str(built.pdf_path), str(txt)], check=True)
    text = " ".join(txt.read_text().split())
    ev = me.load_evidence()
    arm = ev.arms.iloc[0]
    assert "Included trials and where every number came from" in text
    assert " ".join(str(arm["source_location"]).split())[:30] in text


def test_range_in_doubt_and_change_score_smd_reach_the_report():
    """Bundled data: Cherkin 2011's RDQ (version not stated) enters manual therapy vs pragmatic control on 0-24 with
    the 0-23 sensitivity analysis shown; Frost 2004's change scores give a change-score SMD beside the MD."""
    ev = me.load_evidence()
    settings = R.load_settings(None)
    frame = A.comparison_frame(ev, settings.analysis)
    ch = frame[frame["study_id"].str.startswith("Cherkin2011") & (frame["comparison"] == "manual_therapy_vs_pragmatic")
               & (frame["outcome"] == "disability") & (frame["window"] == "short")]
    assert len(ch) == 2 and ch["used"].all() and ch["range_assumed"].str.contains("0-24 assumed").all()
    rows = R.sensitivity_rows(frame, settings.analysis)
    row = next(r for r in rows if r["analysis"].startswith("manual therapy vs usual care, advice or wait list, "
                                                           "function") and "up to 3 months" in r["analysis"])
    names = [v["name"] for v in row["variants"]]
    assert "instruments whose range is in doubt taken as 0-23" in names
    assert "instrument ranges printed in the sources only" in names
    sof = R.summary_of_findings(ev, settings)
    long = next(r for r in sof if r["comparison_id"] == "combined_vs_pragmatic" and r["outcome"] == "disability"
                and r["window"] == "long")
    assert long["change_score_smd"].startswith("change scores: SMD") and "1 trial(s)" in long["change_score_smd"]
    text = R.sof_csv(sof).decode()
    assert "change_score_smd" in text.splitlines()[0] and "change scores: SMD" in text


def test_page_one_holds_the_scoreboard_and_the_figure(built, tmp_path):
    """Issue 13: the PDF's first page answers the question: every claim with its verdict, and the figure."""
    txt = tmp_path / "page1.txt"
    subprocess.run(["pdftotext", "-f", "1", "-l", "1", "-layout", str(built.pdf_path), str(txt)], check=True)
    text = " ".join(txt.read_text().split())
    assert "At a glance" in text
    for c in C.load_claims():
        assert f"{c.id}. {c.text.split()[0]}" in text
    assert "Does it last?" in text  # the figure's caption, under the figure
    html = built.html_path.read_text()
    glance = html[html.index('id="glance"'):html.index('id="key"')]
    assert glance.count("data:image/png;base64,") == 1
    rows = R.scoreboard(C.evaluate_claims(A.comparison_frame(me.load_evidence())))
    assert all(r["icon"] in R.VERDICT_ICONS.values() and r["verdict"] in glance for r in rows)
    assert all(r["why"] and r["why"][0].isupper() for r in rows)


def _pdf_pages(pdf: Path, tmp_path: Path) -> list[str]:
    txt = tmp_path / "all.txt"
    subprocess.run(["pdftotext", "-layout", str(pdf), str(txt)], check=True)
    return txt.read_text().split("\f")


def test_the_body_is_at_most_twelve_pages_and_methods_one(built, tmp_path):
    """Issue 13: the main body at most 12 PDF pages, methods on one page, the details after the body; the body
    keeps the tables and figures of the comparisons the claims test and sends the others to the appendix."""
    pages = _pdf_pages(built.pdf_path, tmp_path)
    starts = {}
    for i, p in enumerate(pages, start=1):
        for line in p.splitlines():
            for head in ("Methods", "Appendix: the details behind the body", "More summary-of-findings tables",
                         "Limitations", "Safety: adverse events"):
                if line.strip().startswith(head) and head not in starts:
                    starts[head] = i
    appendix = starts["Appendix: the details behind the body"]
    assert appendix - 1 <= 12, f"body runs to page {appendix - 1}"
    assert starts["Methods"] == appendix - 1  # the methods fill one page, the last of the body
    assert starts["Safety: adverse events"] < appendix and starts["More summary-of-findings tables"] > appendix
    html = built.html_path.read_text()
    body = html[html.index('id="sof"'):html.index('id="appendix"')]
    more = html[html.index('id="more-sof"'):html.index('id="sensitivity"')]
    assert "manual therapy vs usual care, advice or wait list</caption>" in body
    assert "</caption>" in more  # comparisons no claim tests


def test_page_breaks_split_no_table_row_and_no_figure(built, tmp_path):
    """Issue 13: in the PDF every summary-of-findings row stays on one page (its statement and its outcome on the
    same page), and every figure is on the page of its caption."""
    raw = tmp_path / "raw.txt"
    subprocess.run(["pdftotext", "-raw", str(built.pdf_path), str(raw)], check=True)
    pages = [" ".join(p.split()) for p in raw.read_text().split("\f")]
    settings = R.load_settings(None)
    ev = me.load_evidence()
    sof = R.sof_tables(R.summary_of_findings(ev, settings))
    checked = 0
    for g in sof:
        for r in g["rows"]:
            label, statement = f"{r['outcome']}, {r['window_label']}", " ".join(r["statement"].split())
            where = [i for i, p in enumerate(pages) if statement in p]
            if not where:  # a table of the HTML only (an "any control" view)
                continue
            assert any(label in pages[i] for i in where), (label, statement)
            checked += 1
    assert checked >= 10
    listing = subprocess.run(["pdfimages", "-list", str(built.pdf_path)], check=True, capture_output=True,
                             text=True).stdout.splitlines()[2:]
    image_pages = [int(line.split()[0]) for line in listing if line.strip()]
    html = built.html_path.read_text()
    captions = re.findall(r"<figure[^>]*>\s*<img [^>]*>\s*<figcaption>(.*?)</figcaption>", html, flags=re.S)
    printed = [c for c in captions if any(" ".join(html_unescape(c).split())[:130] in p for p in pages)]
    assert len(printed) >= 5 and len(printed) == len(image_pages)  # every printed figure is an image, in order
    for cap, img_page in zip(printed, image_pages):
        head = " ".join(html_unescape(cap).split())[:130]
        page = next(i for i, p in enumerate(pages, start=1) if head in p)
        assert page == img_page, (head, page, img_page)


def test_continued_tables_repeat_their_headings(built, tmp_path):
    """Issue 13: a table that runs over several PDF pages repeats its header row on each (the long "not used"
    tables of the appendix)."""
    pages = _pdf_pages(built.pdf_path, tmp_path)
    start = next(i for i, p in enumerate(pages) if any(line.strip() == "Not used, and why" for line in p.splitlines()))
    continued = [p for p in pages[start + 1:] if p.strip()]
    assert len(continued) >= 2
    for p in continued:
        first = next(line for line in p.splitlines() if line.strip())
        assert first.split()[0] == "Trial", first


def test_limitations_are_computed_from_the_loaded_evidence():
    """Another evidence folder gets sentences about itself (SYNTHETIC fixture: no adverse events, no range in
    doubt), the bundled data about the bundled trials."""
    settings = R.load_settings(None)
    bundled = me.load_evidence()
    for data, harm_text, doubt in ((None, f"{bundled.harms['study_id'].nunique()} of {len(bundled.studies)} trials "
                                          "report them per arm", True),
                                   (ROOT / "tests" / "fixtures" / "synthetic_clean",
                                    "No trial in this evidence reports adverse events per arm", False)):
        ev = me.load_evidence(data)
        frame = A.comparison_frame(ev, settings.analysis)
        text = " ".join(R.limitations(ev, frame, R.summary_of_findings(ev, settings)))
        assert harm_text in text
        assert ("do not say which version of their instrument" in text) is doubt
        assert f"of {len(ev.studies)} trials have an overall judgement" in text


def test_summary_of_findings_reasons_are_footnotes():
    """GRADE layout: each distinct reason for rating down is a lettered footnote of its table, cited beside the
    certainty; the cells hold no reasons."""
    ev = me.load_evidence()
    settings = R.load_settings(None)
    tables = R.sof_tables(R.summary_of_findings(ev, settings))
    assert tables
    for t in tables:
        letters = [f["letter"] for f in t["footnotes"]]
        assert letters == [R._letters(i) for i in range(len(letters))]
        texts = {f["letter"]: f["text"] for f in t["footnotes"]}
        for r in t["rows"]:
            assert all(x in texts for x in r["foot"])
            assert {texts[x] for x in r["foot"]} >= set(r["reasons"])
    assert R._letters(0) == "a" and R._letters(25) == "z" and R._letters(26) == "aa"


def test_no_pdf_page_runs_into_the_right_margin(built, tmp_path):
    """No table or figure wider than the page: on every rendered PDF page the right margin (the last 10 of its
    12 mm) is blank."""
    from PIL import Image

    dpi = 40
    subprocess.run(["pdftoppm", "-r", str(dpi), "-png", str(built.pdf_path), str(tmp_path / "p")], check=True)
    pages = sorted(tmp_path.glob("p*.png"))
    assert pages
    strip = int(10 * dpi / 25.4)
    for p in pages:
        with Image.open(p) as im:
            a = np.asarray(im.convert("L"), dtype=float)
        assert a[:, -strip:].min() > 200, f"{p.name}: something is drawn in the right margin"


def test_page_one_says_when_only_an_indirect_comparison_could_be_run():
    """A claim whose direct comparisons cannot be run is uncertain when an indirect one can (methods section 9);
    its line on page one says so and names the indirect comparison, instead of the first direct test's reason
    (which spoke of one comparison only). Built by hand: no data."""
    direct = [C.ClaimTest("combined_vs_exercise", o, "short", "benefit") for o in ("pain", "disability")]
    ctx = C.ClaimTest("combined_vs_control", "pain", "short", "benefit", context=True)
    tests = tuple([C.TestResult(t, C.NOT_TESTABLE, "no trial in this evidence reports this comparison")
                   for t in direct] + [C.TestResult(ctx, C.UNCERTAIN, "very uncertain")])
    claim = C.Claim(3, "Combined care works better than either alone.", tuple(t.test for t in tests))
    assert C.combine(list(tests)) == C.UNCERTAIN
    (row,) = R.scoreboard([C.ClaimResult(claim, C.UNCERTAIN, "", tests)])
    assert row["why"] == ("No direct comparison could be run; the only one that could, " + ctx.describe()
                          + ", is indirect and cannot decide the claim.")
    assert row["certainty"] == "–" and row["coverage"] == "0 of 2 analyses could be run"
    # with no indirect answer either, the claim cannot be tested and the line gives the direct test's reason
    none = tuple(t for t in tests if not t.test.context)
    (row,) = R.scoreboard([C.ClaimResult(claim, C.combine(list(none)), "", none)])
    assert row["verdict"] == C.NOT_TESTABLE and row["why"] == "No trial in this evidence reports this comparison."

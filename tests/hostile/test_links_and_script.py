"""Hostile sources: no script can run from the report, whatever the evidence files say.

Every address becomes a link only when it is http(s) with a host or a doi: reference; the contract refuses
the rest (naming file, row and column); the renderer checks again; and the page's Content-Security-Policy
forbids script even if markup slipped through. Evidence here is the SYNTHETIC fixture (invented numbers).
"""

import dataclasses
import shutil
from pathlib import Path

import pytest

import mt_evidence as me
from mt_evidence.evidence import links
from mt_evidence.reporting import report as R

FIX = Path(__file__).resolve().parents[1] / "fixtures" / "synthetic_clean"

HOSTILE = [
    "javascript:alert(document.domain)//https://example.org/a",
    "JaVaScRiPt:alert(document.domain)//https://example.org/a",
    "\tjavascript:alert(1)//https://example.org/a",
    "java\tscript:alert(1)//https://example.org/a",
    "java\nscript:alert(1)//https://example.org/a",
    " javascript:alert(1)",
    "vbscript:msgbox(1)//http://example.org",
    "data:text/html,<script>alert(1)</script>//https://example.org",
    "file:///etc/passwd",
    "data/../../../../etc/passwd",
    "https://example.org/\"onmouseover=\"alert(1)",
    "https:/\\example.org",
    "https://",
    "https://user:pass@example.org/",
    "https://exa\u202emple.org/",
]


@pytest.mark.parametrize("value", HOSTILE)
def test_hostile_values_are_never_links(value):
    assert links.safe_href(value) is None


@pytest.mark.parametrize("value,href", [
    ("https://pubmed.ncbi.nlm.nih.gov/12345678/", "https://pubmed.ncbi.nlm.nih.gov/12345678/"),
    ("HTTP://www.bmj.com/content/1", "HTTP://www.bmj.com/content/1"),
    ("http://47.251.13.51:8081/15556", "http://47.251.13.51:8081/15556"),
    ("doi:10.1136/bmj.38282.669225.AE", "https://doi.org/10.1136/bmj.38282.669225.AE"),
])
def test_web_addresses_and_dois_are_links(value, href):
    assert links.safe_href(value) == href


def _problems_for(tmp_path, table, column, value, row_index=0):
    d = tmp_path / "ev"
    shutil.copytree(FIX, d)
    import pandas as pd

    df = pd.read_csv(d / f"{table}.csv", dtype=str, keep_default_na=False)
    df.loc[row_index, column] = value
    df.to_csv(d / f"{table}.csv", index=False)
    return me.validate_path(d)


@pytest.mark.parametrize("value", [v for v in HOSTILE if v.strip()])
def test_contract_refuses_hostile_study_sources(tmp_path, value):
    probs = _problems_for(tmp_path, "studies", "sources", "https://example.org/ok; " + value)
    mine = [p for p in probs if p.column == "sources"]
    assert mine, probs
    assert all(p.file.endswith("studies.csv") and p.row == 2 for p in mine)
    assert any("http" in p.expected for p in mine)


@pytest.mark.parametrize("value", ["javascript:alert(1)//https://example.org/a", "data/../../../../etc/passwd",
                                   "https://exa mple.org", "ftp://example.org/x"])
def test_contract_refuses_hostile_source_urls(tmp_path, value):
    for table in ("arms", "contrasts"):
        probs = _problems_for(tmp_path / table, table, "source_url", value, row_index=1)
        mine = [p for p in probs if p.column == "source_url"]
        assert len(mine) == 1 and mine[0].row == 3 and mine[0].file.endswith(f"{table}.csv"), probs


def test_local_file_sources_are_accepted_as_text(tmp_path):
    """An imported file (RevMan) is a legitimate source: accepted by the contract, shown as text, never a link."""
    probs = _problems_for(tmp_path, "arms", "source_url", "file:/home/reviewer/My review.rm5")
    assert not [p for p in probs if p.column == "source_url"]


def _hostile_evidence():
    """Evidence whose text fields hold hostile addresses, as if a value had slipped past the contract."""
    ev = me.load_evidence(FIX)
    studies = ev.studies.copy()
    studies["sources"] = "; ".join(HOSTILE[:4] + ["https://example.org/fine"])
    arms = ev.arms.copy()
    arms["source_url"] = [HOSTILE[i % len(HOSTILE)] for i in range(len(arms))]
    contrasts = ev.contrasts.copy()
    contrasts["source_url"] = "file:///etc/passwd"
    return dataclasses.replace(ev, studies=studies, arms=arms, contrasts=contrasts)


@pytest.fixture(scope="module")
def hostile_html(tmp_path_factory):
    html = R.render_html(_hostile_evidence(), generated="FIXED")
    path = tmp_path_factory.mktemp("hostile") / "index.html"
    path.write_text(html, encoding="utf-8")
    return path


def test_rendered_links_are_only_http(hostile_html):
    import re

    html = hostile_html.read_text()
    hrefs = re.findall(r'href="([^"]*)"', html)
    assert hrefs, "the report should still link its web sources"
    for h in hrefs:
        assert h.startswith(("#", "http://", "https://")), h
    assert "Content-Security-Policy" in html and "script-src 'none'" in html


def _browser(p):
    return p.chromium.launch(executable_path=R.chromium_path(), args=R.CHROMIUM_ARGS)


def test_no_dialog_fires_when_every_link_is_clicked(hostile_html):
    from playwright.sync_api import sync_playwright

    dialogs, requests = [], []
    with sync_playwright() as p:
        browser = _browser(p)
        try:
            page = browser.new_page()
            page.on("dialog", lambda d: (dialogs.append(d.message), d.dismiss()))
            page.route("**/*", lambda route: (requests.append(route.request.url), route.continue_())
                       if route.request.url.startswith(("file:", "data:")) else route.abort())
            page.goto(hostile_html.as_uri())
            page.evaluate("document.querySelectorAll('details').forEach(d => d.open = true)")
            hrefs = page.eval_on_selector_all("a[href]", "els => els.map(e => e.getAttribute('href'))")
            assert any(h.startswith("http") for h in hrefs)
            page.close()
            for i in range(len(hrefs)):
                page = browser.new_page()  # a fresh page each time: a click navigates away
                page.on("dialog", lambda d: (dialogs.append(d.message), d.dismiss()))
                page.route("**/*", lambda route: route.continue_()
                           if route.request.url.startswith(("file:", "data:")) else route.abort())
                page.goto(hostile_html.as_uri())
                page.evaluate("document.querySelectorAll('details').forEach(d => d.open = true)")
                page.locator("a[href]").nth(i).click(timeout=5000, no_wait_after=True)
                page.wait_for_timeout(20)
                page.close()
            assert dialogs == []
        finally:
            browser.close()


def test_content_security_policy_blocks_script_that_slipped_in(hostile_html, tmp_path):
    """Second line of defence: even markup injected into the page cannot run script."""
    from playwright.sync_api import sync_playwright

    html = hostile_html.read_text()
    injected = html.replace("</h1>", "</h1><script>window.__ran = 1; alert(1)</script>"
                                     "<img src=x onerror=\"window.__ran = 2\">", 1)
    path = tmp_path / "injected.html"
    path.write_text(injected, encoding="utf-8")
    dialogs = []
    with sync_playwright() as p:
        browser = _browser(p)
        try:
            page = browser.new_page()
            page.on("dialog", lambda d: (dialogs.append(d.message), d.dismiss()))
            page.goto(path.as_uri())
            page.wait_for_timeout(100)
            assert page.evaluate("window.__ran === undefined")
        finally:
            browser.close()
    assert dialogs == []

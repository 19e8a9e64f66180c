"""Loaders, validation (every problem, with file/row/column), build (atomic, deterministic), CLI.

Fixtures under tests/fixtures are SYNTHETIC (invented numbers, not trials)."""

import csv
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

import mt_evidence as me
from mt_evidence.evidence import build as mbuild
from mt_evidence.cli import app
from mt_evidence.evidence.io import EvidenceError, load_evidence, read_wide, validate_path



@pytest.fixture
def clean(synthetic_evidence):
    return synthetic_evidence


def edit_csv(path: Path, row: int, **changes):
    """Change cells of data row ``row`` (0-based) of a CSV."""
    rows = list(csv.DictReader(path.open()))
    rows[row].update(changes)
    with path.open("w", newline="") as fh:
        w = csv.DictWriter(fh, fieldnames=list(rows[0]))
        w.writeheader()
        w.writerows(rows)


def test_clean_fixture_loads(clean):
    ev = load_evidence(clean)
    assert len(ev.studies) == 2 and len(ev.arms) == 8 and len(ev.contrasts) == 1
    assert ev.arms["n"].dtype == float and ev.arms["higher_is_worse"].iloc[0] is np.True_ or True
    assert len(ev.data_hash) == 64
    assert validate_path(clean) == []


def test_every_problem_is_reported_with_file_row_column(clean):
    arms = clean / "arms.csv"
    edit_csv(arms, 0, n="1")
    edit_csv(arms, 1, sd="-1")
    edit_csv(arms, 2, intervention="massage")
    edit_csv(arms, 3, timepoint_weeks="3 months")
    edit_csv(arms, 4, mean="12")  # outside 0-10
    edit_csv(arms, 5, ci_low="5", ci_high="6")  # CI not containing the mean 3.4
    edit_csv(arms, 6, study_id="Ghost2000")
    edit_csv(clean / "contrasts.csv", 0, outcome="happiness", estimate="9")
    problems = validate_path(clean)
    text = "\n".join(map(str, problems))
    expected = [
        ("arms.csv", 2, "n"),
        ("arms.csv", 3, "sd"),
        ("arms.csv", 4, "intervention"),
        ("arms.csv", 5, "timepoint_weeks"),
        ("arms.csv", 6, "mean"),
        ("arms.csv", 7, "mean"),
        ("arms.csv", 8, "study_id"),
        ("contrasts.csv", 2, "outcome"),
        ("contrasts.csv", 2, "estimate"),
    ]
    for fname, row, col in expected:
        assert any(Path(p.file).name == fname and p.row == row and p.column == col for p in problems), (
            fname, row, col, text)
    assert "13 (weeks: 3 months" in text
    assert "outside the instrument's range 0-10" in text
    assert "not in studies" in text
    with pytest.raises(EvidenceError) as err:
        load_evidence(clean)
    assert len(err.value.problems) == len(problems)


def test_missing_columns_duplicates_and_unknown_columns(clean):
    df = pd.read_csv(clean / "arms.csv", dtype=str)
    df = df.drop(columns=["source_location"])
    df["mystery"] = "x"
    df = pd.concat([df, df.iloc[[0]]])
    df.to_csv(clean / "arms.csv", index=False)
    problems = validate_path(clean)
    text = "\n".join(map(str, problems))
    assert "column 'source_location': found no such column" in text
    assert "unknown column 'mystery'" in text
    assert "a duplicate of row 2" in text


def test_duplicate_rows_with_empty_cells_are_reported(clean):
    df = pd.read_csv(clean / "arms.csv", dtype=str)
    df.loc[0, "adjusted"] = None  # an empty boolean cell in the duplicate key
    df = pd.concat([df, df.iloc[[0]]])
    df.to_csv(clean / "arms.csv", index=False)
    problems = validate_path(clean)
    assert any("a duplicate of row 2" in p.found for p in problems)


def test_non_utf8_is_reported_with_its_line(clean):
    data = (clean / "studies.csv").read_bytes().replace(b"SYNTHETIC trial A", b"SYNTHETIC caf\xe9 A")
    (clean / "studies.csv").write_bytes(data)
    problems = validate_path(clean)
    assert any("not UTF-8" in p.found and p.row == 2 for p in problems)


def test_excel_workbook_reads_the_same(clean, tmp_path):
    book = tmp_path / "evidence.xlsx"
    with pd.ExcelWriter(book) as xw:
        for t in ("studies", "arms", "contrasts"):
            pd.read_csv(clean / f"{t}.csv", dtype=str).to_excel(xw, sheet_name=t, index=False)
    a = load_evidence(clean)
    b = load_evidence(book)
    pd.testing.assert_frame_equal(a.arms.reset_index(drop=True), b.arms.reset_index(drop=True), check_dtype=False)
    assert validate_path(book) == []


def write_wide(tmp_path, second_row: str):
    """A SYNTHETIC wide sheet (two arms, pain at 3 and 12 months side by side) and its mapping."""
    sheet = tmp_path / "wide.csv"
    sheet.write_text(
        "Study,Group,Category,N 3m,Mean 3m,SD 3m,N 12m,Mean 12m,SD 12m\n"
        "SynthA2020,manip,manual_therapy,29,3.0,2.0,25,3.5,2.2\n"
        f"{second_row}\n"
    )
    mapping = tmp_path / "map.toml"
    mapping.write_text(
        '[columns]\nstudy_id = "Study"\narm = "Group"\nintervention = "Category"\n'
        '[defaults]\nsource_url = "https://example.org/synthetic-a"\nhigher_is_worse = true\nadjusted = false\n'
        '[[measures]]\noutcome = "pain"\ninstrument = "NRS (0-10)"\nscale_min = 0\nscale_max = 10\n'
        'timepoint_weeks = 13\nvalue_type = "final"\nn = "N 3m"\nmean = "Mean 3m"\nsd = "SD 3m"\n'
        '[[measures]]\noutcome = "pain"\ninstrument = "NRS (0-10)"\nscale_min = 0\nscale_max = 10\n'
        'timepoint_weeks = 52\nvalue_type = "final"\nn = "N 12m"\nmean = "Mean 12m"\nsd = "SD 12m"\n'
    )
    return sheet, mapping


def test_wide_sheet_through_mapping(tmp_path):
    sheet, mapping = write_wide(tmp_path, "SynthA2020,exer,exercise,28,4.0,2.0,,,")
    arms = read_wide(sheet, mapping)
    assert len(arms) == 3  # the exercise arm has no 12-month data
    assert set(arms["timepoint_weeks"].astype(float)) == {13.0, 52.0}
    assert (arms["source_location"].str.contains("wide.csv, row")).all()
    bad = tmp_path / "bad.toml"
    bad.write_text(mapping.read_text().replace('mean = "Mean 3m"', 'mean = "Average 3m"'))
    with pytest.raises(EvidenceError, match="'Average 3m', not a column of wide.csv"):
        read_wide(sheet, bad)


def test_build_is_atomic_and_deterministic(clean, tmp_path):
    ev = load_evidence(clean)
    out = tmp_path / "processed"
    res = mbuild.build_processed(ev, out)
    first = {p.name: p.read_bytes() for p in out.iterdir()}
    mbuild.build_processed(load_evidence(clean), out)
    second = {p.name: p.read_bytes() for p in out.iterdir()}
    assert first == second
    assert {"effects.csv", "exclusions.csv", "manifest.json"} <= set(first)
    eff = res.effects
    # manual therapy vs exercise at 4 weeks: 3.0 - 4.0 = -1.0 on 0-10 -> -10 on 0-100, favours manual therapy
    row = eff[(eff["comparison"] == "manual_therapy_vs_exercise") & (eff["timepoint_weeks"] == 4)].iloc[0]
    assert row["md"] == pytest.approx(-1.0) and row["md100"] == pytest.approx(-10.0)
    assert row["md_se"] == pytest.approx(np.sqrt(4 / 29 + 4 / 28))
    assert row["window"] == "short" and row["source_rows"] == "arms.csv:4;arms.csv:5"
    g = me.effect_size("SMD", m1=[3.0], sd1=[2.0], n1=[29], m2=[4.0], sd2=[2.0], n2=[28])
    assert row["smd"] == pytest.approx(g["yi"][0])
    # baseline rows are not comparisons
    assert not (eff["timepoint_weeks"] == 0).any()
    # the contrast is re-oriented: usual care minus combined = +1.5 -> combined vs usual care = -1.5
    c = eff[(eff["source_kind"] == "contrasts")].iloc[0]
    assert c["comparison"] == "combined_vs_usual_care" and c["md"] == pytest.approx(-1.5)
    assert c["window"] == "long"
    # SD derived from SE is flagged
    d = eff[(eff["study_id"] == "SynthB2021") & (eff["source_kind"] == "arms")].iloc[0]
    assert d["derived"] and "SD = SE * sqrt(n)" in d["derivation"]


def test_failed_build_leaves_processed_untouched(clean, tmp_path, monkeypatch):
    out = tmp_path / "processed"
    mbuild.build_processed(load_evidence(clean), out)
    before = {p.name: p.read_bytes() for p in out.iterdir()}
    from mt_evidence.evidence import atomic

    real_open = open

    def failing_open(path, mode="r", *a, **k):
        if "exclusions.csv" in str(path) and "w" in mode:
            raise OSError("disk full (simulated)")
        return real_open(path, mode, *a, **k)

    monkeypatch.setattr("builtins.open", failing_open)
    with pytest.raises(OSError, match="simulated"):
        mbuild.build_processed(load_evidence(clean), out)
    monkeypatch.undo()
    after = {p.name: p.read_bytes() for p in out.iterdir()}
    assert before == after
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".processed")]
    assert atomic  # imported module used by build


def test_cli_validate_build_report(clean, tmp_path):
    runner = CliRunner()
    r = runner.invoke(app, ["validate", str(clean)])
    assert r.exit_code == 0, r.output
    edit_csv(clean / "arms.csv", 0, n="1")
    r = runner.invoke(app, ["validate", str(clean)])
    assert r.exit_code == 1 and "row 2, column 'n'" in r.output
    r = runner.invoke(app, ["build", "--data", str(clean), "--out", str(tmp_path / "p")])
    assert r.exit_code == 1 and not (tmp_path / "p").exists()
    edit_csv(clean / "arms.csv", 0, n="30")
    r = runner.invoke(app, ["report", "--data", str(clean), "--out", str(tmp_path / "rep")])
    assert r.exit_code == 0, r.output
    html = (tmp_path / "rep" / "index.html").read_text()
    assert "SynthA2020" in html and "<table>" in html


def test_report_escapes_strings_from_data(clean, tmp_path):
    edit_csv(clean / "studies.csv", 0, citation="<script>alert(1)</script>")
    me_report = __import__("mt_evidence.reporting.report", fromlist=["build_report"])
    out = me_report.build_report(clean, tmp_path / "rep")
    html = out.html_path.read_text()
    assert "<script>alert(1)</script>" not in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html


def test_template_workbook_and_folder(tmp_path):
    runner = CliRunner()
    r = runner.invoke(app, ["template", str(tmp_path / "extraction.xlsx")])
    assert r.exit_code == 0, r.output
    book = pd.read_excel(tmp_path / "extraction.xlsx", sheet_name=None)
    assert {"studies", "arms", "contrasts", "rob", "dictionary"} <= set(book)
    assert list(book["arms"].columns)[:3] == ["study_id", "arm", "intervention"]
    assert validate_path(tmp_path / "extraction.xlsx") == []
    r = runner.invoke(app, ["template", str(tmp_path / "extraction.xlsx")])
    assert r.exit_code == 1  # never overwrites
    r = runner.invoke(app, ["template", str(tmp_path / "folder")])
    assert r.exit_code == 0 and (tmp_path / "folder" / "arms.csv").exists()
    assert validate_path(tmp_path / "folder") == []


HARMS_HEADER = ("study_id,arm,intervention,technique,event_type,event_label,events,n,unit,definition,timepoint_weeks,"
                "source_url,source_location,derivation,note\n")
DETAILS_HEADER = ("study_id,arm,intervention,technique,sessions,sessions_printed,weeks_of_care,provider,co_intervention,"
                  "co_intervention_differs,source_url,source_location,derivation,note\n")


def test_harms_and_arm_details_load_and_every_problem_is_named(clean):
    (clean / "harms.csv").write_text(
        HARMS_HEADER
        + "SynthA2020,manip,manual_therapy,,serious_adverse_event,,0,30,participants,any serious event,12,"
          "https://example.org/synthetic-a,Table 3,,synthetic\n"
        + "SynthA2020,exer,exercise,,any_adverse_event,,31,30,participants,,,https://example.org/synthetic-a,Table 3,,\n"
        + "SynthA2020,exer,exercise,,bad_type,,2.5,30,people,x,,https://example.org/synthetic-a,Table 3,,\n"
        + "SynthA2020,exer,exercise,,other,,,30,events,,,https://example.org/synthetic-a,Table 3,,\n")
    (clean / "arm_details.csv").write_text(
        DETAILS_HEADER
        + "SynthA2020,manip,manual_therapy,manipulation,6,six sessions,3,chiropractor,,false,"
          "https://example.org/synthetic-a,Methods,,\n"
        + "SynthA2020,manip,manual_therapy,manipulation,6,,3,,,,https://example.org/synthetic-a,Methods,,\n"
        + "SynthA2020,ghost,manual_therapy,,6,,3,,,,https://example.org/synthetic-a,Methods,,\n"
        + "SynthA2020,exer,manual_therapy,,6,,3,,,,https://example.org/synthetic-a,Methods,,\n")
    found = {(Path(p.file).name, p.row, p.column) for p in validate_path(clean)}
    assert ("harms.csv", 3, "events") in found      # 31 participants with an event out of 30
    assert ("harms.csv", 3, "definition") in found  # no definition, no note
    assert ("harms.csv", 4, "event_type") in found and ("harms.csv", 4, "unit") in found
    assert ("harms.csv", 4, "events") in found      # 2.5 is not a count
    assert ("harms.csv", 5, "events") in found      # no count, no note
    assert ("arm_details.csv", 3, "arm") in found   # a second row for the same arm
    assert ("arm_details.csv", 4, "arm") in found   # not an arm of the trial, and no note
    assert ("arm_details.csv", 5, "intervention") in found  # exer is exercise in arms.csv
    assert ("harms.csv", 2, "events") not in found


def test_harms_and_arm_details_reach_the_evidence(clean):
    (clean / "harms.csv").write_text(
        HARMS_HEADER + "SynthA2020,manip,manual_therapy,,serious_adverse_event,,0,30,participants,any serious event,12,"
                       "https://example.org/synthetic-a,Table 3,,synthetic\n")
    (clean / "arm_details.csv").write_text(
        DETAILS_HEADER + "SynthA2020,manip,manual_therapy,manipulation,6,six sessions,3,chiropractor,,false,"
                         "https://example.org/synthetic-a,Methods,,\n")
    ev = load_evidence(clean)
    assert ev.harms["events"].tolist() == [0.0] and ev.arm_details["sessions"].tolist() == [6.0]
    assert ev.arm_details["co_intervention_differs"].tolist() == [False]


def test_wide_sheet_problems_name_the_sheet_row_and_column(tmp_path, clean):
    """A bad value in the wide sheet's row 3 is reported at row 3 and under the sheet's own column name, not at
    its place in the long arms table (SYNTHETIC)."""
    from mt_evidence.evidence.io import validate_tables

    sheet, mapping = write_wide(tmp_path, "SynthA2020,exer,exercise,28,4.0,-2.0,26,3.4,2.1")
    arms = read_wide(sheet, mapping)
    raw = {"arms": arms, "studies": pd.read_csv(clean / "studies.csv", dtype=str),
           "contrasts": pd.read_csv(clean / "contrasts.csv", dtype=str).iloc[0:0]}
    _, problems = validate_tables(raw, {"arms": str(sheet), "studies": "studies.csv", "contrasts": "contrasts.csv"})
    sd = [p for p in problems if p.file == str(sheet) and "SD" in str(p.column)]
    assert sd and sd[0].row == 3 and sd[0].column == "SD 3m", [str(p) for p in problems if p.file == str(sheet)]
    assert not any("x_wide" in str(p) for p in problems)


ROB_HEADER = ("study_id,tool,domain,judgement,judgement_printed,source_url,source_location,review_citation,note,"
              "basis,signalling,reader1,reader2,consensus_note\n")


def _own_rob(study: str, domains: dict[str, str], overall: str, readers=None, consensus="") -> str:
    """Rows of a review's own RoB 2 assessment (SYNTHETIC)."""
    out = ""
    for d, j in domains.items():
        r1, r2 = (readers or {}).get(d, (j, j))
        out += (f"{study},RoB2,{d},{j},,https://example.org/synthetic-a,Methods,own assessment (synthetic),,"
                f"review_own,1.1 Y,{r1},{r2},{consensus}\n")
    return out + (f"{study},RoB2,overall,{overall},,https://example.org/synthetic-a,Methods,own assessment "
                  "(synthetic),,review_own,,,,\n")


def test_rob2_overall_is_the_least_favourable_domain():
    from mt_evidence.evidence.schema import ROB2_DOMAINS, rob2_overall
    low = dict.fromkeys(ROB2_DOMAINS, "low")
    assert rob2_overall(low) == "low"
    assert rob2_overall({**low, "missing": "some_concerns"}) == "some_concerns"
    assert rob2_overall({**low, "missing": "some_concerns", "measurement": "high"}) == "high"
    # several "some concerns" stay "some concerns" (the review does not use RoB 2's option to call that high)
    assert rob2_overall(dict.fromkeys(ROB2_DOMAINS, "some_concerns")) == "some_concerns"
    assert rob2_overall({**low, "selection": "not_assessed"}) == "not_assessed"
    assert rob2_overall({k: v for k, v in low.items() if k != "selection"}) == "not_assessed"


def test_own_rob2_rows_are_checked(clean):
    doms = {"randomisation": "low", "deviations": "low", "missing": "some_concerns", "measurement": "high",
            "selection": "some_concerns"}
    good = _own_rob("SynthA2020", doms, "high", readers={"measurement": ("high", "some_concerns")},
                    consensus="third reading: comparator is advice only (synthetic)")
    (clean / "rob.csv").write_text(ROB_HEADER + good)
    assert validate_path(clean) == []
    ev = load_evidence(clean)
    st = ev.studies.set_index("study_id")
    assert st.loc["SynthA2020", "rob_overall"] == "high" and st.loc["SynthA2020", "rob_basis"] == "review_own"
    assert st.loc["SynthA2020", "rob_tool"] == "RoB2"
    # SynthB2021's studies.csv carries a published RoB 2 judgement, which comes first
    assert st.loc["SynthB2021", "rob_basis"] == "published" and st.loc["SynthB2021", "rob_overall"] == "low"
    # a wrong overall, readers who differ without a consensus note, a RoB 1 judgement, a missing domain
    bad = _own_rob("SynthA2020", doms, "some_concerns", readers={"measurement": ("high", "some_concerns")})
    bad = bad.replace("selection,some_concerns", "selection,unclear")
    bad += _own_rob("SynthB2021", {"randomisation": "low"}, "low")
    (clean / "rob.csv").write_text(ROB_HEADER + bad)
    found = {(Path(p.file).name, p.row, p.column) for p in validate_path(clean)}
    assert ("rob.csv", 5, "consensus_note") in found   # measurement: readers differ, no note
    assert ("rob.csv", 6, "judgement") in found        # 'unclear' in the review's own RoB 2
    assert ("rob.csv", 7, "judgement") in found        # overall is not the least favourable domain
    assert ("rob.csv", 8, "domain") in found           # SynthB2021 has one domain only


def test_not_assessed_needs_a_reason_and_published_overall_comes_first(clean):
    rows = ("SynthA2020,RoB2,overall,not_assessed,,https://example.org/synthetic-a,Methods,own (synthetic),,"
            "review_own,,,,\n")
    (clean / "rob.csv").write_text(ROB_HEADER + rows)
    found = {(Path(p.file).name, p.row, p.column) for p in validate_path(clean)}
    assert ("rob.csv", 2, "note") in found
    doms = dict.fromkeys(("randomisation", "deviations", "missing", "measurement", "selection"), "some_concerns")
    rows = _own_rob("SynthA2020", doms, "some_concerns") + (
        "SynthA2020,RoB1,Overall,low,Low risk,https://example.org/synthetic-review,Table 4,A review (synthetic),,"
        ",,,,\n")
    (clean / "rob.csv").write_text(ROB_HEADER + rows)
    st = load_evidence(clean).studies.set_index("study_id")
    assert st.loc["SynthA2020", "rob_overall"] == "low" and st.loc["SynthA2020", "rob_basis"] == "published"
    assert st.loc["SynthA2020", "rob_source"] == "https://example.org/synthetic-review"


def test_plausibility_warnings_name_the_row_but_do_not_stop_loading(clean):
    """Issue 14 (SYNTHETIC): an SD far below what the scale allows (1 on 0-100: an SE?), an SD above half the
    range, and, on a row kept for the record, a value outside the range are warnings, not problems."""
    from mt_evidence.evidence.io import check_path

    arms = pd.read_csv(clean / "arms.csv", dtype=str, keep_default_na=False)
    arms.loc[0, ["scale_min", "scale_max", "mean", "sd", "value_type"]] = ["0", "100", "40", "1", "final"]
    arms.loc[1, ["scale_min", "scale_max", "mean", "sd", "value_type"]] = ["0", "100", "40", "60", "final"]
    arms.loc[2, ["scale_min", "scale_max", "mean", "sd", "value_type", "role", "note"]] = [
        "0", "10", "14", "2", "final", "excluded", "kept for the record (synthetic)"]
    arms.to_csv(clean / "arms.csv", index=False)
    problems, warnings = check_path(clean)
    assert problems == []
    found = {(Path(w.file).name, w.row, w.column) for w in warnings}
    assert ("arms.csv", 2, "sd") in found and ("arms.csv", 3, "sd") in found and ("arms.csv", 4, "mean") in found
    assert any("implausibly small" in str(w) for w in warnings)
    assert len(load_evidence(clean).warnings) == len(warnings)
    res = CliRunner().invoke(app, ["validate", str(clean)])
    assert res.exit_code == 0 and "3 warning(s)" in res.output and "implausibly small" in res.output
    assert "[yellow]" not in res.output
    # the same value outside the range on a pooled row is a problem
    arms.loc[2, "role"] = ""
    arms.to_csv(clean / "arms.csv", index=False)
    assert ("arms.csv", 4, "mean") in {(Path(p.file).name, p.row, p.column) for p in validate_path(clean)}


def test_three_arms_give_every_pair_in_comparison_order(clean):
    """SYNTHETIC: a third arm at 4 weeks gives three comparisons, each with the more active intervention first
    and its raw rows named; the row-wise and column-wise spreads agree."""
    arms = pd.read_csv(clean / "arms.csv", dtype=str, keep_default_na=False)
    third = arms.loc[[3]].assign(arm="usual", intervention="usual_care", technique="none", mean="4.5", sd="",
                                 se="0.4")
    pd.concat([arms, third]).to_csv(clean / "arms.csv", index=False)
    ev = load_evidence(clean)
    eff = mbuild.assemble(ev).effects
    four = eff[(eff["timepoint_weeks"] == 4) & (eff["source_kind"] == "arms")]
    assert sorted(zip(four["arm1"], four["arm2"], four["source_rows"])) == [
        ("exer", "usual", "arms.csv:5;arms.csv:10"), ("manip", "exer", "arms.csv:4;arms.csv:5"),
        ("manip", "usual", "arms.csv:4;arms.csv:10")]
    se, sd, how = mbuild.arm_spreads(ev.arms)
    for i, r in ev.arms.iterrows():
        one = mbuild.arm_spread(r)
        assert (one[0], one[2]) == (se[i], how[i]) and (one[1] == sd[i] or np.isnan(one[1]) and np.isnan(sd[i]))


def test_hidden_characters_are_never_printable():
    """Validation clears printable text in one fast pass (schema._has_hidden): that is only right while every
    character it looks for is unprintable."""
    from mt_evidence.evidence.schema import HIDDEN_CHARS

    hidden = [chr(c) for c in range(0x110000) if HIDDEN_CHARS.fullmatch(chr(c))]
    assert len(hidden) > 40 and not any(c.isprintable() for c in hidden)


def test_csv_export_writes_what_pandas_writes():
    """data/processed is written column by column for speed (export._plain_csv): byte for byte what
    ``to_csv(float_format="%.10g")`` writes after neutralising, with quotes, line breaks, -0, inf and empties."""
    from mt_evidence.evidence.export import csv_bytes, neutralise

    def reference(df, float_format="%.10g"):
        out = df.copy()
        for c in out.columns:
            if out[c].dtype == object or pd.api.types.is_string_dtype(out[c]):
                out[c] = out[c].map(neutralise)
        return out.to_csv(index=False, float_format=float_format, lineterminator="\n").encode("utf-8")

    rng = np.random.default_rng(16)
    cells = np.array(["a,b", 'q"uote', "line\nbreak", "cr\rhere", "=x", "-1", "+a", "@b", "\tt", "\rr", "", None,
                      np.nan, " sp ", "\u00e9", "x\r\ny", '"', ","], dtype=object)
    n = 2000
    df = pd.DataFrame({"text": rng.choice(cells, n), "label": rng.choice(["x", "y"], n),
                       "value": rng.choice([0.0, -0.0, np.nan, np.inf, -np.inf, 1 / 3, 1e-300, 2.5e20, 1e16, 0.1,
                                            123456789.125, 5e-324], n),
                       "flag": rng.random(n) > 0.5, "count": rng.integers(-5, 5, n)})
    for frame in (df, df.iloc[:0], df[["text"]], df.assign(mixed=[1, "a"] * (n // 2))):
        assert csv_bytes(frame) == reference(frame)
        # every digit (the RevMan import writes its numbers so): pandas' own text of each float
        assert csv_bytes(frame, float_format=None) == reference(frame, None)


def test_validate_and_build_report_each_step_of_their_progress(clean, tmp_path):
    """The progress bars of `validate` and `build` advance once per declared step: VALIDATE_STEPS messages while
    loading (reading, each table, rules across rows, plausibility), BUILD_STEPS while building, so that a bar sized
    by them ends full and never runs past its end."""
    from mt_evidence.evidence.build import BUILD_STEPS, build_processed
    from mt_evidence.evidence.io import VALIDATE_STEPS, check_path, load_evidence
    from mt_evidence.evidence.validation import TABLE_FILES

    said = []
    assert check_path(clean, progress=said.append) == ([], [])
    assert len(said) == VALIDATE_STEPS
    assert said[0] == "reading the files" and said[-1] == "checking plausibility"
    assert [f"checking {t}" for t in TABLE_FILES] == said[1:1 + len(TABLE_FILES)]
    loading = []
    ev = load_evidence(clean, progress=loading.append)
    assert loading == said
    building = []
    build_processed(ev, tmp_path / "processed", progress=building.append)
    assert len(building) == BUILD_STEPS

"""The mapping language for wide extraction sheets (evidence/wide.py) and ``mt-evidence import-wide``.

Every sheet here is SYNTHETIC (invented trials and numbers). ``tests/fixtures/wide_synthetic`` mimics the shape of
a published sheet (one row per trial x pain dimension, two groups side by side); the other sheets are written by
the tests, each small enough that its answer is known.
"""

from __future__ import annotations

import json
import shutil
import textwrap
import tomllib
from pathlib import Path

import openpyxl
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

from mt_evidence.cli import app
from mt_evidence.evidence import atomic
from mt_evidence.evidence.io import EvidenceError, load_evidence, read_wide, validate_path
from mt_evidence.evidence.validation import SHEET_CELLS, SHEET_ROW
from mt_evidence.evidence.vocabulary import load_vocabulary
from mt_evidence.evidence.wide import (WRITER, import_wide, load_mapping, make_id, map_sheet, read_sheet, suggest,
                                       toml_text)

FIXTURE = Path(__file__).parent / "fixtures" / "wide_synthetic"
URL = "https://example.org/synthetic"


@pytest.fixture
def synthetic(tmp_path) -> Path:
    """A writable copy of the SYNTHETIC wide sheet, its mapping and its review.toml."""
    d = tmp_path / "wide_synthetic"
    shutil.copytree(FIXTURE, d)
    return d


def write(path: Path, text: str) -> Path:
    path.write_text(textwrap.dedent(text).lstrip("\n"), encoding="utf-8")
    return path


def problems_of(call) -> list:
    with pytest.raises(EvidenceError) as err:
        call()
    return err.value.problems


def texts(problems) -> str:
    return "\n".join(str(p) for p in problems)


# A small per-arm sheet and a mapping for it; tests change one thing at a time.
ARM_SHEET = """
Author,Year,Group,Category,N,Mean 4w,SD 4w,Mean 12w,SD 12w,Include,Link
Smith,2004,manip,MT,30,4.0,2.0,3.5,2.1,yes,https://example.org/smith
Smith,2004,care,UC,31,5.0,2.2,4.8,2.0,yes,https://example.org/smith
Jones,2010,exer,EX,40,3.0,1.5,,,yes,https://example.org/jones
Jones,2010,care,UC,41,3.4,1.6,,,yes,https://example.org/jones
"""

ARM_MAPPING = """
missing = ["NR"]
study_id = { join = ["Author", "Year"], sep = "" }

[recode.intervention]
MT = "manual_therapy"
EX = "exercise"
UC = "usual_care"

[studies]
citation = { format = "{Author} et al. ({Year}), SYNTHETIC" }
year = { column = "Year" }
population = "chronic"
sources = { column = "Link" }

[arms]
arm = { column = "Group" }
intervention = { column = "Category" }
n = { column = "N" }
outcome = "pain"
instrument = "NRS (0-10)"
scale_min = 0
scale_max = 10
higher_is_worse = true
value_type = "final"
source_url = { column = "Link" }

[[measures]]
timepoint_weeks = 4
mean = { column = "Mean 4w" }
sd = { column = "SD 4w" }

[[measures]]
timepoint_weeks = 12
mean = { column = "Mean 12w" }
sd = { column = "SD 12w" }
"""


def arm_case(tmp_path, sheet: str = ARM_SHEET, mapping: str = ARM_MAPPING) -> tuple[Path, Path]:
    return write(tmp_path / "arms.csv", sheet), write(tmp_path / "map.toml", mapping)


def made(tmp_path, sheet: str = ARM_SHEET, mapping: str = ARM_MAPPING):
    s, m = arm_case(tmp_path, sheet, mapping)
    wm = load_mapping(m)
    return map_sheet(read_sheet(s, header_row=wm.header_row, delimiter=wm.delimiter, mapping=m), wm)


# ------------------------------------------------------------------------------------------ the fixture


def test_synthetic_sheet_imports_with_known_counts_and_values(synthetic, tmp_path):
    out = tmp_path / "evidence"
    res = import_wide(synthetic / "sheet.csv", synthetic / "mapping.toml", out)
    assert (res.rows_read, res.rows_empty, res.rows_filtered, res.rows_kept) == (6, 1, 1, 4)
    assert res.files == {"studies.csv": 2, "arms.csv": 8, "contrasts.csv": 4, "rob.csv": 6, "review.toml": 0,
                         "import.json": 0}
    assert (out / "review.toml").read_bytes() == (synthetic / "review.toml").read_bytes()
    ev = load_evidence(out)  # the folder's own review.toml is the vocabulary
    assert ev.vocabulary.treatment_names[0] == "cbt_exercise"
    studies = ev.studies.set_index("study_id")
    assert list(studies.index) == ["Synthia2019", "Odon2021"]  # ids made from "Synthia, 2019", "Ödön, 2021"
    # Synthia's second row has year and doi NA: the values read in its first row stand
    assert studies.loc["Synthia2019", "year"] == 2019
    assert studies.loc["Synthia2019", "sources"] == "https://doi.org/10.5555/synthetic.1"
    assert studies.loc["Synthia2019", "citation"] == "Synthia, 2019 (SYNTHETIC trial, not a real study)"
    arms = ev.arms
    syn = arms[arms.study_id == "Synthia2019"]
    assert set(syn.loc[syn.arm == "intervention", "intervention"]) == {"cbt_exercise"}  # two labels recoded to one
    odon = arms[arms.study_id == "Odon2021"].set_index(["outcome", "arm"])
    assert odon.loc[("pain_intensity", "intervention"), "value_type"] == "change"
    assert odon.loc[("pain_intensity", "intervention"), "mean"] == -2.3
    assert odon.loc[("pain_interference", "control"), "mean"] == 10.7
    assert odon.loc[("pain_interference", "control"), "source_location"] == (
        "sheet.csv, row 7, columns post_m_cg, post_sd_cg, post_n_cg")
    assert "Leftout2020" not in set(arms.study_id)  # include = no
    rob = ev.rob.set_index(["study_id", "domain"])
    assert rob.loc[("Odon2021", "deviations"), "judgement"] == "high"
    assert rob.loc[("Odon2021", "deviations"), "judgement_printed"] == "HR"
    assert ev.studies.set_index("study_id").loc["Synthia2019", "rob_overall"] == "some_concerns"
    record = json.loads((out / "import.json").read_text())
    assert record["rows_written"]["arms.csv"] == 8 and len(record["sheet_sha256"]) == 64
    assert validate_path(out) == []


def test_a_problem_found_later_by_the_validator_names_the_sheet_row_and_column(synthetic, tmp_path):
    """The SD of the control group in row 7 (after an empty row and a filtered row) is negative: reported at row 7,
    column post_sd_cg, not at its place in arms.csv."""
    sheet = synthetic / "sheet.csv"
    sheet.write_text(sheet.read_text().replace("3.5,4.3,25,10.7,9.0,25", "3.5,4.3,25,10.7,-9.0,25"))
    problems = problems_of(lambda: import_wide(sheet, synthetic / "mapping.toml", tmp_path / "out"))
    assert [(p.row, p.column) for p in problems] == [(7, "post_sd_cg")], texts(problems)
    assert "for arms.csv" in problems[0].file and "a value > 0" in problems[0].expected
    assert not (tmp_path / "out").exists()


# ------------------------------------------------------------------------------------------ features


def test_ids_from_several_columns_and_a_format_string(tmp_path):
    t = made(tmp_path).tables
    assert list(t["studies"]["study_id"]) == ["Smith2004", "Jones2010"]
    assert list(t["studies"]["citation"]) == ["Smith et al. (2004), SYNTHETIC", "Jones et al. (2010), SYNTHETIC"]
    fmt = ARM_MAPPING.replace('study_id = { join = ["Author", "Year"], sep = "" }',
                              'study_id = { format = "{Author}_{Year}" }')
    assert list(made(tmp_path, mapping=fmt).tables["studies"]["study_id"]) == ["Smith_2004", "Jones_2010"]
    assert make_id("Özden, 2021") == "Ozden2021" and make_id("Barone Gibbs, 2017") == "BaroneGibbs2017"


def test_an_id_with_an_empty_part_is_a_problem_at_its_row(tmp_path):
    res = made(tmp_path, sheet=ARM_SHEET.replace("Jones,2010,exer", "Jones,,exer"))
    assert [(p.row, p.column, p.found) for p in res.problems] == [(4, "Author + Year", "an empty study id")]
    assert 4 not in set(res.tables["arms"][SHEET_ROW])


def test_rows_out_are_rows_in_times_measures_with_data(tmp_path):
    t = made(tmp_path).tables
    # four arms at 4 weeks, two (Smith's) at 12 weeks; Jones' empty 12-week cells make no row
    assert len(t["arms"]) == 6
    assert list(t["arms"][SHEET_ROW]) == [2, 2, 3, 3, 4, 5]
    assert list(t["arms"]["timepoint_weeks"]) == ["4", "12", "4", "12", "4", "4"]


def test_recoding_any_column_and_unmapped_values_named_by_row_and_column(tmp_path):
    t = made(tmp_path).tables
    assert list(t["arms"]["intervention"].unique()) == ["manual_therapy", "usual_care", "exercise"]
    # matching ignores case when only one listed value fits
    assert not made(tmp_path, sheet=ARM_SHEET.replace(",MT,", ",mt,")).problems
    res = made(tmp_path, sheet=ARM_SHEET.replace("Jones,2010,exer,EX", "Jones,2010,exer,EXR"))
    assert [(p.row, p.column) for p in res.problems] == [(4, "Category")]
    assert "'EXR', a value [recode.intervention] does not list" in res.problems[0].found
    assert "'MT', 'EX', 'UC'" in res.problems[0].expected
    # a recode table for a field read from any column: here the outcome, with "" for empty
    mapping = ARM_MAPPING.replace('outcome = "pain"', 'outcome = { column = "Group" }') + textwrap.dedent("""
        [recode.outcome]
        manip = "pain"
        care = "pain"
        exer = "disability"
        """)
    assert list(made(tmp_path, mapping=mapping).tables["arms"]["outcome"]) == ["pain"] * 4 + ["disability", "pain"]


def test_an_unmapped_value_is_reported_once_by_import(tmp_path):
    s, m = arm_case(tmp_path, sheet=ARM_SHEET.replace("Jones,2010,exer,EX", "Jones,2010,exer,EXR"))
    problems = problems_of(lambda: import_wide(s, m, tmp_path / "out"))
    assert [(p.row, p.column) for p in problems] == [(4, "Category")], texts(problems)


@pytest.mark.parametrize("test,value,kept", [
    ("equals", '"yes"', [2, 3, 5]),
    ("equals", '"YES"', [2, 3, 5]),  # text compares without case
    ("not_equals", '"yes"', [4, 6]),  # an empty cell equals nothing
    ("in", '["maybe", "no"]', [4]),
    ("not_in", '["maybe", "no"]', [2, 3, 5, 6]),
    ("is_blank", "true", [6]),
    ("not_blank", "true", [2, 3, 4, 5]),
])
def test_filters_keep_the_rows_that_pass(tmp_path, test, value, kept):
    sheet = ARM_SHEET.replace("Jones,2010,exer,EX,40,3.0,1.5,,,yes", "Jones,2010,exer,EX,40,3.0,1.5,,,no") + \
        "Brown,2012,care,UC,20,3.0,1.0,,,,https://example.org/brown\n"
    mapping = ARM_MAPPING + f'\n[[filter]]\ncolumn = "Include"\n{test} = {value}\n'
    res = made(tmp_path, sheet=sheet, mapping=mapping)
    assert sorted(set(res.tables["arms"][SHEET_ROW])) == kept
    assert res.rows_filtered == 5 - len(kept)


def test_a_numeric_filter_compares_numbers(tmp_path):
    mapping = ARM_MAPPING + '\n[[filter]]\ncolumn = "N"\nin = [30, 40.0]\n'
    assert sorted(set(made(tmp_path, mapping=mapping).tables["arms"][SHEET_ROW])) == [2, 4]


def test_constants_and_columns_follow_one_rule(tmp_path):
    """A bare value is a constant even when it names a column; a column is read only as { column = ... }."""
    sheet = ARM_SHEET.replace("Include,Link", "Include,Link,NRS (0-10)").replace("yes,https://example.org/smith",
                                                                                  "yes,https://example.org/smith,VAS")
    t = made(tmp_path, sheet=sheet).tables["arms"]
    assert set(t["instrument"]) == {"NRS (0-10)"}
    col = ARM_MAPPING.replace('instrument = "NRS (0-10)"', 'instrument = { column = "NRS (0-10)", default = "NRS" }')
    t = made(tmp_path, sheet=sheet, mapping=col).tables["arms"]
    assert list(t["instrument"]) == ["VAS", "VAS", "VAS", "VAS", "NRS", "NRS"]
    # every field can come from a column: the time point here
    sheet2 = ARM_SHEET.replace("Include,Link", "Include,Link,Weeks").replace("/smith\n", "/smith,6\n")
    mapping2 = ARM_MAPPING.replace("timepoint_weeks = 4", 'timepoint_weeks = { column = "Weeks", default = 4 }')
    assert list(made(tmp_path, sheet=sheet2, mapping=mapping2).tables["arms"]["timepoint_weeks"]) == \
        ["6", "12", "6", "12", "4", "4"]


def test_a_number_given_as_the_name_of_a_column_is_a_problem_with_the_fix(tmp_path):
    mapping = ARM_MAPPING.replace('mean = { column = "Mean 4w" }', 'mean = "Mean 4w"')
    problems = problems_of(lambda: made(tmp_path, mapping=mapping))
    assert [p.column for p in problems] == ["measures[1].mean"]
    assert "{ column = \"Mean 4w\" }" in problems[0].expected


def test_placeholders_are_missing_globally_and_per_column(tmp_path):
    sheet = ARM_SHEET.replace("Jones,2010,exer,EX,40,3.0,1.5", "Jones,2010,exer,EX,NR,3.0,0") \
        .replace("Jones,2010,care,UC,41,3.4,1.6", "Jones,2010,care,UC,41,0,1.6")
    mapping = ARM_MAPPING + '\n[missing_in]\n"SD 4w" = ["0"]\n'
    arms = made(tmp_path, sheet=sheet, mapping=mapping).tables["arms"].set_index(SHEET_ROW)
    assert pd.isna(arms.loc[4, "n"]) and pd.isna(arms.loc[4, "sd"])  # NR everywhere, 0 in "SD 4w"
    assert arms.loc[5, "mean"] == "0"  # 0 is a value in other columns


def test_fill_down_for_a_study_written_once(tmp_path):
    sheet = ARM_SHEET.replace("Smith,2004,care", ",,care").replace("Jones,2010,care", ",,care")
    mapping = 'fill_down = ["Author", "Year"]\n' + ARM_MAPPING
    t = made(tmp_path, sheet=sheet, mapping=mapping).tables
    assert list(t["arms"]["study_id"]) == ["Smith2004"] * 4 + ["Jones2010"] * 2


def test_rows_of_a_study_must_agree(tmp_path):
    res = made(tmp_path, sheet=ARM_SHEET.replace("Smith,2004,care,UC,31", "Smith,2004,care,UC,31").replace(
        "yes,https://example.org/smith\nJones", "yes,https://example.org/smith2\nJones"))
    assert [(p.row, p.column) for p in res.problems] == [(3, "Link")]
    assert "'https://example.org/smith2' for study Smith2004, but 'https://example.org/smith' in row 2" \
        in res.problems[0].found


def test_rob_rows_per_study_and_domain(tmp_path):
    sheet = ARM_SHEET.replace("Include,Link", "Include,Link,D1,Overall")
    sheet = sheet.replace("/smith\n", "/smith,Low,High\n").replace("/jones\n", "/jones,Some concerns,\n", 1)
    mapping = ARM_MAPPING + textwrap.dedent("""
        [rob]
        tool = "RoB2"
        review_citation = "SYNTHETIC"
        source_url = { column = "Link" }
        [rob.domains]
        randomisation = { column = "D1" }
        overall = { column = "Overall" }

        [recode.judgement]
        Low = "low"
        "Some concerns" = "some_concerns"
        High = "high"
        """)
    rob = made(tmp_path, sheet=sheet, mapping=mapping).tables["rob"]
    # Smith's two rows agree (merged); Jones' second row has no judgements; his empty overall makes no row
    assert rob[["study_id", "domain", "judgement", "judgement_printed"]].values.tolist() == [
        ["Smith2004", "randomisation", "low", "Low"], ["Smith2004", "overall", "high", "High"],
        ["Jones2010", "randomisation", "some_concerns", "Some concerns"]]
    clash = sheet.replace("yes,https://example.org/smith,Low,High\nJones", "yes,https://example.org/smith,Low,Low\n"
                                                                               "Jones")
    res = made(tmp_path, sheet=clash, mapping=mapping)
    assert [(p.row, p.column) for p in res.problems] == [(3, "Overall")]


def test_contrasts_from_the_same_sheet(synthetic, tmp_path):
    import_wide(synthetic / "sheet.csv", synthetic / "mapping.toml", tmp_path / "out")
    con = load_evidence(tmp_path / "out").contrasts
    assert list(con["estimate"]) == [0.07, 0.05, 0.4, 1.0]
    assert list(con["intervention2"]) == ["inactive_control", "inactive_control", "active_control", "active_control"]
    assert con["se"].isna().sum() == 2


def test_an_inline_vocabulary_is_written_as_review_toml(synthetic, tmp_path):
    mapping = synthetic / "mapping.toml"
    review = (synthetic / "review.toml").read_text()
    inline = "\n".join(line.replace("[", "[vocabulary.", 1) if line.startswith("[") else line
                       for line in review.splitlines() if not line.startswith("#"))
    mapping.write_text(mapping.read_text().replace('vocabulary = "review.toml"\n', "") + "\n" + inline + "\n")
    (synthetic / "review.toml").unlink()
    import_wide(synthetic / "sheet.csv", mapping, tmp_path / "out")
    written = tomllib.loads((tmp_path / "out" / "review.toml").read_text())
    assert written == tomllib.loads(review)
    assert load_vocabulary(tmp_path / "out" / "review.toml").treatment_names[:2] == ("cbt_exercise", "cbt")


def test_vocabulary_problems_name_the_key_and_the_file_stays_in_the_mapping_folder(synthetic, tmp_path):
    mapping = synthetic / "mapping.toml"
    text = mapping.read_text()
    mapping.write_text(text.replace('vocabulary = "review.toml"', 'vocabulary = "../elsewhere/review.toml"'))
    problems = problems_of(lambda: load_mapping(mapping))
    assert [p.column for p in problems] == ["vocabulary"] and "outside the mapping's folder" in problems[0].found
    mapping.write_text(text.replace('vocabulary = "review.toml"\n', "") + '\n[vocabulary.review]\ntitel = "x"\n'
                       '[vocabulary.treatments]\nsmt = { label = "SMT" }\n[vocabulary.outcomes]\npain = "pain"\n')
    problems = problems_of(lambda: load_mapping(mapping))
    assert [(p.column, p.found) for p in problems] == [("vocabulary.review.titel", "an unknown key")]
    assert "did you mean 'title'?" in problems[0].expected


def test_custom_x_columns_are_written_and_reserved_names_refused(tmp_path):
    s, m = arm_case(tmp_path, mapping=ARM_MAPPING.replace("[arms]\n", '[arms]\nx_group_label = { column = "Group" }\n'))
    import_wide(s, m, tmp_path / "out")
    assert list(pd.read_csv(tmp_path / "out" / "arms.csv")["x_group_label"]) == ["manip", "manip", "care", "care",
                                                                                "exer", "care"]
    assert SHEET_ROW not in pd.read_csv(tmp_path / "out" / "arms.csv").columns
    problems = mapping_problems(tmp_path, ARM_MAPPING.replace("[arms]\n", f'[arms]\n{SHEET_ROW} = 3\n'))
    assert [p.column for p in problems] == [f"arms.{SHEET_ROW}"]


def test_import_needs_a_studies_table(tmp_path):
    text = ARM_MAPPING[:ARM_MAPPING.index("[studies]")] + ARM_MAPPING[ARM_MAPPING.index("[arms]"):]
    problems = mapping_problems(tmp_path, text)
    assert [(p.column, p.found) for p in problems] == [("studies", "no [studies] table")]
    assert len(read_wide(*arm_case(tmp_path, mapping=text))) == 6  # read_wide makes arms rows without it


def test_toml_text_round_trips():
    spec = {"review": {"title": 'a "quoted" title', "primary_outcomes": ["pain"]},
            "treatments": {"smt": {"label": "SMT", "role": "active"}, "odd key": {"label": "ünï"}},
            "comparisons": [{"name": "a", "first": "smt", "second": ["sham"], "view": True}]}
    assert tomllib.loads(toml_text(spec)) == spec


def test_without_a_vocabulary_the_package_vocabulary_applies(tmp_path):
    s, m = arm_case(tmp_path, mapping=ARM_MAPPING.replace('MT = "manual_therapy"', 'MT = "acupuncture"'))
    problems = problems_of(lambda: import_wide(s, m, tmp_path / "out"))
    assert [(p.row, p.column) for p in problems] == [(2, "Category")]  # two arms rows read it: one problem
    assert "one of: manual_therapy" in problems[0].expected


# ------------------------------------------------------------------------------------------ mapping errors


def mapping_problems(tmp_path, text: str, sheet: str = ARM_SHEET):
    s, m = arm_case(tmp_path, sheet, text)
    return problems_of(lambda: import_wide(s, m, tmp_path / "out"))


def test_an_unknown_key_is_named_with_a_suggestion(tmp_path):
    problems = mapping_problems(tmp_path, ARM_MAPPING.replace('sd = { column = "SD 4w" }',
                                                              'sdev = { column = "SD 4w" }'))
    assert [p.column for p in problems] == ["measures[1].sdev"]
    assert problems[0].expected.endswith("did you mean 'sd'?")
    assert str(problems[0]).startswith(f"{tmp_path / 'map.toml'}, key 'measures[1].sdev': found an unknown key")
    assert suggest("sdev", ["sd", "se", "mean"]) == "; did you mean 'sd'?"
    assert suggest("colum", ["column", "join"]) == "; did you mean 'column'?"


ONE_MEASURE = ARM_MAPPING[:ARM_MAPPING.index("[[measures]]\ntimepoint_weeks = 12")]


def test_a_single_measures_table_is_named(tmp_path):
    problems = mapping_problems(tmp_path, ONE_MEASURE.replace("[[measures]]", "[measures]"))
    assert [(p.column, p.found) for p in problems] == [("measures", "a single table [measures] (one bracket)")]
    assert "one or more [[measures]] blocks, each written with two brackets" in problems[0].expected


def test_a_misspelt_table_is_named_not_ignored(tmp_path):
    problems = mapping_problems(tmp_path, ARM_MAPPING.replace("[studies]", "[studys]"))
    assert [(p.column, p.found) for p in problems] == [("studys", "an unknown table [studys]")], texts(problems)
    assert problems[0].expected.endswith("did you mean 'studies'?")
    problems = mapping_problems(tmp_path, ONE_MEASURE.replace("[[measures]]", "[[mesures]]"))
    assert [(p.column, p.found) for p in problems] == [("mesures", "unknown blocks [[mesures]]")], texts(problems)
    assert problems[0].expected.endswith("did you mean 'measures'?")


def test_wrong_types_say_what_is_allowed(tmp_path):
    text = ARM_MAPPING.replace('missing = ["NR"]', 'missing = "NR"\nheader_row = "2"') \
        .replace('study_id = { join = ["Author", "Year"], sep = "" }', 'study_id = { join = "Author" }') \
        .replace("higher_is_worse = true", "higher_is_worse = 1") \
        .replace("[arms]", "[[arms]]") + '\n[[filter]]\ncolumn = "Include"\nequals = "yes"\nin = ["no"]\n'
    problems = mapping_problems(tmp_path, text)
    got = {p.column: p for p in problems}
    assert set(got) == {"missing", "header_row", "study_id.join", "arms", "filter[1]"}, texts(problems)
    assert "a list of values in quotes" in got["missing"].expected
    assert "a whole number from 1" in got["header_row"].expected
    assert "a list of column names" in got["study_id.join"].expected
    assert got["arms"].found.startswith("[[arms]]") and "one [arms] table" in got["arms"].expected
    assert "exactly one of equals" in got["filter[1]"].expected
    problems = mapping_problems(tmp_path, ARM_MAPPING.replace("higher_is_worse = true", "higher_is_worse = 1"))
    assert [(p.column, p.expected) for p in problems] == [("arms.higher_is_worse", "true or false")]


def test_all_mapping_problems_are_reported_at_once(tmp_path):
    text = ARM_MAPPING.replace('sd = { column = "SD 4w" }', 'sdev = { column = "SD 4w" }') \
        .replace('mean = { column = "Mean 12w" }', 'mean = { colum = "Mean 12w" }') \
        .replace('population = "chronic"', 'populaton = "chronic"')
    problems = mapping_problems(tmp_path, text)
    assert {p.column for p in problems} >= {"measures[1].sdev", "measures[2].mean.colum", "studies.populaton"}


def test_a_missing_column_is_named_with_a_suggestion(tmp_path):
    problems = mapping_problems(tmp_path, ARM_MAPPING.replace('"Mean 12w"', '"Mean 12 w"'))
    assert [(p.column, p.found) for p in problems] == [("measures[2].mean", "'Mean 12 w', not a column of arms.csv")]
    assert "did you mean 'Mean 12w'?" in problems[0].expected
    problems = mapping_problems(tmp_path, ARM_MAPPING + '\n[[filter]]\ncolumn = "Included?"\nequals = "yes"\n')
    assert [p.column for p in problems] == ["filter[1]"] and "did you mean 'Include'?" in problems[0].expected


def test_the_first_mapping_form_is_explained_by_import(tmp_path):
    problems = mapping_problems(tmp_path, '[columns]\nstudy_id = "Author"\n[[measures]]\nmean = "Mean 4w"\n')
    assert ("columns", "[columns], from the first mapping form") in [(p.column, p.found) for p in problems]


def test_study_id_belongs_at_the_top_and_a_sheet_key_not_in_a_csv(tmp_path):
    problems = mapping_problems(tmp_path, ARM_MAPPING.replace("[arms]\n", '[arms]\nstudy_id = { column = "Author" }\n'))
    assert [p.column for p in problems] == ["arms.study_id"]
    problems = mapping_problems(tmp_path, 'sheet = "Data"\n' + ARM_MAPPING)
    assert [(p.column, p.found) for p in problems] == [("sheet", 'sheet = "Data" for a CSV file')]


def test_a_mapping_that_is_not_toml(tmp_path):
    problems = mapping_problems(tmp_path, "[arms\narm = 1\n")
    assert len(problems) == 1 and "not valid TOML" in problems[0].found
    problems = problems_of(lambda: load_mapping(tmp_path / "nope.toml"))
    assert problems[0].found == "no such file"


# ------------------------------------------------------------------------------------------ workbooks


def workbook(path: Path, rows: list[list], sheet: str = "Data", first: str = "Notes") -> Path:
    wb = openpyxl.Workbook()
    wb.active.title = first
    wb.active["A1"] = "a notes sheet before the data"
    ws = wb.create_sheet(sheet)
    for i, r in enumerate(rows, 1):
        for j, v in enumerate(r, 1):
            if v is not None:
                ws.cell(row=i, column=j, value=v)
    wb.save(path)
    return path


def test_a_workbook_sheet_by_name_with_a_title_row_and_empty_rows(tmp_path):
    header = ["Author", "Year", "Group", "Category", "N", "Mean 4w", "SD 4w", "Mean 12w", "SD 12w", "Include", "Link"]
    rows = [["SYNTHETIC extraction (title row)"], header,
            ["Smith", 2004, "manip", "MT", 30, 4.0, 2.0, 3.5, 2.1, "yes", "https://example.org/smith"],
            [None],  # row 4 empty
            ["Smith", 2004, "care", "UC", 31.0, 5, -2.2, None, None, "yes", "https://example.org/smith"]]
    book = workbook(tmp_path / "book.xlsx", rows)
    mapping = write(tmp_path / "map.toml", 'sheet = "Data"\nheader_row = 2\n' + ARM_MAPPING)
    problems = problems_of(lambda: import_wide(book, mapping, tmp_path / "out"))
    assert [(p.row, p.column) for p in problems] == [(5, "SD 4w")], texts(problems)
    assert problems[0].file == f"{book} [sheet Data] (for arms.csv)"
    t = map_sheet(read_sheet(book, sheet="Data", header_row=2), load_mapping(mapping)).tables
    assert list(t["arms"]["n"]) == ["30", "30", "31"] and list(t["studies"]["year"]) == ["2004"]


def test_a_missing_sheet_lists_the_sheets(tmp_path):
    book = workbook(tmp_path / "book.xlsx", [["Author"], ["Smith"]], sheet="Extraction")
    mapping = write(tmp_path / "map.toml", 'sheet = "Data"\n' + ARM_MAPPING)
    problems = problems_of(lambda: import_wide(book, mapping, tmp_path / "out"))
    assert len(problems) == 1 and problems[0].found == "no sheet named 'Data'"
    assert problems[0].expected.startswith("one of the workbook's sheets: 'Notes', 'Extraction'")


# ------------------------------------------------------------------------------------------ sheet rows


def test_filters_and_empty_rows_never_shift_sheet_rows(tmp_path):
    """Issue 16: a problem in sheet row 3 was once named row 5. Here a blank line, a title row, a filtered row and a
    quoted cell spanning two lines sit above the bad rows; each is named by its own row."""
    sheet = ('SYNTHETIC title row\n'
             'Author,Year,Group,Category,N,Mean 4w,SD 4w,Mean 12w,SD 12w,Include,Link\n'
             '\n'
             'Left,1999,a,MT,10,1,1,,,no,https://example.org/left\n'
             '"Smith",2004,"manip\ngroup",MT,30,4.0,2.0,3.5,2.1,yes,https://example.org/smith\n'
             'Smith,2004,care,UC,31,5.0,-2.2,4.8,2.0,yes,https://example.org/smith\n'
             'Jones,20x0,exer,EX,40,3.0,1.5,,,yes,https://example.org/jones\n')
    s = tmp_path / "arms.csv"
    s.write_text(sheet)
    m = write(tmp_path / "map.toml", "header_row = 2\n" + ARM_MAPPING + '[[filter]]\ncolumn = "Include"\n'
                                                                        'equals = "yes"\n')
    problems = problems_of(lambda: import_wide(s, m, tmp_path / "out"))
    where = [(p.row, p.column) for p in problems]
    assert (6, "SD 4w") in where and (7, "Year") in where, texts(problems)
    assert all(p.row in (6, 7) for p in problems), texts(problems)
    arms = read_wide(s, m)
    assert sorted(set(arms[SHEET_ROW])) == [5, 6, 7]


def test_a_duplicate_names_both_sheet_rows_and_blocks(tmp_path):
    mapping = ARM_MAPPING.replace("timepoint_weeks = 12", "timepoint_weeks = 4")
    s, m = arm_case(tmp_path, mapping=mapping)
    problems = problems_of(lambda: import_wide(s, m, tmp_path / "out"))
    dup = [p for p in problems if "duplicate" in p.found]
    assert [(p.row, p.found) for p in dup] == [
        (2, "a duplicate of row 2 (made by measures[1]) (same study, arm, outcome, instrument, time point, value type "
            "and adjustment); this one made by measures[2]"),
        (3, "a duplicate of row 3 (made by measures[1]) (same study, arm, outcome, instrument, time point, value type "
            "and adjustment); this one made by measures[2]")], texts(problems)


def test_a_value_set_by_the_mapping_is_named_by_its_key(tmp_path):
    s, m = arm_case(tmp_path, mapping=ARM_MAPPING.replace('value_type = "final"', 'value_type = "post"'))
    problems = problems_of(lambda: import_wide(s, m, tmp_path / "out"))
    assert {p.column for p in problems} == {"arms.value_type (the mapping)"}
    assert sorted({p.row for p in problems}) == [2, 3, 4, 5]


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(grid=st.lists(st.tuples(st.booleans(), st.lists(st.booleans(), min_size=3, max_size=3)), min_size=1,
                     max_size=12))
def test_rows_out_equal_rows_in_times_measures_with_data(tmp_path, grid):
    """Property: each kept row makes one arms row per measure block with a number in its columns, in sheet order,
    each naming its own sheet row; an empty row makes none and keeps its number."""
    lines = ["Study,M1,M2,M3"]
    expect = []
    for i, (blank, has) in enumerate(grid):
        row = i + 2
        if blank:
            lines.append("")
            continue
        lines.append(f"S{i}," + ",".join("1.5" if h else "" for h in has))
        expect += [(row, j) for j in range(3) if has[j]]
    sheet = tmp_path / "grid.csv"
    sheet.write_text("\n".join(lines) + "\n")
    blocks = "".join(f'[[measures]]\ntimepoint_weeks = {j}\nmean = {{ column = "M{j + 1}" }}\n' for j in range(3))
    mapping = write(tmp_path / "grid.toml", 'study_id = { column = "Study" }\n[arms]\narm = "a"\n'
                    'intervention = "exercise"\noutcome = "pain"\ninstrument = "NRS"\nhigher_is_worse = true\n'
                    'value_type = "final"\nsource_url = "https://example.org/grid"\n' + blocks)
    arms = read_wide(sheet, mapping)
    assert list(zip(arms[SHEET_ROW], arms["timepoint_weeks"].astype(int))) == expect
    assert all(json.loads(c)["mean"] == [r, f"M{int(w) + 1}"] for c, r, w in
               zip(arms[SHEET_CELLS], arms[SHEET_ROW], arms["timepoint_weeks"]))


# ------------------------------------------------------------------------------------------ the command


def run(args):
    return CliRunner().invoke(app, args)


def test_cli_import_wide_writes_a_folder_that_validates(synthetic, tmp_path):
    out = tmp_path / "evidence"
    res = run(["import-wide", str(synthetic / "sheet.csv"), str(synthetic / "mapping.toml"), "--out", str(out)])
    assert res.exit_code == 0, res.output
    assert "wrote studies.csv (2 rows), arms.csv (8 rows)" in res.output and "Traceback" not in res.output
    assert run(["validate", str(out)]).exit_code == 0
    again = run(["import-wide", str(synthetic / "sheet.csv"), str(synthetic / "mapping.toml"), "--out", str(out)])
    assert again.exit_code == 0, again.output  # its own folder is replaced


def test_cli_import_wide_problems_exit_1_and_write_nothing(synthetic, tmp_path):
    out = tmp_path / "evidence"
    import_wide(synthetic / "sheet.csv", synthetic / "mapping.toml", out)
    before = {p.name: p.read_bytes() for p in out.iterdir()}
    mapping = synthetic / "mapping.toml"
    mapping.write_text(mapping.read_text().replace('sd = { column = "post_sd_ig" }', 'sdev = { column = "post_sd_ig" }'))
    res = run(["import-wide", str(synthetic / "sheet.csv"), str(mapping), "--out", str(out)])
    assert res.exit_code == 1
    assert "did you mean 'sd'?" in res.output and f"Nothing was written to {out}." in res.output
    assert "Traceback" not in res.output and "[red]" not in res.output
    assert {p.name: p.read_bytes() for p in out.iterdir()} == before


def test_cli_import_wide_refuses_a_folder_it_did_not_write(synthetic, tmp_path):
    out = tmp_path / "mine"
    out.mkdir()
    (out / "notes.txt").write_text("a user's notes")
    res = run(["import-wide", str(synthetic / "sheet.csv"), str(synthetic / "mapping.toml"), "--out", str(out)])
    assert res.exit_code == 1 and "did not write (notes.txt)" in res.output and "Traceback" not in res.output
    assert sorted(p.name for p in out.iterdir()) == ["notes.txt"]
    built = tmp_path / "built"
    atomic.replace_owned_folder(built, {"effects.csv": b"x\n"}, "build")
    res = run(["import-wide", str(synthetic / "sheet.csv"), str(synthetic / "mapping.toml"), "--out", str(built)])
    assert res.exit_code == 1 and "was written by `mt-evidence build`" in res.output
    assert (built / "effects.csv").read_bytes() == b"x\n"
    res = run(["import-wide", str(synthetic / "sheet.csv"), str(synthetic / "mapping.toml"), "--out",
               str(synthetic / "sheet.csv")])
    assert res.exit_code == 1 and "is a file" in res.output


def test_cli_import_wide_usage_and_missing_files(synthetic, tmp_path):
    assert run(["import-wide", str(synthetic / "sheet.csv")]).exit_code == 2
    res = run(["import-wide", str(tmp_path / "none.csv"), str(synthetic / "mapping.toml"), "--out", str(tmp_path / "o")])
    assert res.exit_code == 1 and "none.csv: found no such file" in res.output and "Traceback" not in res.output
    res = run(["import-wide", str(synthetic / "sheet.csv"), str(tmp_path / "none.toml"), "--out", str(tmp_path / "o")])
    assert res.exit_code == 1 and "none.toml: found no such file" in res.output
    assert not (tmp_path / "o").exists()


def test_an_import_folder_is_owned_by_import_wide(synthetic, tmp_path):
    out = tmp_path / "evidence"
    import_wide(synthetic / "sheet.csv", synthetic / "mapping.toml", out)
    assert atomic.read_marker(out)["writer"] == WRITER
    (out / "notes.txt").write_text("kept")
    import_wide(synthetic / "sheet.csv", synthetic / "mapping.toml", out)
    assert (out / "notes.txt").read_text() == "kept"
    assert pd.read_csv(out / "arms.csv").shape[0] == 8


# ------------------------------------------------------------------------------------------ the documentation


@pytest.mark.parametrize("doc,heading", [("README.md", "### Wide extraction sheets"),
                                         ("docs/bring-your-own-review.md", "## A complete example")])
def test_the_documented_example_imports_as_documented(tmp_path, doc, heading):
    """The example sheet (a markdown table) and mapping of the README and of the full documentation, run as
    written: one study, three arms rows, two rob rows."""
    text = (Path(__file__).resolve().parents[1] / doc).read_text(encoding="utf-8")
    section = text[text.index(heading):]
    table = [line for line in section.splitlines() if line.startswith("|")]
    rows = [[c.strip() for c in line.strip("|").split("|")] for line in table if not set(line) <= set("|- ")]
    head, body = rows[0], rows[1:3]

    def cell(v: str):
        try:
            return int(v)
        except ValueError:
            try:
                return float(v)
            except ValueError:
                return v

    book = workbook(tmp_path / "extraction.xlsx", [head] + [[cell(v) for v in r] for r in body], sheet="Extraction")
    mapping = tmp_path / "mapping.toml"
    mapping.write_text(section.split("```toml\n", 1)[1].split("```", 1)[0])
    res = import_wide(book, mapping, tmp_path / "out")
    assert (res.n_studies, res.files["arms.csv"], res.files["rob.csv"]) == (1, 3, 2)
    assert validate_path(tmp_path / "out") == []

"""No silent wrong numbers: values that would flow into the analysis as nonsense are refused by the contract, each
with file, row and column; exported tables cannot run formulas in a spreadsheet. SYNTHETIC fixture only."""

import shutil
from pathlib import Path

import pandas as pd
import pytest

import mt_evidence as me

FIX = Path(__file__).resolve().parents[1] / "fixtures" / "synthetic_clean"


@pytest.fixture
def ev_dir(tmp_path):
    d = tmp_path / "ev"
    shutil.copytree(FIX, d)
    return d


def edit(folder: Path, table: str, row: int, **values):
    df = pd.read_csv(folder / f"{table}.csv", dtype=str, keep_default_na=False)
    for k, v in values.items():
        df.loc[row, k] = v
    df.to_csv(folder / f"{table}.csv", index=False)


@pytest.mark.parametrize("table,column,value,found", [
    ("arms", "mean", "inf", "not a finite number"),
    ("arms", "sd", "-inf", "not a finite number"),
    ("arms", "mean", "NaN", "not a finite number"),
    ("arms", "n", "29.5", "not a count of people"),
    ("arms", "n", "-3", "not a count of people"),
    ("contrasts", "n1", "1e12", "not a count of people"),
    ("studies", "year", "1e20", "not a whole number"),
    ("contrasts", "estimate", "", "an empty cell"),
    ("contrasts", "ci_high", "0.5", "zero width"),
    ("studies", "citation", "Evil\u202egpj.exe", "right-to-left override"),
    ("arms", "instrument", "NRS\x00(0-10)", "NUL"),
    ("arms", "note", "look\u200bhere", "zero-width space"),
])
def test_bad_values_are_named_with_file_row_and_column(ev_dir, table, column, value, found):
    edit(ev_dir, table, 0, **{column: value})
    problems = me.validate_path(ev_dir)
    mine = [p for p in problems if p.column == column and p.row == 2 and p.file.endswith(f"{table}.csv")]
    assert mine, problems
    assert found in mine[0].found
    with pytest.raises(me.EvidenceError):
        me.load_evidence(ev_dir)


def test_every_problem_is_reported_not_only_the_first(ev_dir):
    edit(ev_dir, "arms", 0, mean="inf", n="29.5")
    edit(ev_dir, "arms", 1, sd="nan")
    problems = me.validate_path(ev_dir)
    where = {(p.row, p.column) for p in problems}
    assert {(2, "mean"), (2, "n"), (3, "sd")} <= where


def test_missing_n_column_is_refused(ev_dir):
    df = pd.read_csv(ev_dir / "arms.csv", dtype=str, keep_default_na=False).drop(columns=["n"])
    df.to_csv(ev_dir / "arms.csv", index=False)
    problems = me.validate_path(ev_dir)
    assert any(p.column == "n" and p.row == 1 and "no such column" in p.found for p in problems)


def test_exported_tables_never_carry_formulas(ev_dir, tmp_path):
    edit(ev_dir, "arms", 2, note="=HYPERLINK(\"http://evil.example\",\"click\")")
    edit(ev_dir, "contrasts", 0, note="+cmd|' /C calc'!A0", role="excluded")
    out = tmp_path / "processed"
    me.build_processed(me.load_evidence(ev_dir), out)
    for name in ("effects.csv", "exclusions.csv"):
        df = pd.read_csv(out / name, dtype=str, keep_default_na=False)
        for col in df.columns:
            for v in df[col]:
                assert not v.startswith(("=", "+", "@", "\t", "\r")), (name, col, v)
                assert not (v.startswith("-") and not _is_number(v)), (name, col, v)
    effects = pd.read_csv(out / "effects.csv", dtype=str, keep_default_na=False)
    assert effects["note"].str.startswith("'=HYPERLINK").any()


def _is_number(v: str) -> bool:
    try:
        float(v)
        return True
    except ValueError:
        return False


def test_empty_exclusions_file_has_its_header(tmp_path):
    from mt_evidence.evidence.build import EXCLUSION_COLUMNS

    res = me.build_processed(me.load_evidence(FIX), tmp_path / "p")
    text = (tmp_path / "p" / "exclusions.csv").read_text()
    assert text.splitlines()[0] == ",".join(EXCLUSION_COLUMNS)
    assert len(res.exclusions.columns) == len(EXCLUSION_COLUMNS)


def test_text_cells_are_text_whatever_the_reader_gave():
    """A workbook can hand a number to a text column (a citation typed as 12345): it stays text, stripped."""
    from mt_evidence.evidence.schema import coerce_table

    df = pd.DataFrame({"study_id": ["A1", "A2"], "citation": [" x ", 12345], "year": ["2020", "2021"],
                       "population": ["chronic", "acute"], "sources": ["https://a.org", "https://b.org"]})
    typed, _ = coerce_table(df, "studies", "studies.csv")
    assert typed["citation"].tolist() == ["x", "12345"]

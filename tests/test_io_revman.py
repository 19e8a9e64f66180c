"""Tests for mt_evidence.io_revman.

Every .rm5 file here is SYNTHETIC: made-up comparisons, outcomes, study names and numbers, written to tmp_path
in the shape of a RevMan 5 file (upper-case elements COCHRANE_REVIEW / STUDIES_AND_REFERENCES / STUDIES /
INCLUDED_STUDIES / STUDY and ANALYSES_AND_DATA / COMPARISON / CONT_OUTCOME / CONT_SUBGROUP / CONT_DATA, study
IDs XML-name escaped as RevMan does). None of it is data from real trials.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from mt_evidence import effect_size
from mt_evidence.evidence.revman import ARMS_COLUMNS, INTERVENTIONS, RevManError, read_revman

EXPECTED_COLUMNS = [
    "study_id", "arm", "intervention", "technique", "outcome", "instrument", "scale_min", "scale_max",
    "higher_is_worse", "timepoint_weeks", "value_type", "change_sign", "n", "mean", "sd", "se", "ci_low",
    "ci_high", "median", "q1", "q3", "min", "max", "adjusted", "role", "source_url", "source_location",
    "derivation", "note", "comparison", "group_label",
]  # fmt: skip


# ---------------------------------------------------------------------------------------------------------
# Synthetic fixture builders
# ---------------------------------------------------------------------------------------------------------

SYNTHETIC_COMMENT = "<!-- SYNTHETIC TEST FIXTURE for mt_evidence: invented studies and numbers, not real trials -->"


def _study(sid: str, name: str, year: str = "2004") -> str:
    return (
        f'<STUDY DATA_SOURCE="PUB" ID="{sid}" NAME="{name}" YEAR="{year}">'
        '<REFERENCE PRIMARY="NO" TYPE="JOURNAL_ARTICLE"><IDENTIFIERS/></REFERENCE><IDENTIFIERS/></STUDY>'
    )


def _cont(sid: str, m1, sd1, n1, m2, sd2, n2, **extra) -> str:
    attrs = {
        "CI_END": "", "CI_START": "", "EFFECT_SIZE": "", "ESTIMABLE": "YES",
        "MEAN_1": m1, "MEAN_2": m2, "ORDER": "1", "SD_1": sd1, "SD_2": sd2, "SE": "",
        "STUDY_ID": sid, "TOTAL_1": n1, "TOTAL_2": n2, "WEIGHT": "",
    }  # fmt: skip
    attrs.update(extra)
    text = " ".join(f'{k}="{v}"' for k, v in attrs.items() if v is not None)
    return f"<CONT_DATA {text}/>"


def _outcome(no: int, name: str | None, label1: str, label2: str, body: str, subgroups: bool = False) -> str:
    name_el = f"<NAME>{name}</NAME>" if name is not None else ""
    return (
        f'<CONT_OUTCOME CI_STUDY="95" CI_TOTAL="95" EFFECT_MEASURE="MD" ESTIMABLE="YES" ID="CMP-001.{no:02d}" '
        f'NO="{no}" RANDOM="YES" SUBGROUPS="{"YES" if subgroups else "NO"}" TOTALS="YES" UNITS="">'
        f"{name_el}<GROUP_LABEL_1>{label1}</GROUP_LABEL_1><GROUP_LABEL_2>{label2}</GROUP_LABEL_2>"
        "<GRAPH_LABEL_1>Favours experimental</GRAPH_LABEL_1><GRAPH_LABEL_2>Favours control</GRAPH_LABEL_2>"
        f"{body}</CONT_OUTCOME>"
    )


def _subgroup(no: int, name: str, body: str) -> str:
    return (
        f'<CONT_SUBGROUP ESTIMABLE="YES" ID="CMP-001.01.{no:02d}" NO="{no}">'
        f"<NAME>{name}</NAME>{body}</CONT_SUBGROUP>"
    )


def _comparison(no: int, name: str, body: str) -> str:
    return f'<COMPARISON ID="CMP-{no:03d}" NO="{no}"><NAME>{name}</NAME>{body}</COMPARISON>'


def _review(studies: str, comparisons: str, encoding: str = "ISO-8859-1") -> str:
    return (
        f'<?xml version="1.0" encoding="{encoding}" standalone="no"?>\n{SYNTHETIC_COMMENT}\n'
        '<COCHRANE_REVIEW ID="0" REVMAN_SUB_VERSION="5.3.5" REVMAN_VERSION="5" STAGE="R" TYPE="INTERVENTION">'
        "<COVER_SHEET><TITLE>SYNTHETIC review for tests</TITLE></COVER_SHEET>"
        "<STUDIES_AND_REFERENCES><STUDIES>"
        f"<INCLUDED_STUDIES>{studies}</INCLUDED_STUDIES>"
        "<EXCLUDED_STUDIES/><AWAITING_STUDIES/><ONGOING_STUDIES/>"
        "</STUDIES></STUDIES_AND_REFERENCES>"
        f'<ANALYSES_AND_DATA CALCULATED_DATA="YES">{comparisons}</ANALYSES_AND_DATA>'
        "</COCHRANE_REVIEW>\n"
    )


def _write(tmp_path: Path, text: str, name: str = "synthetic_review.rm5", encoding: str = "ISO-8859-1") -> Path:
    path = tmp_path / name
    path.write_bytes(text.encode(encoding))
    return path


STUDIES = _study("STD-Alpha_x0020_2001", "Alpha 2001", "2001") + _study(
    "STD-Beta_x002d_Gamma_x0020_2010", "Beta-Gamma 2010", "2010"
)


@pytest.fixture
def plain_file(tmp_path: Path) -> Path:
    """One comparison, one continuous outcome without subgroups, two synthetic studies, plus a DICH outcome."""
    body = _cont("STD-Alpha_x0020_2001", "3.5", "1.2", "20", "4.75", "1.5", "22") + _cont(
        "STD-Beta_x002d_Gamma_x0020_2010", "10", "2.5", "31", "12.5", "3", "30"
    )
    dich = (
        '<DICH_OUTCOME ID="CMP-001.02" NO="2"><NAME>Synthetic binary outcome</NAME>'
        "<GROUP_LABEL_1>A</GROUP_LABEL_1><GROUP_LABEL_2>B</GROUP_LABEL_2>"
        '<DICH_DATA EVENTS_1="1" EVENTS_2="2" STUDY_ID="STD-Alpha_x0020_2001" TOTAL_1="20" TOTAL_2="22"/>'
        "</DICH_OUTCOME>"
    )
    comp = _comparison(
        1,
        "Synthetic manipulation versus usual care",
        _outcome(1, "Pain (synthetic 0-10 scale)", "Spinal Manipulation", "Usual care", body) + dich,
    )
    return _write(tmp_path, _review(STUDIES, comp))


@pytest.fixture
def subgroup_file(tmp_path: Path) -> Path:
    """One outcome split in two subgroups (one study in both), and a second outcome without subgroups."""
    sub1 = _subgroup(1, "Acute pain", _cont("STD-Alpha_x0020_2001", "1", "1", "10", "2", "1", "11"))
    sub2 = _subgroup(
        2,
        "Chronic pain",
        _cont("STD-Alpha_x0020_2001", "5", "2", "12", "6", "2", "13")
        + _cont("STD-Beta_x002d_Gamma_x0020_2010", "7", "3", "40", "8", "3", "41"),
    )
    out1 = _outcome(1, "Disability (synthetic)", "Exercise", "Wait list", sub1 + sub2, subgroups=True)
    alpha = _cont("STD-Alpha_x0020_2001", "2", "1", "9", "3", "1", "9")
    out2 = _outcome(2, "Pain (synthetic)", "Exercise", "Wait list", alpha)
    return _write(tmp_path, _review(STUDIES, _comparison(1, "Synthetic exercise versus wait list", out1 + out2)))


# ---------------------------------------------------------------------------------------------------------
# Plain outcome
# ---------------------------------------------------------------------------------------------------------


def test_plain_outcome_columns_and_values(plain_file: Path):
    df = read_revman(plain_file)
    assert list(df.columns) == EXPECTED_COLUMNS
    assert list(ARMS_COLUMNS) == EXPECTED_COLUMNS[:-2]
    assert len(df) == 4  # 2 studies x 2 arms; the dichotomous outcome is not read
    assert df["arm"].tolist() == ["experimental", "control", "experimental", "control"]
    assert df["study_id"].tolist() == ["Alpha_2001", "Alpha_2001", "Beta-Gamma_2010", "Beta-Gamma_2010"]
    assert df["n"].tolist() == [20, 22, 31, 30]
    assert df["mean"].tolist() == [3.5, 4.75, 10.0, 12.5]
    assert df["sd"].tolist() == [1.2, 1.5, 2.5, 3.0]
    assert set(df["outcome"]) == {"Pain (synthetic 0-10 scale)"}
    assert set(df["comparison"]) == {"Synthetic manipulation versus usual care"}
    assert df["group_label"].tolist() == ["Spinal Manipulation", "Usual care"] * 2
    assert set(df["intervention"]) == {"other"}
    assert set(df["value_type"]) == {"final"}
    assert df["adjusted"].dtype == "boolean" and df["adjusted"].eq(False).all()
    assert set(df["source_url"]) == {"file:" + str(plain_file.resolve())}
    assert set(df["derivation"]) == {""}
    assert set(df["note"]) == {""}
    empty_numbers = ["scale_min", "scale_max", "timepoint_weeks", "se", "ci_low", "ci_high", "median", "q1", "q3",
                     "min", "max"]  # fmt: skip
    for col in empty_numbers:
        assert df[col].dtype == np.float64 and df[col].isna().all(), col
    for col in ["technique", "instrument"]:
        assert df[col].dtype == object and df[col].isna().all(), col
    assert df["higher_is_worse"].dtype == "boolean" and df["higher_is_worse"].isna().all()
    assert df["n"].dtype == np.float64
    for col in ["study_id", "arm", "outcome", "source_location", "comparison", "group_label", "note"]:
        assert df[col].dtype == object, col


def test_source_location_names_file_comparison_outcome_row(plain_file: Path):
    df = read_revman(plain_file)
    loc = df["source_location"].iloc[0]
    assert loc.startswith(
        "RevMan file synthetic_review.rm5, comparison 'Synthetic manipulation versus usual care', "
        "outcome 'Pain (synthetic 0-10 scale)', row 'Alpha 2001'"
    )
    assert "group 1" in loc and "group 2" in df["source_location"].iloc[1]
    assert df["source_location"].is_unique


def test_path_given_as_string_gives_a_file_source_url(plain_file: Path):
    df = read_revman(str(plain_file))
    assert set(df["source_url"]) == {"file:" + str(plain_file.resolve())}


def test_arms_feed_effect_size(plain_file: Path):
    """Arm 1 minus arm 2, as RevMan's MD: the long rows pair back into the inputs of effect_size."""
    df = read_revman(plain_file)
    e = df[df["arm"] == "experimental"].reset_index(drop=True)
    c = df[df["arm"] == "control"].reset_index(drop=True)
    res = effect_size("MD", m1=e["mean"], sd1=e["sd"], n1=e["n"], m2=c["mean"], sd2=c["sd"], n2=c["n"])
    np.testing.assert_allclose(res["yi"], [3.5 - 4.75, 10 - 12.5])
    np.testing.assert_allclose(res["vi"], [1.2**2 / 20 + 1.5**2 / 22, 2.5**2 / 31 + 3**2 / 30])


def test_file_without_continuous_outcomes_gives_empty_frame(tmp_path: Path):
    path = _write(tmp_path, _review(STUDIES, _comparison(1, "Synthetic empty comparison", "")))
    df = read_revman(path)
    assert df.empty and list(df.columns) == EXPECTED_COLUMNS
    assert df["mean"].dtype == np.float64 and df["adjusted"].dtype == "boolean" and df["study_id"].dtype == object
    no_analyses = _write(
        tmp_path, '<?xml version="1.0"?><COCHRANE_REVIEW REVMAN_VERSION="5"/>', name="synthetic_protocol.rm5"
    )
    assert read_revman(no_analyses).empty


# ---------------------------------------------------------------------------------------------------------
# Subgroups
# ---------------------------------------------------------------------------------------------------------


def test_subgroup_rows_are_read_with_subgroup_in_note(subgroup_file: Path):
    df = read_revman(subgroup_file)
    dis = df[df["outcome"] == "Disability (synthetic)"]
    assert len(dis) == 6  # 3 data rows (Alpha in both subgroups) x 2 arms
    assert dis["note"].tolist() == ["subgroup: Acute pain"] * 2 + ["subgroup: Chronic pain"] * 4
    alpha = dis[dis["study_id"] == "Alpha_2001"]
    assert alpha["mean"].tolist() == [1.0, 2.0, 5.0, 6.0]
    assert "subgroup 'Chronic pain'" in alpha["source_location"].iloc[2]
    pain = df[df["outcome"] == "Pain (synthetic)"]
    assert len(pain) == 2 and set(pain["note"]) == {""}
    assert "subgroup" not in pain["source_location"].iloc[0]


# ---------------------------------------------------------------------------------------------------------
# intervention_map
# ---------------------------------------------------------------------------------------------------------


def test_intervention_map_is_case_insensitive(plain_file: Path):
    mapping = {"spinal manipulation": "manual_therapy", "USUAL CARE": "usual_care"}
    df = read_revman(plain_file, intervention_map=mapping)
    assert df["intervention"].tolist() == ["manual_therapy", "usual_care"] * 2
    assert df["arm"].tolist() == ["experimental", "control"] * 2
    assert df["group_label"].tolist() == ["Spinal Manipulation", "Usual care"] * 2  # labels kept as in the file


def test_intervention_map_unmatched_label_is_other(subgroup_file: Path):
    df = read_revman(subgroup_file, intervention_map={"exercise": "exercise"})
    assert set(df.loc[df["arm"] == "experimental", "intervention"]) == {"exercise"}
    assert set(df.loc[df["arm"] == "control", "intervention"]) == {"other"}


def test_intervention_map_rejects_unknown_category(plain_file: Path):
    with pytest.raises(ValueError, match="not an intervention category") as info:
        read_revman(plain_file, intervention_map={"Usual care": "placebo"})
    assert not isinstance(info.value, RevManError)
    for category in INTERVENTIONS:
        assert category in str(info.value)


def test_intervention_map_conflicting_case_variants(plain_file: Path):
    with pytest.raises(ValueError, match="two categories"):
        read_revman(plain_file, intervention_map={"Usual care": "usual_care", "usual CARE": "advice"})
    with pytest.raises(TypeError):
        read_revman(plain_file, intervention_map=[("Usual care", "usual_care")])  # type: ignore[arg-type]


# ---------------------------------------------------------------------------------------------------------
# Study name resolution
# ---------------------------------------------------------------------------------------------------------


def test_study_names_resolved_and_made_identifiers(tmp_path: Path):
    studies = (
        _study("STD-M_x00fc_ller_x0020_2010a", "M\u00fcller  2010a", "2010")  # double space, non-ASCII, Latin-1 file
        + _study("STD-O_x0027_Neil_x0020_1999", "O'Neil 1999", "1999")
    )
    body = (
        _cont("STD-M_x00fc_ller_x0020_2010a", "1", "1", "5", "2", "1", "5")
        + _cont("STD-O_x0027_Neil_x0020_1999", "1", "1", "5", "2", "1", "5")
        + _cont("STD-Delta_x0020_2020", "1", "1", "5", "2", "1", "5")  # not in the studies section
    )
    comp = _comparison(1, "Synthetic names", _outcome(1, "Synthetic", "A", "B", body))
    path = _write(tmp_path, _review(studies, comp))
    df = read_revman(path)
    assert df["study_id"].drop_duplicates().tolist() == ["M\u00fcller_2010a", "ONeil_1999", "Delta_2020"]
    assert not df["study_id"].str.contains(" ").any()
    assert "row 'M\u00fcller 2010a'" in df["source_location"].iloc[0]
    assert "row 'Delta 2020'" in df["source_location"].iloc[4]


def test_study_names_that_collide_are_kept_apart(tmp_path: Path):
    studies = _study("STD-Smith_x0020_2004", "Smith 2004") + _study("STD-Smith_x002c__x0020_2004", "Smith, 2004")
    body = _cont("STD-Smith_x0020_2004", "1", "1", "5", "2", "1", "5") + _cont(
        "STD-Smith_x002c__x0020_2004", "3", "1", "5", "4", "1", "5"
    )
    path = _write(tmp_path, _review(studies, _comparison(1, "Synthetic", _outcome(1, "Synthetic", "A", "B", body))))
    df = read_revman(path)
    ids = df["study_id"].drop_duplicates().tolist()
    assert len(ids) == 2 and ids[0] != ids[1]
    assert ids == ["Smith_2004_1", "Smith_2004_2"]


# ---------------------------------------------------------------------------------------------------------
# Errors
# ---------------------------------------------------------------------------------------------------------


def test_not_xml(tmp_path: Path):
    path = _write(tmp_path, "study,mean,sd\nSYNTHETIC,1,2\n", name="not_xml.rm5")
    with pytest.raises(RevManError, match="not an XML file") as info:
        read_revman(path)
    assert "not_xml.rm5" in str(info.value)
    assert isinstance(info.value, ValueError)


def test_empty_file_is_not_xml(tmp_path: Path):
    path = _write(tmp_path, "", name="empty.rm5")
    with pytest.raises(RevManError, match="empty.rm5.*not an XML file"):
        read_revman(path)


def test_not_a_revman_file(tmp_path: Path):
    path = _write(tmp_path, '<?xml version="1.0"?><svg><COMPARISON/></svg>', name="picture.rm5")
    with pytest.raises(RevManError, match=r"picture\.rm5.*not a RevMan 5 review.*<svg>"):
        read_revman(path)


def test_missing_file(tmp_path: Path):
    with pytest.raises(FileNotFoundError, match="nowhere.rm5"):
        read_revman(tmp_path / "nowhere.rm5")


def test_all_data_problems_are_reported_together(tmp_path: Path):
    comp1 = _comparison(
        1,
        "Synthetic comparison one",
        _outcome(
            1,
            "Synthetic pain",
            "A",
            "B",
            _cont("STD-Alpha_x0020_2001", "", "1", "10", "2", "1", "10")  # empty MEAN_1
            + _cont("STD-Beta_x002d_Gamma_x0020_2010", "1", "abc", "10", "2", "1", None),  # bad SD_1, no TOTAL_2
        ),
    )
    comp2 = _comparison(
        2,
        "Synthetic comparison two",
        _outcome(
            1,
            "Synthetic function",
            "A",
            "B",
            _subgroup(1, "Synthetic subgroup", _cont("STD-Alpha_x0020_2001", "1", "-1", "10.5", "NaN", "1", "0")),
        ),
    )
    path = _write(tmp_path, _review(STUDIES, comp1 + comp2), name="broken_review.rm5")
    with pytest.raises(RevManError) as info:
        read_revman(path)
    err = info.value
    msg = str(err)
    assert "broken_review.rm5" in msg
    assert "7 problems" in msg
    assert len(err.problems) == 7
    assert err.path == str(path)
    expected = [
        ("comparison 1 'Synthetic comparison one'", "outcome 1 'Synthetic pain'", "study 'Alpha 2001'",
         "MEAN_1 is empty"),
        ("Synthetic comparison one", "Synthetic pain", "study 'Beta-Gamma 2010'", "SD_1='abc' is not a number"),
        ("Synthetic comparison one", "Synthetic pain", "study 'Beta-Gamma 2010'", "TOTAL_2 is missing"),
        ("Synthetic comparison two", "subgroup 'Synthetic subgroup'", "study 'Alpha 2001'", "SD_1='-1' is negative"),
        ("Synthetic comparison two", "Synthetic function", "study 'Alpha 2001'",
         "TOTAL_1='10.5' is not a whole number"),
        ("Synthetic comparison two", "Synthetic function", "study 'Alpha 2001'",
         "MEAN_2='NaN' is not a finite number"),
        ("Synthetic comparison two", "Synthetic function", "study 'Alpha 2001'", "TOTAL_2='0' is below 1"),
    ]
    for parts in expected:
        assert any(all(p in line for p in parts) for line in err.problems), parts
        assert all(p in msg for p in parts)


def test_missing_study_id_and_outcome_name_are_problems(tmp_path: Path):
    body = _cont("", "1", "1", "5", "2", "1", "5")
    path = _write(tmp_path, _review(STUDIES, _comparison(1, "Synthetic", _outcome(1, None, "A", "B", body))))
    with pytest.raises(RevManError) as info:
        read_revman(path)
    problems = info.value.problems
    assert len(problems) == 2
    assert any("no NAME" in p for p in problems)
    assert any("STUDY_ID is missing" in p for p in problems)


def test_single_problem_message(tmp_path: Path):
    body = _cont("STD-Alpha_x0020_2001", "1", "1", "5", "x", "1", "5")
    comp = _comparison(1, "Synthetic", _outcome(1, "Synthetic out", "A", "B", body))
    path = _write(tmp_path, _review(STUDIES, comp))
    with pytest.raises(RevManError, match=r"1 problem: comparison 1 'Synthetic', outcome 1 'Synthetic out', "
                       r"study 'Alpha 2001': MEAN_2='x' is not a number"):  # fmt: skip
        read_revman(path)


def test_revman_error_is_value_error():
    err = RevManError("f.rm5", ["a", "b"])
    assert isinstance(err, ValueError)
    assert str(err).splitlines() == ["RevMan file 'f.rm5': 2 problems:", "  - a", "  - b"]
    assert err.problems == ["a", "b"]


def test_utf8_file_is_read(tmp_path: Path):
    studies = _study("STD-Z_x00e9_ro_x0020_2015", "Z\u00e9ro 2015")
    body = _cont("STD-Z_x00e9_ro_x0020_2015", "1", "1", "5", "2", "1", "5")
    comp = _comparison(1, "Synthetic \u00e9", _outcome(1, "Synthetic", "A", "B", body))
    text = _review(studies, comp, encoding="UTF-8")
    path = _write(tmp_path, text, encoding="utf-8")
    df = read_revman(path)
    assert df["study_id"].iloc[0] == "Z\u00e9ro_2015"
    assert df["comparison"].iloc[0] == "Synthetic \u00e9"
    assert isinstance(df, pd.DataFrame)


def test_outcome_map_fills_the_contract_and_validates(plain_file: Path, tmp_path: Path):
    """Mapped RevMan data pass the package's validator once outcomes are mapped (SYNTHETIC fixture)."""
    from mt_evidence.evidence.io import validate_tables

    df = read_revman(plain_file)
    names = sorted(set(df["outcome"]))
    omap = {n: {"outcome": "pain", "instrument": "VAS (0-100)", "scale_min": 0, "scale_max": 100,
                "higher_is_worse": True, "timepoint_weeks": 13} for n in names}
    arms = read_revman(plain_file, outcome_map=omap,
                       intervention_map={lab: "manual_therapy" for lab in set(df["group_label"].dropna())})
    assert set(arms["outcome"]) == {"pain"} and set(arms["timepoint_weeks"]) == {13.0}
    studies = pd.DataFrame({"study_id": sorted(set(arms["study_id"]))})
    studies["citation"] = "SYNTHETIC"
    studies["year"] = "2020"
    studies["population"] = "chronic"
    studies["sources"] = "https://example.org/synthetic"
    raw = {"studies": studies, "arms": arms.drop(columns=["comparison", "group_label"]),
           "contrasts": pd.DataFrame(columns=["study_id"]), "rob": pd.DataFrame(columns=["study_id"])}
    _, problems = validate_tables(raw, {"studies": "s", "arms": "a", "contrasts": "c", "rob": "r"})
    assert [p for p in problems if p.file == "a"] == []
    with pytest.raises(ValueError, match="unknown"):
        read_revman(plain_file, outcome_map={names[0]: {"colour": "red"}})

"""Inputs that hang, exhaust memory or silently change the analysis are refused with a clear message: special
files, oversized and inflating workbooks, wrong formats; settings with unknown keys, wrong types, duplicate
windows or paths outside their folder; text that matplotlib would parse. SYNTHETIC fixture only."""

import io
import os
import shutil
import threading
import zipfile
from pathlib import Path

import pandas as pd
import pytest
from typer.testing import CliRunner

import mt_evidence as me
from mt_evidence.cli import app
from mt_evidence.synthesis import analysis as A
from mt_evidence.synthesis import settings as S

FIX = Path(__file__).resolve().parents[1] / "fixtures" / "synthetic_clean"
DEFAULT_SETTINGS = (Path(A.__file__).parents[1] / "data" / "analysis.toml").read_text()


@pytest.fixture
def ev_dir(tmp_path):
    d = tmp_path / "ev"
    shutil.copytree(FIX, d)
    return d


def within(seconds: float, func, *args):
    """Run ``func`` and fail (instead of hanging the suite) if it takes longer than ``seconds``."""
    box = {}

    def run():
        try:
            box["value"] = func(*args)
        except BaseException as exc:  # noqa: BLE001 - handed back to the test
            box["error"] = exc

    t = threading.Thread(target=run, daemon=True)
    t.start()
    t.join(seconds)
    assert not t.is_alive(), f"{func.__name__} did not return within {seconds} s"
    if "error" in box:
        raise box["error"]
    return box["value"]


def test_a_fifo_as_an_input_file_is_refused_without_hanging(ev_dir):
    (ev_dir / "arms.csv").unlink()
    os.mkfifo(ev_dir / "arms.csv")
    problems = within(30, me.validate_path, ev_dir)
    assert any(p.file.endswith("arms.csv") and "named pipe" in p.found for p in problems), problems


@pytest.mark.parametrize("make,found", [
    (lambda p: p.write_text(""), "an empty file"),
    (lambda p: (p.unlink(), p.mkdir()), "a folder"),
    (lambda p: p.write_text("study_id;arm;intervention\nA;b;c\n"), "semicolons"),
])
def test_broken_csv_files_give_a_message_not_a_traceback(ev_dir, make, found):
    make(ev_dir / "arms.csv")
    problems = me.validate_path(ev_dir)
    assert any(p.file.endswith("arms.csv") and found in p.found for p in problems), problems


def test_a_duplicated_column_is_named(ev_dir):
    text = (ev_dir / "arms.csv").read_text().splitlines()
    text[0] = text[0].replace(",sd,", ",mean,", 1)
    (ev_dir / "arms.csv").write_text("\n".join(text) + "\n")
    problems = me.validate_path(ev_dir)
    assert any(p.column == "mean" and "twice" in p.found for p in problems), problems


@pytest.mark.parametrize("name,content,found", [
    ("old.xls", b"\xd0\xcf\x11\xe0 not a zip", "a .xls file"),
    ("notes.txt", b"hello", "a .txt file"),
    ("protected.xlsx", b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1 an OLE container", "not a zip archive"),
])
def test_other_formats_are_named(tmp_path, name, content, found):
    p = tmp_path / name
    p.write_bytes(content)
    problems = me.validate_path(p)
    assert problems and found in problems[0].found
    r = CliRunner().invoke(app, ["validate", str(p)])
    assert r.exit_code == 1 and "Traceback" not in r.output


def test_an_inflating_workbook_is_refused_before_parsing(tmp_path):
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", compression=zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("[Content_Types].xml", "<Types/>")
        zf.writestr("xl/worksheets/sheet1.xml", b"0" * (60 * 1024 * 1024))  # 60 MB of one byte: packs to ~60 KB
    p = tmp_path / "bomb.xlsx"
    p.write_bytes(buf.getvalue())
    assert p.stat().st_size < 1024 * 1024
    problems = within(30, me.validate_path, p)
    assert "unpacks to" in problems[0].found


# ------------------------------------------------------------------------------------------------ settings


def settings(tmp_path: Path, extra: str = "", replace: tuple[str, str] | None = None) -> Path:
    text = DEFAULT_SETTINGS if replace is None else DEFAULT_SETTINGS.replace(*replace)
    p = tmp_path / "settings.toml"
    p.write_text(text + "\n" + extra)
    return p


@pytest.mark.parametrize("change,message", [
    (("method = \"REML\"", "methd = \"DL\""), "unknown key 'methd' in [pooling]"),
    (("name = \"long\"", "name = \"short\""), "a second window named 'short'"),
    (("correlation = 0.5", "correlation = 7.5"), "correlation = 7.5; expected a correlation between -1 and 1"),
    (("pain = 15.0\ndisability = 10.0\nsource = \"Hayden", "pain = nan\ndisability = 10.0\nsource = \"Hayden"),
     "[important_difference] pain = nan"),
    (("test = \"hksj\"", "test = \"knapp\""), "[pooling] test = 'knapp'"),
    (("adhoc = true", "adhoc = \"yes\""), "[pooling] adhoc = 'yes'"),
    (("[pooling]", "[poolng]"), "unknown table or key [poolng]"),
])
def test_settings_problems_name_the_key_and_what_is_allowed(tmp_path, change, message):
    p = settings(tmp_path, replace=change)
    with pytest.raises(ValueError) as err:
        A.load_config(p)
    assert message in str(err.value) and str(p) in str(err.value)


def test_settings_paths_stay_in_their_folder(tmp_path):
    secret = tmp_path / "secret"
    secret.mkdir()
    (secret / "private.toml").write_text('[[claim]]\nid = 1\ntext = "PRIVATE"\nnot_testable = "x"\n')
    work = tmp_path / "work"
    work.mkdir()
    for value in ("../secret/private.toml", str(secret / "private.toml"), "/dev/zero"):
        p = settings(work, extra=f'[report]\nclaims = "{value}"\n')
        with pytest.raises(ValueError, match="outside the settings file's folder"):
            S.load_settings(p)


def test_overrides_must_be_a_regular_file(tmp_path):
    os.mkfifo(tmp_path / "ov.toml")
    p = settings(tmp_path, extra='[report]\noverrides = "ov.toml"\n')
    with pytest.raises(ValueError, match="named pipe"):
        within(30, S.load_settings, p)


def test_a_misspelt_claim_window_is_an_error(tmp_path):
    (tmp_path / "claims.toml").write_text('[[claim]]\nid = 1\ntext = "x"\n[[claim.test]]\ncomparison = '
                                          '"manual_therapy_vs_sham"\noutcome = "pain"\nwindow = "shrot"\n'
                                          'expect = "benefit"\n')
    p = settings(tmp_path, extra='[report]\nclaims = "claims.toml"\n')
    with pytest.raises(ValueError, match="window 'shrot' is not defined"):
        S.load_settings(p)


def test_settings_errors_reach_the_user_without_a_traceback(tmp_path):
    p = settings(tmp_path, replace=("method = \"REML\"", "methd = \"DL\""))
    r = CliRunner().invoke(app, ["report", "--data", str(FIX), "--config", str(p), "--out", str(tmp_path / "r"),
                                 "--no-pdf"])
    assert r.exit_code == 1 and "methd" in r.output and "Traceback" not in r.output
    assert not (tmp_path / "r").exists()


# ------------------------------------------------------------------------------------------- literal text


def test_mathtext_in_data_is_drawn_literally(ev_dir, tmp_path):
    rob = pd.DataFrame([{"study_id": "SynthA2020", "tool": "RoB1", "domain": "Random $\\cmd$ generation",
                         "judgement": "low", "judgement_printed": "Low risk", "source_url": "https://example.org/x",
                         "source_location": "table", "review_citation": "Review $\\x$", "note": ""}])
    rob.to_csv(ev_dir / "rob.csv", index=False)
    r = CliRunner().invoke(app, ["figures", "--data", str(ev_dir), "--out", str(tmp_path / "figs")])
    assert r.exit_code == 0, r.output
    assert (tmp_path / "figs" / "risk_of_bias.svg").read_text().count("cmd") >= 1


@pytest.mark.parametrize("header,found", [
    ('<?xml version="1.0" encoding="x-unknown-enc"?>', "declares the text encoding 'x-unknown-enc'"),
    ('<?xml version="1.0"?>', "not valid UTF-8 (byte 0xfc on line 2)"),
    ('<?xml version="1.0" encoding="UTF-8"?>', "not valid UTF-8 (byte 0xfc on line 2)"),
])
def test_a_revman_file_in_another_encoding_gets_a_message(tmp_path, header, found):
    """An .rm5 in an unknown or wrong encoding: a RevManError saying what to do, never a LookupError."""
    f = tmp_path / "review.rm5"
    f.write_bytes(header.encode() + b'\n<COCHRANE_REVIEW><STUDY NAME="M\xfcller"/></COCHRANE_REVIEW>')
    from mt_evidence.evidence.revman import RevManError

    with pytest.raises(RevManError) as err:
        me.read_revman(f)
    assert found in str(err.value) and "UTF-8" in str(err.value) and "iconv" in str(err.value)
    # a file declaring the encoding it really has is read
    f.write_bytes(b'<?xml version="1.0" encoding="windows-1252"?>\n<COCHRANE_REVIEW><STUDY NAME="M\xfcller"/>'
                  b'</COCHRANE_REVIEW>')
    assert me.read_revman(f).empty


def test_a_revman_path_that_is_a_fifo_is_refused(tmp_path):
    import os

    fifo = tmp_path / "review.rm5"
    os.mkfifo(fifo)
    with pytest.raises(FileNotFoundError, match="not a file"):
        me.read_revman(fifo)

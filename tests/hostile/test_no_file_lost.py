"""No user file is deleted or overwritten: build, figures, template and report only replace what they wrote.

Each case snapshots every byte of the folders involved, runs the command as a user would (the CLI, in a
project folder of its own whose data/raw is a copy of the SYNTHETIC fixture and is the "bundled" evidence
there), and checks the exit code, the message and that every file is unchanged. The kill tests run the CLI in a
subprocess; the others in-process (the same code, without paying the import time each call).
"""

import hashlib
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

FIX = Path(__file__).resolve().parents[1] / "fixtures" / "synthetic_clean"
CLI = [sys.executable, "-m", "mt_evidence.cli"]


def snapshot(*roots: Path) -> dict[str, str]:
    """Every file and folder under ``roots``: path -> sha256 (or 'dir')."""
    out = {}
    for root in roots:
        if root.is_file():
            out[str(root)] = hashlib.sha256(root.read_bytes()).hexdigest()
            continue
        for dirpath, _dirnames, filenames in os.walk(root):
            out[dirpath] = "dir"
            for f in filenames:
                p = Path(dirpath) / f
                out[str(p)] = hashlib.sha256(p.read_bytes()).hexdigest()
    return out


@pytest.fixture
def project(tmp_path):
    """A project folder: data/raw (synthetic evidence, the 'bundled' data here), data/processed, a thesis folder."""
    (tmp_path / "data").mkdir()
    shutil.copytree(FIX, tmp_path / "data" / "raw")
    (tmp_path / "data" / "processed").mkdir()
    thesis = tmp_path / "my_thesis_folder"
    thesis.mkdir()
    (thesis / "chapter1.docx").write_bytes(b"my thesis, two years of work")
    (thesis / "notes").mkdir()
    (thesis / "notes" / "todo.txt").write_text("finish")
    (tmp_path / "afile").write_text("a file of mine")
    return tmp_path


class Ran:
    def __init__(self, returncode: int, stderr: str):
        self.returncode, self.stderr = returncode, stderr


def run(project: Path, *args: str, env_extra: dict | None = None) -> Ran:
    """The CLI in this process, in ``project`` with its data/raw as the bundled evidence; output unwrapped."""
    from typer.testing import CliRunner

    from mt_evidence.cli import app

    env = {"MT_EVIDENCE_DATA": str(project / "data" / "raw"), **(env_extra or {})}
    cwd = os.getcwd()
    os.chdir(project)
    try:
        r = CliRunner().invoke(app, list(args), env=env)
    finally:
        os.chdir(cwd)
    assert not isinstance(r.exception, Exception) or isinstance(r.exception, SystemExit), r.exception
    return Ran(r.exit_code, r.output)


@pytest.mark.parametrize("out", ["data/raw", "data", "my_thesis_folder", "afile", ".", "data/raw/sub"])
def test_build_refuses_folders_it_did_not_create(project, out):
    before = snapshot(project)
    r = run(project, "build", "--out", out)
    assert r.returncode != 0
    assert "nothing was written" in r.stderr.lower(), r.stderr
    assert out.lstrip("./") in r.stderr or out == "."
    assert "Traceback" not in r.stderr
    assert snapshot(project) == before


def test_build_refuses_the_evidence_folder_it_reads(project, tmp_path_factory):
    other = tmp_path_factory.mktemp("other")
    shutil.copytree(FIX, other / "ev")
    before = snapshot(project, other)
    r = run(project, "build", "--data", str(other / "ev"), "--out", str(other / "ev"))
    assert r.returncode != 0 and "evidence folder" in r.stderr
    r = run(project, "build", "--data", str(other / "ev"), "--out", str(other))
    assert r.returncode != 0
    assert snapshot(project, other) == before


def test_build_replaces_its_own_folder_and_keeps_files_it_did_not_write(project):
    r = run(project, "build")
    assert r.returncode == 0, r.stderr
    processed = project / "data" / "processed"
    assert (processed / "effects.csv").exists() and (processed / ".mt-evidence-owner").exists()
    (processed / "my_notes.txt").write_text("mine")
    first = (processed / "effects.csv").read_bytes()
    r = run(project, "build")
    assert r.returncode == 0, r.stderr
    assert (processed / "my_notes.txt").read_text() == "mine"
    assert (processed / "effects.csv").read_bytes() == first
    assert not [p for p in project.joinpath("data").iterdir() if p.name.startswith(".processed.")]
    # a folder made by another command is not build's to replace
    r = run(project, "build", "--out", "figs")
    assert r.returncode == 0
    r2 = run(project, "figures", "--out", "figs")
    assert r2.returncode != 0 and "mt-evidence build" in r2.stderr


def test_build_takes_over_a_folder_written_before_markers_existed(project):
    """data/processed from an earlier version (no marker, only build's own files) is replaced as before."""
    r = run(project, "build")
    assert r.returncode == 0
    (project / "data" / "processed" / ".mt-evidence-owner").unlink()
    r = run(project, "build")
    assert r.returncode == 0, r.stderr


def test_template_never_overwrites(project):
    folder = project / "my_extraction"
    r = run(project, "template", str(folder))
    assert r.returncode == 0
    (folder / "studies.csv").write_text("study_id,citation\nX1,filled in by hand\n" * 18)
    (folder / "arms.csv").unlink()
    before = {p.name: p.read_bytes() for p in folder.iterdir()}
    r = run(project, "template", str(folder))
    assert r.returncode == 0, r.stderr
    assert "studies.csv" in r.stderr and "left unchanged" in r.stderr and "arms.csv" in r.stderr
    for name, data in before.items():
        assert (folder / name).read_bytes() == data
    assert (folder / "arms.csv").exists()
    book = project / "book.xlsx"
    book.write_bytes(b"my workbook")
    r = run(project, "template", str(book))
    assert r.returncode != 0 and book.read_bytes() == b"my workbook"
    r = run(project, "template", str(project / "afile"))
    assert r.returncode != 0 and (project / "afile").read_text() == "a file of mine"


def test_figures_refuse_a_folder_of_user_files(project):
    before = snapshot(project)
    r = run(project, "figures", "--out", "my_thesis_folder")
    assert r.returncode != 0 and "nothing was written" in r.stderr
    assert snapshot(project) == before


# ------------------------------------------------------------------------------------------ report as one


def _report_files(out: Path) -> dict[str, bytes]:
    return {n: (out / n).read_bytes() for n in ("index.html", "report.pdf", "claims.json")}


@pytest.fixture
def reported(project):
    r = run(project, "report", "--out", "rep")
    assert r.returncode == 0, r.stderr
    out = project / "rep"
    (out / "figures").mkdir()
    (out / "figures" / "forest.png").write_bytes(b"\x89PNG figure")
    (out / "reading_notes.txt").write_text("a clinician's notes")
    return project, out


def test_report_refuses_folders_it_did_not_create(project):
    before = snapshot(project)
    for out in ("my_thesis_folder", "data", "data/raw", "afile"):
        r = run(project, "report", "--out", out, "--no-pdf")
        assert r.returncode != 0, out
        assert "Traceback" not in r.stderr
    assert snapshot(project) == before


def test_failed_pdf_step_leaves_the_previous_report(reported):
    project, out = reported
    before = snapshot(out)
    r = run(project, "report", "--out", "rep", env_extra={"MT_EVIDENCE_CHROMIUM": "/bin/false"})
    assert r.returncode != 0
    assert "PDF could not be printed" in r.stderr and "not changed" in r.stderr and "Traceback" not in r.stderr
    assert snapshot(out) == before
    assert not [p for p in project.iterdir() if p.name.startswith(".rep.")]


def test_report_replaces_its_files_and_keeps_the_rest(reported):
    project, out = reported
    old = _report_files(out)
    r = run(project, "report", "--out", "rep", "--no-pdf")
    assert r.returncode == 0, r.stderr
    assert (out / "index.html").exists() and not (out / "report.pdf").exists()  # never a PDF of another run
    assert (out / "figures" / "forest.png").read_bytes() == b"\x89PNG figure"
    assert (out / "reading_notes.txt").read_text() == "a clinician's notes"
    assert (out / "claims.json").read_bytes() == old["claims.json"]


@pytest.mark.slow
def test_sigkill_during_report_leaves_a_matching_pair(reported):
    """Kill `report` at several points; the folder always holds one complete report (old or new, never mixed)."""
    import random
    import signal
    import time

    project, out = reported
    env = {**os.environ, "MT_EVIDENCE_DATA": str(project / "data" / "raw")}
    rng = random.Random(20261130)
    t0 = time.perf_counter()
    run(project, "report", "--out", "rep")
    duration = time.perf_counter() - t0
    for i in range(5):
        state = _report_files(out)
        proc = subprocess.Popen(CLI + ["report", "--out", "rep"], cwd=project, env=env,
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
        time.sleep(rng.uniform(0.5, 1.05) * duration)
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
        now = _report_files(out)
        same = {n: now[n] == state[n] for n in now}
        assert all(same.values()) or not any(same[n] for n in ("index.html", "report.pdf")), (i, same)
        assert (out / "figures" / "forest.png").read_bytes() == b"\x89PNG figure"
        assert (out / "reading_notes.txt").read_text() == "a clinician's notes"
    r = run(project, "report", "--out", "rep", "--no-pdf")  # the next run cleans what the kills left
    assert r.returncode == 0, r.stderr
    assert not [p for p in project.iterdir() if p.name.startswith(".rep.")]


@pytest.mark.slow
def test_sigkill_during_build_leaves_old_or_new(project):
    import signal
    import time

    import random

    env = {**os.environ, "MT_EVIDENCE_DATA": str(project / "data" / "raw")}
    t0 = time.perf_counter()
    assert subprocess.run(CLI + ["build"], cwd=project, env=env, capture_output=True).returncode == 0
    duration = time.perf_counter() - t0  # mostly start-up: the kills aim at its last part, where files are written
    processed = project / "data" / "processed"
    good = snapshot(processed)
    rng = random.Random(7)
    for _ in range(5):
        proc = subprocess.Popen(CLI + ["build"], cwd=project, env=env, stdout=subprocess.DEVNULL,
                                stderr=subprocess.DEVNULL, start_new_session=True)
        time.sleep(rng.uniform(0.75, 1.05) * duration)
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
        assert snapshot(processed) == good  # the same raw data gives the same bytes: old == new
    assert run(project, "build").returncode == 0
    assert not [p for p in (project / "data").iterdir() if p.name.startswith(".processed.")]

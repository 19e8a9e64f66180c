"""Package-level guarantees: no import-time side effects, the public API, the console script."""

import subprocess
import sys


def test_import_is_light_and_has_no_side_effects(tmp_path):
    code = (
        "import sys, os; import mt_evidence as me; "
        "assert 'matplotlib' not in sys.modules, 'matplotlib imported'; "
        "assert 'pandera' not in sys.modules, 'pandera imported at import time'; "
        "me.pool_many([[0.1, 0.3, 0.5]], [[0.01, 0.02, 0.03]]); "
        "me.gosh([0.1, 0.3, 0.5], [0.01, 0.02, 0.03], method='REML'); "
        "assert not [m for m in sys.modules if m.split('.')[0] in ('dask', 'distributed')], 'dask imported'; "
        "assert os.listdir('.') == [], 'files written'; "
        "print(len(me.__all__))"
    )
    out = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    assert int(out.stdout) >= 20


def test_lazy_readers_resolve():
    import mt_evidence as me

    assert callable(me.load_evidence) and callable(me.read_revman) and callable(me.read_wide)


def test_console_script_runs():
    out = subprocess.run([sys.executable, "-m", "mt_evidence.cli", "--help"], capture_output=True, text=True)
    assert out.returncode == 0 and "validate" in out.stdout and "report" in out.stdout


def test_lint_clean():
    """pyflakes and bugbear checks (configured in pyproject.toml) find nothing."""
    import shutil
    from pathlib import Path

    ruff = shutil.which("ruff") or str(Path(sys.executable).parent / "ruff")
    root = Path(__file__).resolve().parents[1]
    out = subprocess.run([ruff, "check", "src", "tests", "benchmarks"], cwd=root, capture_output=True, text=True)
    assert out.returncode == 0, out.stdout + out.stderr

"""Validate and build at scale: an evidence folder of many SYNTHETIC trials (copies of the test fixture with new
study ids, not real data), timed for ``validate`` and ``build`` (best of --repeat runs).

Goal (hardening issue): 1,000,000 arm rows validated and built in under 30 s each on the project's machine.
Two timings of each: the library calls (``validate_path``; ``build_processed`` on evidence already loaded) and
the commands as a user runs them (``mt-evidence validate`` and ``mt-evidence build``, which loads and validates
before building; each in its own process, with its peak memory). The load average is printed before and after:
the machine has 2 cores shared with other work, so say how busy it was when quoting the numbers.
Run: ``.venv/bin/python benchmarks/bench_scale.py --rows 1000000`` (default: 100,000 rows; ``make bench`` runs it at
1,000,000).
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
FIX = ROOT / "tests" / "fixtures" / "synthetic_clean"


def make_evidence(folder: Path, arm_rows: int) -> int:
    """Copies of the synthetic fixture with new study ids until ``arm_rows`` arm rows; returns the count."""
    st = pd.read_csv(FIX / "studies.csv", dtype=str, keep_default_na=False)
    ar = pd.read_csv(FIX / "arms.csv", dtype=str, keep_default_na=False)
    co = pd.read_csv(FIX / "contrasts.csv", dtype=str, keep_default_na=False)
    copies = max(1, arm_rows // len(ar))
    folder.mkdir(parents=True, exist_ok=True)
    for name, df in (("studies", st), ("arms", ar), ("contrasts", co)):
        big = pd.concat([df] * copies, ignore_index=True)
        big["study_id"] = big["study_id"] + "X" + (big.index // len(df)).astype(str)
        big.to_csv(folder / f"{name}.csv", index=False)
    return copies * len(ar)


def make_duplicates(folder: Path, duplicates: int) -> None:
    """The synthetic fixture with its first arm row repeated ``duplicates`` times: each copy is a problem that
    names the row it repeats (the check was quadratic once: 20,000 duplicates took 416 s)."""
    folder.mkdir(parents=True, exist_ok=True)
    for name in ("studies", "contrasts"):
        shutil.copy(FIX / f"{name}.csv", folder / f"{name}.csv")
    ar = pd.read_csv(FIX / "arms.csv", dtype=str, keep_default_na=False)
    pd.concat([ar] + [ar.iloc[:1]] * duplicates, ignore_index=True).to_csv(folder / "arms.csv", index=False)


def best_of(fn, repeat: int) -> float:
    best = float("inf")
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t0)
    return best


def run_command(args: list[str]) -> tuple[float, float]:
    """(seconds, peak resident memory in MB) of ``mt-evidence ARGS`` in a process of its own."""
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(filter(None, [str(ROOT / "src"), os.environ.get("PYTHONPATH")])))
    with tempfile.TemporaryFile() as messages:
        t0 = time.perf_counter()
        proc = subprocess.Popen([sys.executable, "-m", "mt_evidence.cli", *args], env=env, stdout=messages,
                                stderr=messages)
        _, status, usage = os.wait4(proc.pid, 0)
        seconds = time.perf_counter() - t0
        if os.waitstatus_to_exitcode(status) != 0:
            messages.seek(0)
            raise SystemExit(f"mt-evidence {' '.join(args)} failed:\n{messages.read().decode(errors='replace')}")
    return seconds, usage.ru_maxrss / 1024  # kB on Linux


def best_command(args: list[str], repeat: int) -> tuple[float, float]:
    runs = [run_command(args) for _ in range(repeat)]
    return min(s for s, _ in runs), max(m for _, m in runs)


def load() -> str:
    return "/".join(f"{x:.2f}" for x in os.getloadavg())


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--rows", type=int, default=100_000)
    ap.add_argument("--repeat", type=int, default=1)
    ap.add_argument("--no-build", action="store_true", help="time validate only")
    ap.add_argument("--duplicates", type=int, default=20_000,
                    help="also time validate of the fixture with this many duplicate arm rows (0: skip)")
    args = ap.parse_args(argv)
    import mt_evidence as me

    print(f"load average (1/5/15 min) before: {load()}")
    with tempfile.TemporaryDirectory() as td:
        ev_dir = Path(td) / "ev"
        n = make_evidence(ev_dir, args.rows)
        t_validate = best_of(lambda: me.validate_path(ev_dir), args.repeat)
        c_validate, m_validate = best_command(["validate", str(ev_dir)], args.repeat)
        t_build = c_build = m_build = float("nan")
        if not args.no_build:
            ev = me.load_evidence(ev_dir)
            out = Path(td) / "processed"
            t_build = best_of(lambda: me.build_processed(ev, out), args.repeat)
            del ev
            c_build, m_build = best_command(["build", "--data", str(ev_dir), "--out", str(out)], args.repeat)
            shutil.rmtree(out, ignore_errors=True)
        if args.duplicates:
            dup_dir = Path(td) / "dup"
            make_duplicates(dup_dir, args.duplicates)
            found = []
            t_dup = best_of(lambda: found.append(len(me.validate_path(dup_dir))), args.repeat)
    print(f"load average (1/5/15 min) after: {load()}")
    if args.duplicates:
        print(f"{args.duplicates:,} duplicate arm rows: validate {t_dup:.1f} s, {found[-1]:,} problems named")
    print(f"{n:,} arm rows: validate {t_validate:.1f} s, build {t_build:.1f} s (library calls; build of loaded evidence)")
    print(f"{n:,} arm rows: mt-evidence validate {c_validate:.1f} s (peak {m_validate:,.0f} MB), mt-evidence build "
          f"{c_build:.1f} s (peak {m_build:,.0f} MB) (goal: under 30 s each at 1,000,000)")
    return 0


if __name__ == "__main__":
    sys.exit(main())

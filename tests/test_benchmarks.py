"""The benchmark scripts of ``make bench`` still run (their timings are not checked here: benchmarks/README.md).
Each runs in its own process at a small size, on SYNTHETIC data (random draws, not trials) or the bundled evidence;
none writes outside a temporary folder."""

import importlib.util
import subprocess
import sys
from pathlib import Path

import pytest

BENCH = Path(__file__).resolve().parents[1] / "benchmarks"


@pytest.mark.parametrize("args, expect", [
    (["bench_pool_many.py", "--m", "100", "--k", "5", "--repeat", "1", "--no-r"], "our failed fits"),
    (["bench_robust.py", "--repeat", "1", "--k", "10"], "GOSH DL, k = 10"),
    (["bench_scale.py", "--rows", "2000", "--duplicates", "200"], "mt-evidence build"),
    (["bench_simulation.py", "--m", "2000", "--chunk", "500", "--bag-m", "500"],
     "in memory and dask array give the same estimates: yes"),
])
def test_a_benchmark_runs_at_a_small_size(args, expect):
    proc = subprocess.run([sys.executable, str(BENCH / args[0]), *args[1:]], capture_output=True, text=True,
                          timeout=300, cwd=BENCH.parent)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert expect in proc.stdout


def test_the_report_benchmark_times_with_the_shared_helper():
    """bench_report.py times each phase with bench_pool_many's best_of (whose interface changed once and broke it);
    the whole report benchmark takes half a minute, so only its helper runs here."""
    sys.path.insert(0, str(BENCH))
    try:
        spec = importlib.util.spec_from_file_location("bench_report", BENCH / "bench_report.py")
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
    finally:
        sys.path.remove(str(BENCH))
    secs, out = module.timed(lambda: 42, 2)
    assert out == 42 and 0 <= secs < 1

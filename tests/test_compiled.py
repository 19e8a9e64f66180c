"""The compiled solvers (stats/compiled.py) give the NumPy engine's numbers to the bit: every field of
``pool_many``, every estimator, test and convention, on SYNTHETIC batches (random draws, not trials) built to reach
every branch: padding, k = 1 and 2, tau^2 = 0, variances over six decades, equal variances, a bimodal likelihood
(the certificate fails and the score grid decides), Q-profile bounds at 0, left of, between and beyond the points
the search evaluated."""

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from synthetic_batches import random_rows

import mt_evidence as me
from mt_evidence.stats import compiled, intercept

BIMODAL_Y = [-0.048267, 1.536343, -0.697126, -0.149146, -0.288443, -0.866066, -0.257497, 1.486625, -0.819892,
             -0.136817]
BIMODAL_V = [0.152924, 0.280608, 0.174337, 0.19729, 0.127729, 0.453503, 0.015497, 0.479016, 0.244037, 0.011709]

METHODS = ["REML", "ML", "DL", "PM", "EB", "HS", "HE", "SJ", "FE"]


def test_numba_is_installed_for_the_tests():
    """The test environment has the ``fast`` extra (numba), so that the tests below compare two engines."""
    assert compiled.available()


def test_the_kernels_constants_are_the_engines():
    """The compiled solvers keep their own copies of the engine's tolerances (numba compiles them in)."""
    from mt_evidence.stats import numba_kernels

    for name in ("_EPS", "_NEWTON_TOL", "_MAXITER", "_MARGIN", "_ZONE", "_T", "_S", "_U", "_DU", "_L", "_DL", "_Q"):
        assert getattr(numba_kernels, name) == getattr(intercept, name), name


@pytest.fixture(autouse=True)
def engine_state(monkeypatch):
    """Every test here leaves the choice of engine as it found it."""
    for name in ("mode", "pooled", "loaded"):
        monkeypatch.setattr(compiled._State, name, getattr(compiled._State, name))


def both(monkeypatch, Y, V, **kw):
    """pool_many on the NumPy engine and on the compiled solvers (for batches of any size)."""
    monkeypatch.setattr(compiled, "MIN_COLUMNS", 1)
    compiled.use(False)
    plain = me.pool_many(Y, V, **kw)
    compiled.use(True)
    fast = me.pool_many(Y, V, **kw)
    return plain, fast


def assert_same(a, b):
    for name in intercept.FIELDS:
        x, y = np.asarray(getattr(a, name)), np.asarray(getattr(b, name))
        if x.dtype.kind == "f":
            same = (x == y) | (np.isnan(x) & np.isnan(y))
            assert same.all(), (name, np.flatnonzero(~same)[:5], x[~same][:3], y[~same][:3])
        else:
            assert np.array_equal(x, y), name


def hard_rows(seed, m=600, kmax=20):
    """Meta-analyses that reach the solvers' branches: k from 1, variances over six decades or all equal, effects
    far apart or identical, and the bimodal one."""
    rng = np.random.default_rng(seed)
    k = rng.integers(1, kmax + 1, size=m)
    V = 10.0 ** rng.uniform(-4, 2, size=(m, kmax))
    V[: m // 6] = rng.uniform(0.01, 1, size=(m // 6, 1))  # equal variances in a row
    tau2 = rng.choice([0.0, 1e-4, 0.05, 1.0, 50.0], size=(m, 1))
    Y = rng.normal(rng.normal(0, 2, size=(m, 1)), np.sqrt(V + tau2))
    Y[m // 6: m // 5] = 0.7  # identical effects: Q = 0
    Y[-1, :10], V[-1, :10] = BIMODAL_Y, BIMODAL_V
    k[-1] = 10
    pad = np.arange(kmax)[None, :] >= k[:, None]
    Y[pad] = np.nan
    V[pad] = np.nan
    return Y, V


@pytest.mark.parametrize("method", METHODS)
@pytest.mark.parametrize("test", ["z", "hksj"])
def test_every_field_is_the_numpy_engines(monkeypatch, method, test):
    for seed in (1, 2):
        Y, V = hard_rows(seed)
        assert_same(*both(monkeypatch, Y, V, method=method, test=test))
    Y, V = random_rows(500, 3)
    assert_same(*both(monkeypatch, Y, V, method=method, test=test, level=0.9, i2_type="q"))


def test_the_certificate_and_the_grid_decide_alike(monkeypatch):
    """The same columns go to the score grid (the bimodal one among them, whose global maximum the grid finds),
    and the grid brings the same candidate maxima to the choice by likelihood."""
    calls = []
    real = intercept._best_likelihood
    monkeypatch.setattr(intercept, "_best_likelihood",
                        lambda st, kind, *a: calls.append((st.m, *(x.copy() for x in a))) or real(st, kind, *a))
    Y, V = hard_rows(5)
    plain, fast = both(monkeypatch, Y, V, method="REML")
    assert_same(plain, fast)
    assert len(calls) == 2 and calls[0][0] >= 1 and len(calls[0][2]) >= 1
    for a, b in zip(calls[0], calls[1]):
        assert np.array_equal(a, b)
    assert fast.tau2[-1] == pytest.approx(0.19625, abs=1e-4)


def spy_compiled(monkeypatch) -> list:
    """Record each batch that reaches the compiled REML solver."""
    used = []
    real = intercept._tau2_likelihood_compiled
    monkeypatch.setattr(intercept, "_tau2_likelihood_compiled", lambda st, *a: used.append(st.m) or real(st, *a))
    return used


def rows_of(m, seed=4):
    rng = np.random.default_rng(seed)
    V = rng.uniform(0.01, 0.5, size=(m, 8))
    return rng.normal(0, np.sqrt(V + 0.1)), V


def test_the_batch_size_picks_the_engine(monkeypatch):
    used = spy_compiled(monkeypatch)
    Y, V = rows_of(compiled.MIN_COLUMNS)
    compiled.use(True)
    me.pool_many(Y[:-1], V[:-1])
    assert used == []
    me.pool_many(Y, V)
    assert used == [compiled.MIN_COLUMNS]
    compiled.use(False)
    me.pool_many(Y, V)
    assert used == [compiled.MIN_COLUMNS]


def test_automatic_mode_loads_the_solvers_once_they_pay(monkeypatch):
    """A process starts on NumPy (a single GOSH or multiverse run does not pay for loading numba) and switches once
    it has pooled WARM_AFTER analyses in large batches, the batch that crosses the count included."""
    used = spy_compiled(monkeypatch)
    monkeypatch.setattr(compiled, "WARM_AFTER", 250)
    compiled.use(None)
    monkeypatch.setattr(compiled._State, "loaded", False)
    monkeypatch.setattr(compiled._State, "pooled", 0)
    Y, V = rows_of(100)
    for _ in range(2):
        me.pool_many(Y, V)
    me.pool_many(Y[:50], V[:50])  # small batches do not count
    assert used == [] and compiled._State.pooled == 200
    me.pool_many(Y, V)
    assert used == [100]
    me.pool_many(Y[:70], V[:70])
    assert used == [100, 70]


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(seed=st.integers(0, 2**32 - 1), k=st.integers(2, 30), scale=st.floats(-6, 6),
       method=st.sampled_from(["REML", "ML", "PM", "DL"]))
def test_any_batch_is_the_numpy_engines(monkeypatch, seed, k, scale, method):
    """Random batches at any scale of the effects and variances (10^-6 to 10^6)."""
    rng = np.random.default_rng(seed)
    V = 10.0 ** (scale + rng.uniform(-2, 2, size=(80, k)))
    Y = rng.normal(0, np.sqrt(V + 10.0 ** scale * rng.choice([0, 0.3, 3], size=(80, 1))))
    assert_same(*both(monkeypatch, Y, V, method=method, test="hksj"))


def test_a_broken_numba_warns_and_the_numpy_engine_runs(monkeypatch):
    """numba installed but failing to import (e.g. built for another NumPy): one warning, then the NumPy engine;
    asking for the compiled solvers names the extra to install."""
    import builtins

    real_import = builtins.__import__

    def broken(name, *args, **kwargs):
        if name == "numba":
            raise ImportError("numba built for another NumPy")
        return real_import(name, *args, **kwargs)

    used = spy_compiled(monkeypatch)
    compiled.available.cache_clear()
    monkeypatch.setattr(builtins, "__import__", broken)
    monkeypatch.setattr(compiled, "WARM_AFTER", 1)
    monkeypatch.setattr(compiled._State, "loaded", False)
    compiled.use(None)
    try:
        Y, V = rows_of(100, seed=6)
        with pytest.warns(RuntimeWarning, match="numba is installed but cannot be imported.*NumPy engine"):
            assert np.isfinite(me.pool_many(Y, V).tau2).all()
        assert used == [] and not compiled._State.loaded
        with pytest.raises(ImportError, match=r"pip install 'mt_evidence\[fast\]'"):
            compiled.use(True)
    finally:
        monkeypatch.undo()
        compiled.available.cache_clear()
    assert compiled.available()


def test_compiled_chunks_on_dasks_threads_are_the_numpy_engines(monkeypatch):
    """The compiled solvers release the GIL: on dask's threaded scheduler several chunks run them at once (scratch
    buffers are per call, so threads never share one); every field is the NumPy engine's in memory, to the bit."""
    import dask
    import dask.array as da

    Y, V = hard_rows(8, m=1200)
    compiled.use(False)
    plain = me.pool_many(Y, V, method="REML", test="hksj")
    used = spy_compiled(monkeypatch)
    compiled.use(True)
    with dask.config.set(scheduler="threads", num_workers=4):
        fast = me.pool_many(da.from_array(Y, chunks=(150, -1)), da.from_array(V, chunks=(150, -1)), method="REML",
                            test="hksj")
    assert len(used) == 8
    assert_same(plain, fast)

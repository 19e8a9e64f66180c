"""The engine's scratch memory (stats/intercept.py): fits made in a thread's reusable buffer give the same numbers
to the bit as fits in fresh memory, nothing that leaves the engine is scratch memory (a region given back is
poisoned with NaN here, so a use after it would show), and a buffer too small or capped falls back to fresh
memory. Data are SYNTHETIC random draws, not trials."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest

import mt_evidence as me
from mt_evidence.stats import intercept
from mt_evidence.stats.conventions import METHODS
from synthetic_batches import random_rows




def fresh(Y, V, **kw):
    """pool_many with every array in fresh memory (a scratch buffer of size 0)."""
    old = intercept.SCRATCH_MAX_BYTES
    intercept.SCRATCH_MAX_BYTES = 0
    intercept.release_scratch()
    try:
        return me.pool_many(Y, V, **kw)
    finally:
        intercept.SCRATCH_MAX_BYTES = old
        intercept.release_scratch()


def assert_same(a, b):
    for name in intercept.FIELDS:
        x, y = getattr(a, name), getattr(b, name)
        assert (x is None and y is None) or np.array_equal(x, y, equal_nan=x.dtype != object), name


@pytest.mark.parametrize("method", METHODS)
def test_scratch_memory_gives_the_same_numbers_and_nothing_escapes(method, monkeypatch):
    Y, V = random_rows(400, 3, 14)
    want = fresh(Y, V, method=method, test="hksj")
    monkeypatch.setattr(intercept._SCRATCH, "poison", True)
    for _ in range(3):  # the first call sizes the buffer, the next ones use it
        got = me.pool_many(Y, V, method=method, test="hksj")
        assert_same(got, want)
    assert len(intercept._SCRATCH.buf) > 0 and intercept._SCRATCH.depth == 0 and intercept._SCRATCH.top == 0
    # the results are not views of the buffer: a later call (which writes it) leaves them as they were
    me.pool_many(Y[::-1], V[::-1], method=method, test="hksj")
    assert_same(got, want)


def test_a_capped_buffer_falls_back_to_fresh_memory(monkeypatch):
    Y, V = random_rows(400, 5, 14)
    want = fresh(Y, V, method="REML", test="hksj")
    intercept.release_scratch()
    monkeypatch.setattr(intercept, "SCRATCH_MAX_BYTES", 64 * 1024)  # room for a few arrays, not for all
    monkeypatch.setattr(intercept._SCRATCH, "poison", True)
    for _ in range(2):
        assert_same(me.pool_many(Y, V, method="REML", test="hksj"), want)
    assert len(intercept._SCRATCH.buf) * 8 <= 64 * 1024
    intercept.release_scratch()


def test_threads_have_their_own_buffers():
    data = [random_rows(400, s, 14) for s in range(6)]
    want = [fresh(Y, V, method="REML", test="hksj", fields=("estimate", "tau2", "tau2_ci_high")) for Y, V in data]
    with ThreadPoolExecutor(3) as pool:
        got = list(pool.map(lambda d: me.pool_many(*d, method="REML", test="hksj",
                                                   fields=("estimate", "tau2", "tau2_ci_high")), data * 3))
    for i, g in enumerate(got):
        assert_same(g, want[i % len(data)])


def test_scopes_nest_and_give_back_what_they_took():
    s = intercept._SCRATCH
    intercept.release_scratch()
    with intercept.scratch():
        intercept._empty((4, 100))  # sizes the buffer for the next time
    with intercept.scratch():
        a = intercept._empty((4, 10))
        top = s.top
        with intercept.scratch():
            b = intercept._empty((4, 10))
            assert s.top > top and not np.shares_memory(a, b)
        assert s.top == top
        c = intercept._empty((4, 10))
        assert np.shares_memory(b, c)  # the inner scope's memory is used again
    assert s.top == 0 and s.depth == 0
    assert not np.shares_memory(intercept._empty((4, 10)), s.buf)  # outside a scope: fresh memory
    intercept.release_scratch()

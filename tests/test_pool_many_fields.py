"""pool_many(fields=): only the fields asked for are computed and kept, each the same to the bit as when every
field is computed. Data are SYNTHETIC random draws, not trials."""

from __future__ import annotations

from dataclasses import fields as dc_fields

import numpy as np
import pytest

import mt_evidence as me
from mt_evidence.stats import intercept
from mt_evidence.stats.conventions import METHODS
from mt_evidence.stats.pooling import PoolManyResult
from synthetic_batches import random_rows

CHOICES = [("estimate", "se", "tau2"), ("p",), ("q_p", "i2"), ("tau2_ci_low",), ("i2_ci_high", "h2_ci_low"),
           ("weights",), ("loglik", "tau2_se"), ("test_used", "df", "s2w"), ("pi_low", "pi_high", "stat"),
           intercept.FIELDS]




def same(a, b) -> bool:
    return np.array_equal(a, b) if a.dtype == object else np.array_equal(a, b, equal_nan=True)


def test_the_engine_fields_are_the_result_fields():
    assert intercept.FIELDS == tuple(f.name for f in dc_fields(PoolManyResult) if f.name != "conventions")


@pytest.mark.parametrize("method", METHODS)
@pytest.mark.parametrize("conv", [dict(test="hksj"), dict(test="z", i2_type="q", pi_type="riley"),
                                  dict(test="t", tau2_ci=False)])
def test_each_field_asked_for_is_the_same_to_the_bit(method, conv):
    Y, V = random_rows(300, 16, 12)
    full = me.pool_many(Y, V, method=method, **conv)
    for chosen in CHOICES:
        part = me.pool_many(Y, V, method=method, fields=chosen, **conv)
        assert set(part.computed) == set(chosen) | {"k"}
        for name in intercept.FIELDS:
            got = getattr(part, name)
            if name in chosen or name == "k":
                assert same(got, getattr(full, name)), (chosen, name)
            else:
                assert got is None, name
        assert part.conventions == full.conventions and len(part) == len(full)


def test_what_is_left_out_is_not_computed(monkeypatch):
    Y, V = random_rows(300, 16, 12)
    calls = []
    for name in ("tau2_se", "_qprofile_bounds"):
        real = getattr(intercept, name)
        monkeypatch.setattr(intercept, name, lambda *a, _n=name, _r=real, **k: calls.append(_n) or _r(*a, **k))
    me.pool_many(Y, V, method="DL", fields=("estimate", "se", "tau2"))
    assert calls == []
    me.pool_many(Y, V, method="DL", fields=("tau2_ci_high",))
    assert calls == ["_qprofile_bounds"]
    me.pool_many(Y, V, method="DL", fields=("tau2_se",))
    assert calls == ["_qprofile_bounds", "tau2_se"]


def test_a_partial_result_in_a_frame_and_row_refuses():
    Y, V = random_rows(300, 16, 12)
    part = me.pool_many(Y, V, fields="estimate")
    assert part.computed == ("estimate", "k")
    frame = part.to_frame()
    assert list(frame.columns) == ["estimate", "k", "method", "test", "level"]
    with pytest.raises(ValueError, match="row\\(\\) needs every field.*lacks se, stat"):
        part.row(0)
    full = me.pool_many(Y, V)
    assert full.row(3).estimate == part.estimate[3]


def test_unknown_or_no_fields_are_named():
    Y, V = random_rows(5, 16, 12)
    with pytest.raises(ValueError, match="unknown field\\(s\\) 'estimat', 'pval'; the fields are estimate, se"):
        me.pool_many(Y, V, fields=("estimat", "pval", "se"))
    with pytest.raises(ValueError, match="is empty"):
        me.pool_many(Y, V, fields=())

"""Pooling: properties, edge cases, conventions and error messages (the metafor numbers are in
test_reference_metafor.py)."""

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import mt_evidence as me
from mt_evidence.stats import engine
from mt_evidence.stats.conventions import METHODS

# ---------------------------------------------------------------------------------------- strategies

finite = st.floats(min_value=-5, max_value=5, allow_nan=False, allow_infinity=False)
variance = st.floats(min_value=1e-3, max_value=2.0, allow_nan=False, allow_infinity=False)


@st.composite
def meta_data(draw, min_k=2, max_k=15):
    k = draw(st.integers(min_value=min_k, max_value=max_k))
    yi = np.array(draw(st.lists(finite, min_size=k, max_size=k)))
    vi = np.array(draw(st.lists(variance, min_size=k, max_size=k)))
    return yi, vi


SETTINGS = settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@SETTINGS
@given(meta_data(), st.sampled_from(METHODS), st.randoms())
def test_permutation_of_studies_changes_nothing(data, method, rnd):
    yi, vi = data
    perm = list(range(len(yi)))
    rnd.shuffle(perm)
    a = me.pool(yi, vi, method=method)
    b = me.pool(yi[perm], vi[perm], method=method)
    for f in ("estimate", "se", "tau2", "i2", "q", "ci_low", "pi_high", "tau2_ci_high"):
        assert getattr(b, f) == pytest.approx(getattr(a, f), rel=1e-7, abs=1e-9, nan_ok=True)
    np.testing.assert_allclose(b.weights, a.weights[perm], rtol=1e-7, atol=1e-9)


@SETTINGS
@given(meta_data(min_k=1))
def test_fe_is_the_inverse_variance_weighted_mean(data):
    yi, vi = data
    r = me.pool(yi, vi, method="FE")
    w = 1 / vi
    assert r.estimate == pytest.approx(np.sum(w * yi) / np.sum(w), rel=1e-10, abs=1e-12)
    assert r.se == pytest.approx(np.sqrt(1 / np.sum(w)), rel=1e-10)
    assert r.tau2 == 0


@SETTINGS
@given(meta_data(), st.sampled_from(METHODS), st.sampled_from(["z", "t", "hksj"]))
def test_tau2_nonnegative_and_intervals_contain_estimate(data, method, test):
    yi, vi = data
    r = me.pool(yi, vi, method=method, test=test)
    assert r.tau2 >= 0
    assert r.ci_low <= r.estimate <= r.ci_high
    assert r.pi_low <= r.ci_low + 1e-12 and r.pi_high >= r.ci_high - 1e-12
    if method != "FE":
        assert r.tau2_ci_low <= r.tau2_ci_high
        assert 0 <= r.i2 <= 100
    np.testing.assert_allclose(r.weights.sum(), 100.0)


@SETTINGS
@given(meta_data(), st.sampled_from(METHODS), st.floats(min_value=0.1, max_value=10))
def test_scaling_yi_scales_the_estimate(data, method, c):
    yi, vi = data
    a = me.pool(yi, vi, method=method)
    b = me.pool(c * yi, c**2 * vi, method=method)
    assert b.estimate == pytest.approx(c * a.estimate, rel=1e-6, abs=1e-9)
    assert b.se == pytest.approx(c * a.se, rel=1e-6, abs=1e-9)
    assert b.tau2 == pytest.approx(c**2 * a.tau2, rel=1e-6, abs=1e-9)
    assert b.i2 == pytest.approx(a.i2, rel=1e-6, abs=1e-6)


@SETTINGS
@given(meta_data(min_k=3, max_k=30))
def test_reml_is_the_global_maximum(data):
    """The REML estimate beats every point of a fine grid (no silent local optimum, no failed iteration)."""
    yi, vi = data
    r = me.pool(yi, vi, method="REML")
    batch = engine.Batch.from_arrays(yi[None, :], vi[None, :])
    grid = np.concatenate([[0.0], np.geomspace(1e-8, 10 * (np.var(yi) + vi.max()), 400)])
    ll_grid = np.array([engine.loglik(batch, np.array([t]), "REML")[0] for t in grid])
    ll_hat = engine.loglik(batch, np.array([r.tau2]), "REML")[0]
    assert ll_hat >= ll_grid.max() - 1e-9


def test_many_random_datasets_converge_where_fisher_scoring_can_fail():
    """10,000 random meta-analyses (synthetic): every REML/ML/PM/EB fit returns a finite optimum."""
    rng = np.random.default_rng(1)
    m, kmax = 10_000, 12
    k = rng.integers(2, kmax + 1, size=m)
    V = rng.uniform(0.001, 1.0, size=(m, kmax)) ** 2 * rng.choice([1, 100], size=(m, 1))
    Y = rng.normal(0, np.sqrt(V + rng.choice([0, 0.05, 1, 25], size=(m, 1))))
    pad = np.arange(kmax)[None, :] >= k[:, None]
    Y[pad] = np.nan
    V[pad] = np.nan
    for method in ("REML", "ML", "PM", "EB"):
        res = me.pool_many(Y, V, method=method)
        assert np.isfinite(res.tau2).all() and (res.tau2 >= 0).all()
        assert np.isfinite(res.estimate).all() and np.isfinite(res.se).all()
    # score is zero at interior REML optima
    res = me.pool_many(Y, V, method="REML")
    batch = engine.Batch.from_arrays(Y, V)
    s = engine.score(batch, res.tau2, "REML")
    interior = res.tau2 > 1e-8
    scale = (batch.M / (batch.V + res.tau2[:, None])).sum(axis=1)
    assert np.all(np.abs(s[interior]) <= 1e-6 * scale[interior])
    assert np.all(s[~interior] <= 1e-8 * scale[~interior])


# -------------------------------------------------------------------------------------------- edges


def test_single_study():
    r = me.pool([0.5], [0.04], method="REML", test="hksj")
    assert r.k == 1 and r.tau2 == 0
    assert r.estimate == 0.5 and r.se == pytest.approx(0.2)
    assert r.test_used == "z"
    assert any("k >= 2" in n for n in r.notes)
    assert np.isnan(r.tau2_ci_low)


def test_two_studies_all_methods():
    for m in METHODS:
        r = me.pool([0.1, 0.9], [0.01, 0.02], method=m, test="hksj")
        assert np.isfinite(r.estimate) and np.isfinite(r.ci_low)
        assert r.df == 1


def test_identical_effects_give_zero_tau2():
    for m in METHODS:
        r = me.pool([0.3] * 5, [0.1, 0.2, 0.05, 0.3, 0.1], method=m)
        assert r.tau2 == pytest.approx(0.0, abs=1e-12)
        assert r.estimate == pytest.approx(0.3)
        if m != "FE":
            assert r.tau2_ci_high == pytest.approx(0.0, abs=1e-12)


def test_huge_and_tiny_variances_are_handled():
    r = me.pool([0.1, 0.5, -0.2], [1e-10, 1e12, 0.5], method="REML")
    assert np.isfinite(r.estimate) and r.estimate == pytest.approx(0.1, abs=1e-6)
    r = me.pool([1e6, 1e6 + 1, 1e6 - 2], [1e8, 2e8, 3e8], method="REML")
    assert np.isfinite(r.estimate)


def test_hksj_when_effects_are_identical_gives_zero_se_as_metafor():
    r = me.pool([0.2, 0.2, 0.2], [0.1, 0.1, 0.1], test="hksj")
    assert r.se == 0.0 and r.s2w == 0.0
    r2 = me.pool([0.2, 0.2, 0.2], [0.1, 0.1, 0.1], test="hksj", adhoc=True)
    assert r2.s2w == 1.0 and r2.se > 0


def test_prediction_interval_options():
    yi = [0.1, 0.3, 0.5, 0.2, 0.9]
    vi = [0.02, 0.03, 0.01, 0.05, 0.04]
    from scipy import stats

    base = me.pool(yi, vi)
    half = np.sqrt(base.se**2 + base.tau2)
    riley = me.pool(yi, vi, pi_type="riley")
    assert riley.pi_high - riley.estimate == pytest.approx(stats.t.ppf(0.975, 3) * half)
    tk1 = me.pool(yi, vi, pi_type="t")
    assert tk1.pi_high - tk1.estimate == pytest.approx(stats.t.ppf(0.975, 4) * half)
    assert base.pi_high - base.estimate == pytest.approx(stats.norm.ppf(0.975) * half)


def test_i2_from_q_option():
    yi = [0.1, 0.3, 0.5, 0.2, 0.9]
    vi = [0.02, 0.03, 0.01, 0.05, 0.04]
    r = me.pool(yi, vi, i2_type="q")
    assert r.i2 == pytest.approx(max(0, 100 * (r.q - 4) / r.q))
    assert r.i2_ci_low <= r.i2 <= r.i2_ci_high


def test_i2_from_q_ci_follows_higgins_thompson_2002():
    """Test-based CI on ln H (Higgins & Thompson 2002, as R's meta): written out by hand for Q > k and Q <= k."""
    from scipy import stats

    yi = np.array([0.1, 0.3, 0.5, 0.2, 0.9, -0.2])
    vi = np.array([0.02, 0.03, 0.01, 0.05, 0.04, 0.02])
    for scale in (1.0, 0.2):  # a heterogeneous and a homogeneous case
        r = me.pool(yi * scale, vi, i2_type="q")
        k, q = r.k, r.q
        if q > k:
            se = 0.5 * (np.log(q) - np.log(k - 1)) / (np.sqrt(2 * q) - np.sqrt(2 * k - 3))
        else:
            se = np.sqrt(1 / (2 * (k - 2)) * (1 - 1 / (3 * (k - 2) ** 2)))
        lnh = np.log(max(np.sqrt(q / (k - 1)), 1.0))
        z = stats.norm.ppf(0.975)
        hl, hu = max(np.exp(lnh - z * se), 1.0), max(np.exp(lnh + z * se), 1.0)
        assert r.i2_ci_low == pytest.approx(100 * (hl**2 - 1) / hl**2, abs=1e-10)
        assert r.i2_ci_high == pytest.approx(100 * (hu**2 - 1) / hu**2, abs=1e-10)


def test_presets_set_conventions_and_print_them():
    yi = [0.1, 0.3, 0.5, 0.2, 0.9]
    vi = [0.02, 0.03, 0.01, 0.05, 0.04]
    rv = me.pool(yi, vi, preset="revman")
    assert (rv.method, rv.test, rv.conventions.pi_type) == ("REML", "hksj", "t")
    assert "preset: revman" in repr(rv)
    assert "Hartung-Knapp" in repr(rv)
    mf = me.pool(yi, vi, preset="metafor")
    plain = me.pool(yi, vi)
    assert mf.estimate == plain.estimate and mf.ci_low == plain.ci_low
    r5 = me.pool(yi, vi, preset="revman5")
    assert r5.method == "DL" and r5.conventions.i2_type == "q"
    mod = me.pool(yi, vi, preset="revman", test="z")
    assert "modified" in mod.conventions.preset


def test_level_changes_intervals():
    yi = [0.1, 0.3, 0.5, 0.2, 0.9]
    vi = [0.02, 0.03, 0.01, 0.05, 0.04]
    a = me.pool(yi, vi, level=0.95)
    b = me.pool(yi, vi, level=90)
    assert b.level == 0.9
    assert (b.ci_high - b.ci_low) < (a.ci_high - a.ci_low)


def test_result_frames_and_reprs():
    r = me.pool([0.1, 0.3, 0.5], [0.02, 0.03, 0.01], labels=["A", "B", "C"])
    f = r.to_frame()
    assert f.shape[0] == 1 and "estimate" in f and "conv_method" in f
    s = r.summary_frame()
    assert list(s["study"]) == ["A", "B", "C", "pooled"]
    assert "Random-effects model" in repr(r) and "Conventions" in repr(r)
    assert "<table>" in r._repr_html_()
    import dataclasses

    with pytest.raises(dataclasses.FrozenInstanceError):
        r.estimate = 1.0  # frozen


def test_pool_many_frame_and_aliases():
    Y = np.array([[0.1, 0.3, 0.5], [0.2, np.nan, 0.4]])
    V = np.array([[0.02, 0.03, 0.01], [0.01, np.nan, 0.02]])
    res = me.pool_many(Y, V, method="reml", test="knha")
    assert res.method == "REML" and res.test == "hksj"
    assert list(res.k) == [3, 2]
    df = res.to_frame()
    assert len(df) == 2 and {"estimate", "tau2", "k"} <= set(df.columns)
    r = me.pool([0.1, 0.3], sei=[0.1, 0.2], method="EE")
    assert r.method == "FE"


# -------------------------------------------------------------------------------------------- errors


@pytest.mark.parametrize(
    "kwargs, message",
    [
        (dict(yi=[0.1, 0.2], vi=[0.1, -0.1]), "sampling variances must be positive"),
        (dict(yi=[0.1, 0.2], vi=[0.1, 0.0]), "sampling variances must be positive"),
        (dict(yi=[0.1, np.nan], vi=[0.1, 0.1]), "contains NaN"),
        (dict(yi=[0.1, 0.2, 0.3], vi=[0.1, 0.1]), "same length"),
        (dict(yi=[0.1, 0.2], vi=[0.1, 0.1], method="XYZ"), "unknown method 'XYZ': accepted are FE, DL"),
        (dict(yi=[0.1, 0.2], vi=[0.1, 0.1], test="wald"), "unknown test"),
        (dict(yi=[0.1, 0.2], vi=[0.1, 0.1], preset="stata"), "unknown preset"),
        (dict(yi=[0.1, 0.2], vi=[0.1, 0.1], level=150), "level must be in"),
        (dict(yi=[0.1, 0.2], vi=[0.1, 0.1], pi_type="wide"), "unknown pi_type"),
        (dict(yi=[0.1, 0.2], vi=[0.1, 0.1], adhoc=True), "adhoc=True"),
        (dict(yi=[0.1, 0.2]), "exactly one of vi"),
        (dict(yi=[], vi=[]), "no studies"),
        (dict(yi=["a", "b"], vi=[0.1, 0.1]), "must be numeric"),
        (dict(yi=[0.1, np.inf], vi=[0.1, 0.1]), "infinite"),
    ],
)
def test_bad_input_raises_clear_error(kwargs, message):
    with pytest.raises((ValueError, TypeError), match=message.replace("(", r"\(")):
        me.pool(**kwargs)


def test_pool_many_padding_must_match():
    with pytest.raises(ValueError, match="NaN in different places"):
        me.pool_many([[0.1, np.nan]], [[0.1, 0.1]])
    with pytest.raises(ValueError, match="no studies"):
        me.pool_many([[np.nan, np.nan]], [[np.nan, np.nan]])


def test_bimodal_reml_likelihood_finds_the_global_maximum():
    """Synthetic data (a random draw from benchmarks/bench_pool_many.py, row 1495 of seed 2026) whose REML
    likelihood has a local maximum at tau^2 = 0 (the score is negative there) and the global one near 0.196.
    Fisher scoring started at zero, and a coarse likelihood grid, both stop at the local maximum."""
    yi = [-0.048267, 1.536343, -0.697126, -0.149146, -0.288443, -0.866066, -0.257497, 1.486625, -0.819892,
          -0.136817]
    vi = [0.152924, 0.280608, 0.174337, 0.19729, 0.127729, 0.453503, 0.015497, 0.479016, 0.244037, 0.011709]
    r = me.pool(yi, vi, method="REML")
    batch = engine.Batch.from_arrays(np.array([yi]), np.array([vi]))
    assert engine.score(batch, np.zeros(1), "REML")[0] < 0  # tau^2 = 0 is a local maximum
    assert r.tau2 == pytest.approx(0.19625, abs=1e-4)
    assert r.loglik > engine.loglik(batch, np.zeros(1), "REML")[0] + 0.02


# ------------------------------------------------------------------ analyses of their own sizes (no padding)


def assert_same_fields(a, b):
    assert a.computed == b.computed
    for f in a.computed:
        np.testing.assert_array_equal(getattr(a, f), getattr(b, f), err_msg=f)
    assert a.conventions == b.conventions


@pytest.mark.parametrize("method", ["REML", "DL", "PM"])
def test_pool_many_takes_analyses_of_their_own_sizes(method):
    from synthetic_batches import as_analyses, random_rows

    Y, V = random_rows(400, seed=11)
    analyses = as_analyses(Y, V)
    padded = me.pool_many(Y, V, method=method, test="hksj")
    assert_same_fields(me.pool_many(analyses, method=method, test="hksj"), padded)
    # as mappings (variances or standard errors, as lists or arrays): the same bits as those variances padded
    odd = np.arange(400) % 2 == 1
    maps = [{"yi": list(y), "sei": np.sqrt(v)} if o else {"yi": y, "vi": list(v)}
            for o, (y, v) in zip(odd, analyses)]
    V2 = np.where(odd[:, None], np.sqrt(V) ** 2, V)
    assert_same_fields(me.pool_many(maps, method=method, test="hksj"),
                       me.pool_many(Y, V2, method=method, test="hksj"))
    # and from a generator
    assert_same_fields(me.pool_many((a for a in analyses), method=method, test="hksj"), padded)
    # weights come padded to the largest k
    assert padded.weights.shape == (400, max(len(y) for y, _ in analyses))


def test_the_checked_slow_path_stacks_analyses_as_the_fast_one(monkeypatch):
    """Well-formed analyses are stacked with whole-batch checks; any oddity sends the batch through the path
    that checks each analysis (to name what is wrong). Both give the same arrays."""
    from mt_evidence.stats import pooling
    from synthetic_batches import as_analyses, random_rows

    Y, V = random_rows(300, seed=13)
    S = np.sqrt(V)
    items = [{"yi": y, "sei": s} if i % 3 == 0 else (list(y), s**2) for i, (y, s) in enumerate(as_analyses(Y, S))]
    fast = pooling._stack_analyses(items)
    monkeypatch.setattr(pooling, "_stack_fast", lambda items: None)
    slow = pooling._stack_analyses(items)
    for a, b in zip(fast[:2], slow[:2]):
        np.testing.assert_array_equal(a, b)
    assert fast[2] == slow[2] == []
    np.testing.assert_array_equal(fast[0], Y)


def test_analyses_given_by_standard_errors_equal_pool_many_sei():
    from synthetic_batches import as_analyses, random_rows

    Y, V = random_rows(200, seed=12)
    S = np.sqrt(V)
    got = me.pool_many([{"yi": y, "sei": s} for y, s in as_analyses(Y, S)], method="REML")
    assert_same_fields(got, me.pool_many(Y, sei=S, method="REML"))


def test_every_bad_analysis_is_named_in_one_error():
    good = ([0.1, 0.3, 0.2], [0.05, 0.1, 0.08])
    bad = [good, ([0.1, 0.2], [0.1]), {"yi": [0.1]}, {"yi": [0.2], "vi": [0.1], "sei": [0.3]}, good,
           ([0.1, np.nan], [0.1, 0.1]), ([0.1, 0.2], [0.1, 0.0]), {"yi": [0.1], "sei": [-0.2]}, ([], []),
           (0.1, 0.2, 0.3), "text", ([0.1], 0.2), (["a"], [0.1]), {"yi": [0.1, 0.2], "sei": [0.1, 1e-200]}]
    with pytest.raises(ValueError) as err:
        me.pool_many(bad)
    msg = str(err.value)
    assert msg.startswith("12 of the 14 analyses cannot be pooled (positions count from 0):")
    expected = [
        "analysis 1: yi has 2 values and vi 1; give one of each per study",
        "analysis 2: needs exactly one of 'vi' (sampling variances) or 'sei' (standard errors)",
        "analysis 3: needs exactly one of 'vi'",
        "analysis 5: yi is not a finite number at study position(s) [1]",
        "analysis 6: sampling variances must be positive; got [0.0] at study position(s) [1]",
        "analysis 7: standard errors must be positive; got [-0.2] at study position(s) [0]",
        "analysis 8: has no studies",
        "analysis 9: is 'tuple' of length 3; each analysis must be a pair (yi, vi)",
        "analysis 10: is 'str'",
        "analysis 11: vi must be a list of numbers, one per study; got one number (one study: [value])",
        "analysis 12: yi is not a list of numbers",
        "analysis 13: standard errors at study position(s) [1] are too small to square (their variances round to 0)",
    ]
    for line in expected:
        assert line in msg, line
    assert "analysis 0:" not in msg and "analysis 4:" not in msg
    # many bad analyses: all counted, the first twenty spelled out
    with pytest.raises(ValueError, match=r"(?s)30 of the 31 analyses.*analysis 20: .*and 10 more"):
        me.pool_many([good] + [([0.1], [-1.0])] * 30)


def test_a_batch_without_vi_is_still_asked_for_vi():
    """Arrays (or lists of numbers) without vi or sei are not analyses: the error asks for vi or sei."""
    for Y in ([0.1, 0.2], [[0.1, 0.2], [0.3, 0.4]], np.zeros((3, 2)), np.zeros((3, 2, 4))):
        with pytest.raises(ValueError, match="exactly one of vi"):
            me.pool_many(Y)
    with pytest.raises(ValueError, match="no analyses given"):
        me.pool_many(iter(()))

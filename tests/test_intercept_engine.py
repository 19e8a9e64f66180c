"""The intercept-only engine behind pool/pool_many (stats/intercept.py): its ML/REML certificate, its solvers
and its agreement with the general engine. Data are SYNTHETIC random draws, not trials."""

import numpy as np
import pytest

import mt_evidence as me
from mt_evidence.stats import engine, intercept

BIMODAL_Y = [-0.048267, 1.536343, -0.697126, -0.149146, -0.288443, -0.866066, -0.257497, 1.486625, -0.819892,
             -0.136817]
BIMODAL_V = [0.152924, 0.280608, 0.174337, 0.19729, 0.127729, 0.453503, 0.015497, 0.479016, 0.244037, 0.011709]


def random_rows(m, seed, kmax=20, spread=100.0):
    """SYNTHETIC: m random meta-analyses with k from 2 to kmax, NaN-padded, variances over two decades."""
    rng = np.random.default_rng(seed)
    k = rng.integers(2, kmax + 1, size=m)
    V = rng.uniform(0.005, 0.5, size=(m, kmax)) * rng.choice([1.0, spread], size=(m, kmax), p=[0.85, 0.15])
    tau2 = rng.choice([0.0, 0.02, 0.1, 0.5, 2.0], size=(m, 1))
    Y = rng.normal(0.2, np.sqrt(V + tau2))
    pad = np.arange(kmax)[None, :] >= k[:, None]
    Y[pad] = np.nan
    V[pad] = np.nan
    return Y, V


def score(st, t, kind):
    return intercept._score(st, np.asarray(t, dtype=float), kind)


@pytest.mark.parametrize("kind", ["REML", "ML"])
def test_likelihood_equals_the_score_grid_or_beats_it(kind):
    """On 3,000 random meta-analyses the certified Newton root is the score grid's answer (engine.py, the
    method before issue 15) to 1e-10, or, where the grid misses a maximum, one with a higher likelihood."""
    Y, V = random_rows(3000, seed=7)
    st = intercept.Studies.from_rows(Y, V)
    ours = intercept.tau2_likelihood(st, kind)
    batch = engine.Batch.from_arrays(Y, V)
    grid = engine.tau2_likelihood(batch, kind)
    differ = ~np.isclose(ours, grid, rtol=1e-10, atol=1e-13)
    ll_ours = engine.loglik(batch, ours, kind)
    ll_grid = engine.loglik(batch, grid, kind)
    assert np.all(ll_ours[differ] > ll_grid[differ] + 1e-9), np.flatnonzero(differ)
    assert differ.mean() < 0.001


@pytest.mark.parametrize("kind", ["REML", "ML"])
def test_fallback_grid_is_the_engine_grid(kind):
    """The columns the certificate leaves unproven are solved on the general engine's score grid: the same
    maxima, to 1e-10, on random meta-analyses and on the bimodal one."""
    Y, V = random_rows(400, seed=9)
    Y = np.vstack([Y, np.r_[BIMODAL_Y, [np.nan] * (Y.shape[1] - 10)]])
    V = np.vstack([V, np.r_[BIMODAL_V, [np.nan] * (V.shape[1] - 10)]])
    ours = intercept._grid_likelihood(intercept.Studies.from_rows(Y, V), kind)
    np.testing.assert_allclose(ours, engine.tau2_likelihood(engine.Batch.from_arrays(Y, V), kind), rtol=1e-10,
                               atol=1e-13)
    if kind == "REML":
        assert ours[-1] == pytest.approx(0.19625, abs=1e-4)


def test_certificate_refuses_a_bimodal_likelihood():
    """A REML likelihood with a local maximum at tau^2 = 0 (score < 0 there) and the global one near 0.196:
    no cover of intervals can prove one sign change, so the column goes to the score grid."""
    st = intercept.Studies.from_rows(np.array([BIMODAL_Y]), np.array([BIMODAL_V]))
    s0 = score(st, [0.0], "REML")
    assert s0[intercept._S, 0] < 0
    ts = np.concatenate([[0.0], np.geomspace(1e-4, 50, 60)])
    records = [(np.zeros(1, dtype=int), score(st, [t], "REML")) for t in ts]
    assert not intercept._certify(st, records, "REML")[0]
    assert intercept.tau2_likelihood(st, "REML")[0] == pytest.approx(0.19625, abs=1e-4)


@pytest.mark.parametrize("kind", ["REML", "ML"])
def test_what_a_certificate_claims_holds_on_a_fine_grid(kind):
    """Every interval the certificate accepts is checked at 200 points inside it: positive, negative or
    decreasing as claimed (up to the documented 1e-12 zone next to a root); every accepted tail is checked
    out to a million times its start."""
    Y, V = random_rows(150, seed=11, kmax=12)
    st = intercept.Studies.from_rows(Y, V)
    rng = np.random.default_rng(3)
    n_pts = 7
    ts = np.sort(np.column_stack([np.zeros(st.m), rng.uniform(0, 1, (st.m, n_pts - 1)) ** 3 * 4.0]), axis=1)
    cols = np.repeat(np.arange(st.m), n_pts)
    D = score(st.take(cols), ts.ravel(), kind).reshape(-1, st.m, n_pts)
    A, B = D[:, :, :-1], D[:, :, 1:]
    ok = intercept._piece_proves(A, B)
    pj, pi = np.nonzero(ok)
    assert len(pj) > 300
    a, b = ts[pj, pi], ts[pj, pi + 1]
    inner = a[:, None] + (b - a)[:, None] * np.linspace(0, 1, 200)[None, :]
    S = score(st.take(np.repeat(pj, 200)), inner.ravel(), kind)[intercept._S].reshape(len(pj), 200)
    zone = 1e-12 * b[:, None]
    core = (inner > a[:, None] + zone) & (inner < b[:, None] - zone)
    pos = np.all((S > 0) | ~core, axis=1)
    neg = np.all((S < 0) | ~core, axis=1)
    dec = np.all(np.diff(S, axis=1) < 1e-12 * np.abs(S).max(axis=1, keepdims=True), axis=1)
    assert np.all(pos | neg | dec), np.flatnonzero(~(pos | neg | dec))
    vmin = st.V.min(axis=0)
    tj, ti = np.nonzero(intercept._tail_proves(vmin[:, None], D))
    assert len(tj) > 100
    far = ts[tj, ti][:, None] * np.geomspace(1, 1e6, 50)[None, :] + 1e-12
    S = score(st.take(np.repeat(tj, 50)), far.ravel(), kind)[intercept._S]
    assert np.all(S < 0)


@pytest.mark.parametrize("which", ["lo", "hi"])
def test_q_profile_solves_its_equation(which):
    """Q(bound) equals the chi-square quantile to rounding wherever the bound is positive."""
    from scipy import stats

    Y, V = random_rows(500, seed=5)
    res = me.pool_many(Y, V, method="REML")
    k = res.k
    crit = stats.chi2.isf(0.025, k - 1) if which == "lo" else stats.chi2.ppf(0.025, k - 1)
    bound = res.tau2_ci_low if which == "lo" else res.tau2_ci_high
    st = intercept.Studies.from_rows(Y, V)
    q = intercept._fit(st, bound).q
    pos = bound > 0
    assert pos.sum() > 100
    np.testing.assert_allclose(q[pos], crit[pos], rtol=1e-11)
    q0 = intercept._fit(st, np.zeros(st.m)).q
    assert np.all(q0[~pos] <= crit[~pos])


def test_paule_mandel_solves_its_equation():
    Y, V = random_rows(500, seed=6)
    res = me.pool_many(Y, V, method="PM")
    st = intercept.Studies.from_rows(Y, V)
    q = intercept._fit(st, res.tau2).q
    pos = res.tau2 > 0
    np.testing.assert_allclose(q[pos], (res.k - 1)[pos], rtol=1e-11)


def test_studies_layout_does_not_touch_the_callers_arrays():
    Y, V = random_rows(20, seed=1)
    Y0, V0 = Y.copy(), V.copy()
    me.pool_many(Y, V)
    np.testing.assert_array_equal(Y, Y0)
    np.testing.assert_array_equal(V, V0)
    Yf, Vf = np.asfortranarray(Y), np.asfortranarray(V)
    me.pool_many(Yf, Vf)
    np.testing.assert_array_equal(Yf, Y0)


def test_a_meta_analysis_gets_the_same_numbers_in_any_batch():
    """Bit for bit: alone (pool), in a batch, in a shuffled batch and in a batch of two; the solvers' subsets
    of one column are summed like wider ones."""
    Y, V = random_rows(200, seed=12)
    whole = me.pool_many(Y, V, method="REML", test="hksj")
    perm = np.random.default_rng(0).permutation(len(Y))
    shuffled = me.pool_many(Y[perm], V[perm], method="REML", test="hksj")
    for f in ("estimate", "se", "tau2", "tau2_ci_low", "tau2_ci_high", "pi_low", "loglik", "i2"):
        np.testing.assert_array_equal(getattr(shuffled, f), getattr(whole, f)[perm], err_msg=f)
    for i in (0, 17, 111):
        k = int(whole.k[i])
        alone = me.pool(Y[i, :k], V[i, :k], method="REML", test="hksj")
        pair = me.pool_many(Y[[i, (i + 1) % len(Y)]], V[[i, (i + 1) % len(Y)]], method="REML", test="hksj")
        for f in ("estimate", "se", "tau2", "tau2_ci_low", "tau2_ci_high", "loglik"):
            assert getattr(alone, f) == getattr(whole, f)[i] == getattr(pair, f)[0], (i, f)

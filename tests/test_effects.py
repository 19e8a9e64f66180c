"""Effect sizes and conversions (metafor escalc agreement is in test_reference_metafor.py)."""

import numpy as np
import pytest
from scipy import stats

import mt_evidence as me


def test_generic_from_se_ci_and_p():
    out = me.effect_size("GEN", estimate=[-2.0], se=[0.5])
    assert out["yi"][0] == -2.0 and out["vi"][0] == 0.25
    out = me.effect_size("GEN", estimate=[2.0], ci_low=[1.0], ci_high=[3.0])
    assert out["vi"][0] == pytest.approx((2.0 / (2 * stats.norm.ppf(0.975))) ** 2)
    out = me.effect_size("GEN", estimate=[1.5], ci_low=[1.0], ci_high=[2.25], log=True)
    assert out["yi"][0] == pytest.approx(np.log(1.5))
    assert np.sqrt(out["vi"][0]) == pytest.approx((np.log(2.25) - np.log(1.0)) / (2 * 1.959963984540054))
    out = me.effect_size("GEN", estimate=[0.5], p=[0.05])
    assert np.sqrt(out["vi"][0]) == pytest.approx(0.5 / 1.959963984540054)
    assert set(out["vtype"]) == {"from_p"}


def test_generic_errors_name_the_problem():
    with pytest.raises(ValueError, match="inside its CI"):
        me.effect_size("GEN", estimate=[5.0], ci_low=[1.0], ci_high=[3.0])
    with pytest.raises(ValueError, match="needs 'estimate'"):
        me.effect_size("GEN", se=[1.0])
    with pytest.raises(ValueError, match="one of: se"):
        me.effect_size("GEN", estimate=[1.0])


def test_effect_size_errors():
    with pytest.raises(ValueError, match="unknown measure"):
        me.effect_size("HR", estimate=[1])
    with pytest.raises(ValueError, match="missing: sd2"):
        me.effect_size("SMD", m1=[1], sd1=[1], n1=[10], m2=[0], n2=[10])
    with pytest.raises(ValueError, match=r"standard deviations must be >= 0 \(rows \[1\]\)"):
        me.effect_size("MD", m1=[1, 2], sd1=[1, -1], n1=[10, 10], m2=[0, 0], sd2=[1, 1], n2=[10, 10])
    with pytest.raises(ValueError, match="different lengths"):
        me.effect_size("MD", m1=[1, 2], sd1=[1, 1, 1], n1=[10], m2=[0], sd2=[1], n2=[10])
    with pytest.raises(ValueError, match="unknown vtype"):
        me.effect_size("SMD", m1=[1], sd1=[1], n1=[10], m2=[0], sd2=[1], n2=[10], vtype="XX")


def test_smd_sign_and_revman_variance():
    out = me.effect_size("SMD", m1=[10.0], sd1=[4.0], n1=[20], m2=[12.0], sd2=[4.0], n2=[22], vtype="REVMAN")
    N = 42
    g = (1 - 3 / (4 * N - 9)) * (-0.5)
    assert out["yi"][0] == pytest.approx(g)
    assert out["vi"][0] == pytest.approx(1 / 20 + 1 / 22 + g**2 / (2 * (N - 3.94)))
    ls = me.effect_size("SMD", m1=[10.0], sd1=[4.0], n1=[20], m2=[12.0], sd2=[4.0], n2=[22])
    assert ls["yi"][0] < 0  # group 1 lower: negative favours group 1 on "lower is better" outcomes


def test_sd_from_se_and_ci():
    assert me.sd_from_se(2.0, 25) == pytest.approx(10.0)
    # t-based for small groups (Cochrane Handbook 6.5.2.2): n = 25 -> t(0.975, 24)
    sd = me.sd_from_ci(10.0, 14.0, 25)
    assert sd == pytest.approx(5 * 4.0 / (2 * stats.t.ppf(0.975, 24)))
    sd_z = me.sd_from_ci(10.0, 14.0, 100)
    assert sd_z == pytest.approx(10 * 4.0 / (2 * stats.norm.ppf(0.975)))
    assert me.sd_from_ci(10.0, 14.0, 25, dist="z") == pytest.approx(5 * 4.0 / (2 * 1.959963984540054))


def test_sd_from_ci_of_difference():
    sd = me.sd_from_ci_difference(-5.0, 1.0, 20, 20)
    se = 6.0 / (2 * stats.t.ppf(0.975, 38))
    assert sd == pytest.approx(se / np.sqrt(1 / 20 + 1 / 20))


def test_se_from_p_round_trip():
    se = me.se_from_p(0.8, 2 * stats.norm.sf(0.8 / 0.3))
    assert se == pytest.approx(0.3)


def test_median_conversions_recover_normal_samples():
    rng = np.random.default_rng(7)
    for n in (30, 200, 2000):
        errs = []
        for _ in range(200):
            x = rng.normal(50, 10, n)
            q = np.quantile(x, [0, 0.25, 0.5, 0.75, 1])
            for kw in (dict(q1=q[1], q3=q[3]), dict(min=q[0], max=q[4]), dict(q1=q[1], q3=q[3], min=q[0], max=q[4])):
                for method in ("wan", "luo_shi"):
                    m, s = me.mean_sd_from_median(n, median=q[2], method=method, **kw)
                    errs.append((m - x.mean(), s / x.std(ddof=1) - 1))
        errs = np.array(errs)
        assert abs(errs[:, 0].mean()) < 0.5
        assert abs(errs[:, 1].mean()) < 0.08


def test_shi_sd_matches_its_published_theta_form():
    """Shi et al. 2020 eq. (11) in its theta form (as R meta writes it) equals our weighted form."""
    n, a, q1, q3, b = 57, 1.0, 3.0, 7.0, 12.0
    theta1 = (2 + 0.14 * n**0.6) * stats.norm.ppf((n - 0.375) / (n + 0.25))
    theta2 = (2 + 2 / (0.07 * n**0.6)) * stats.norm.ppf((0.75 * n - 0.125) / (n + 0.25))
    _, sd = me.mean_sd_from_median(n, median=5.0, q1=q1, q3=q3, min=a, max=b)
    assert sd == pytest.approx((b - a) / theta1 + (q3 - q1) / theta2)
    mean, _ = me.mean_sd_from_median(n, median=5.0, q1=q1, q3=q3, min=a, max=b)
    w1 = 2.2 / (2.2 + n**0.75)
    w2 = 0.7 - 0.72 / n**0.55
    assert mean == pytest.approx(w1 * (a + b) / 2 + w2 * (q1 + q3) / 2 + (1 - w1 - w2) * 5.0)


def test_median_needs_spread():
    with pytest.raises(ValueError, match="give q1 and q3"):
        me.mean_sd_from_median(30, median=5.0)


def test_sd_change_and_combine_arms():
    assert me.sd_change(10, 10, 0.5) == pytest.approx(10.0)
    assert me.sd_change(3, 4, 0) == pytest.approx(5.0)
    with pytest.raises(ValueError, match="correlation"):
        me.sd_change(1, 1, 1.5)
    # the Handbook's expression (Table 6.5.a), written out
    n, m, sd = me.combine_arms(10, 5.0, 2.0, 20, 8.0, 3.0)
    assert n == 30 and m == pytest.approx(7.0)
    assert sd == pytest.approx(np.sqrt((9 * 4 + 19 * 9 + 10 * 20 / 30 * 9) / 29))


def test_combine_arms_matches_raw_data():
    rng = np.random.default_rng(3)
    x1, x2 = rng.normal(3, 2, 17), rng.normal(6, 1, 11)
    n, m, sd = me.combine_arms(17, x1.mean(), x1.std(ddof=1), 11, x2.mean(), x2.std(ddof=1))
    allx = np.concatenate([x1, x2])
    assert m == pytest.approx(allx.mean()) and sd == pytest.approx(allx.std(ddof=1))


def test_rescale():
    assert me.rescale(12, scale_min=0, scale_max=24) == pytest.approx(50)
    assert me.rescale(6, scale_min=0, scale_max=10, kind="spread") == pytest.approx(60)
    assert me.rescale(-2, scale_min=0, scale_max=10, kind="difference") == pytest.approx(-20)
    assert me.rescale(-2, scale_min=0, scale_max=10, kind="difference", reverse=True) == pytest.approx(20)
    assert me.rescale(8, scale_min=0, scale_max=10, reverse=True) == pytest.approx(20)
    with pytest.raises(ValueError, match="must exceed"):
        me.rescale(1, scale_min=10, scale_max=0)


def test_revman5_preset_gives_revman_smd_variance_and_says_so():
    kw = dict(m1=[3.0, 4.1], sd1=[2.0, 2.2], n1=[29, 40], m2=[4.0, 4.6], sd2=[2.0, 2.1], n2=[28, 41])
    rev = me.effect_size("SMD", preset="revman5", **kw)
    np.testing.assert_allclose(rev["vi"], me.effect_size("SMD", vtype="REVMAN", **kw)["vi"])
    assert not np.allclose(rev["vi"], me.effect_size("SMD", **kw)["vi"])
    np.testing.assert_allclose(me.effect_size("SMD", preset="metafor", **kw)["vi"], me.effect_size("SMD", **kw)["vi"])
    assert (me.effect_size("SMD", preset="revman5", vtype="LS", **kw)["vi"] == me.effect_size("SMD", **kw)["vi"]).all()
    assert "preset='revman5'" in me.pool(rev["yi"], rev["vi"], preset="revman5").conventions.describe()
    with pytest.raises(ValueError, match="unknown preset"):
        me.effect_size("SMD", preset="stata", **kw)

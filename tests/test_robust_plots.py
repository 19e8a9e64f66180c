"""GOSH, Baujat and cumulative forest plots: drawn on Agg, and what is drawn is the frame's data."""

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402

import mt_evidence as me  # noqa: E402
from mt_evidence.reporting import plots as P  # noqa: E402
from conftest import load_robust_reference  # noqa: E402

REF = load_robust_reference()
CASES = {c["id"]: c for c in REF["cases"]}


@pytest.fixture(autouse=True)
def _close():
    yield
    plt.close("all")


def test_gosh_plot_points_and_margins_are_the_frame():
    c = CASES["normand1999"]
    r = me.gosh(c["yi"], c["vi"], method="DL")
    fr = P.gosh_frame(r)
    assert len(fr) == 511 and {"estimate", "i2"} <= set(fr.columns)
    ax = P.plot_gosh(r)
    pts = ax.collections[0].get_offsets()
    np.testing.assert_allclose(pts[:, 0], fr["estimate"])
    np.testing.assert_allclose(pts[:, 1], fr["i2"])
    top, right = ax.child_axes
    assert sum(p.get_height() for p in top.patches) == 511
    assert sum(p.get_width() for p in right.patches) == 511
    assert ax.get_ylabel() == "I² (%)"


def test_gosh_plot_highlight_splits_the_points():
    c = CASES["normand1999"]
    r = me.gosh(c["yi"], c["vi"], method="FE")
    ax = P.plot_gosh(r, highlight="3")
    without, with_ = (col.get_offsets() for col in ax.collections[:2])
    assert len(with_) == r.incl[:, 2].sum() == 256 and len(without) == 255
    np.testing.assert_allclose(np.sort(with_[:, 0]), np.sort(r.table["estimate"][r.incl[:, 2]]))
    assert any("subsets with study 3" in t.get_text() for t in ax.texts)
    with pytest.raises(ValueError, match="not a study label"):
        P.plot_gosh(r, highlight="zz")


def test_gosh_plot_bins_a_million_subsets():
    rng = np.random.default_rng(3)
    y, v = rng.normal(0, 0.3, 20), rng.uniform(0.02, 0.2, 20)
    r = me.gosh(y, v, method="DL", subsets=2**20)
    assert r.n_subsets == 2**20 - 1
    ax = P.plot_gosh(r)
    counts = ax.collections[0].get_array()
    assert counts.sum() == r.n_subsets  # every subset is in a bin
    fig = ax.figure
    fig.canvas.draw()


def test_baujat_plot_is_the_frame():
    c = CASES["hackshaw1998"]
    r = me.baujat(c["yi"], c["vi"], method="FE", labels=[f"T{i}" for i in range(len(c["yi"]))])
    fr = P.baujat_frame(r)
    ax = P.plot_baujat(r)
    np.testing.assert_allclose(ax.collections[0].get_offsets(), fr[["x", "y"]].to_numpy())
    assert [t.get_text() for t in ax.texts] == fr["study"].tolist()
    assert ax.get_xlabel() == "Contribution to overall heterogeneity"
    ax2 = P.plot_baujat(me.baujat(c["yi"], c["vi"]), label=False)
    assert not ax2.texts and ax2.get_xlabel() == "Squared Pearson residual"


def test_cumulative_forest_is_the_frame():
    c = CASES["bcg"]
    r = me.cumulative(c["yi"], c["vi"], order=c["year"])
    fr = P.cumulative_frame(r)
    ax = P.plot_cumulative(r, xlabel="log risk ratio")
    n = len(fr)
    ci_lines = ax.lines[:n]
    for line, row in zip(ci_lines, fr.itertuples()):
        np.testing.assert_allclose(line.get_xdata(), [row.ci_low, row.ci_high])
    np.testing.assert_allclose(ax.lines[n].get_xdata(), fr["estimate"])
    texts = [t.get_text() for t in ax.texts]
    assert f"+ {fr['label'].iloc[0][2:]} (1948)" in texts and fr["text"].iloc[-1] in texts
    ax.figure.canvas.draw()
    # years given as floats (a table read with missing years) are still printed as years, not 1948.0
    ax = P.plot_cumulative(me.cumulative(c["yi"], c["vi"], order=np.asarray(c["year"], dtype=float)))
    assert f"+ {fr['label'].iloc[0][2:]} (1948)" in [t.get_text() for t in ax.texts]


def test_plots_draw_onto_given_axes():
    c = CASES["normand1999"]
    fig, axes = plt.subplots(1, 3)
    assert P.plot_gosh(me.gosh(c["yi"], c["vi"]), ax=axes[0]) is axes[0]
    assert P.plot_baujat(me.baujat(c["yi"], c["vi"]), ax=axes[1]) is axes[1]
    assert P.plot_cumulative(me.cumulative(c["yi"], c["vi"]), ax=axes[2]) is axes[2]


def test_gosh_plot_of_a_reduced_result():
    c = CASES["normand1999"]
    r = me.gosh(c["yi"], c["vi"], method="DL", columns=("estimate", "i2"), membership=False)
    assert list(P.gosh_frame(r).columns) == ["estimate", "i2"]
    pts = P.plot_gosh(r).collections[0].get_offsets()
    np.testing.assert_array_equal(pts[:, 0], r.table["estimate"])
    with pytest.raises(ValueError, match="highlight needs the membership"):
        P.plot_gosh(r, highlight="3")
    with pytest.raises(ValueError, match="has no i2"):
        P.plot_gosh(me.gosh(c["yi"], c["vi"], columns=("estimate", "k")))

"""pool_many on dask arrays, on a local dask.distributed cluster, and the chunk mapper behind it
(stats/distributed.py). Data are SYNTHETIC random draws, not trials. (That ``import mt_evidence`` and pooling
NumPy arrays never import dask is checked in test_package.py, in a fresh interpreter.)"""

import dask.array as da  # the dev extra installs dask and distributed (pip install -e '.[dev]')
import distributed as dd
import numpy as np
import pytest

import mt_evidence as me
from mt_evidence.stats.distributed import map_analyses

FIELDS = ("estimate", "se", "stat", "p", "ci_low", "ci_high", "pi_low", "pi_high", "tau2", "tau2_se",
          "tau2_ci_low", "tau2_ci_high", "tau", "i2", "i2_ci_low", "i2_ci_high", "h2", "h2_ci_low", "h2_ci_high",
          "q", "q_df", "q_p", "k", "df", "s2w", "loglik", "weights")


def random_rows(m, seed, kmax=15):
    rng = np.random.default_rng(seed)
    k = rng.integers(1, kmax + 1, size=m)
    V = rng.uniform(0.005, 0.5, size=(m, kmax))
    Y = rng.normal(0.2, np.sqrt(V + rng.choice([0.0, 0.05, 0.3], size=(m, 1))))
    pad = np.arange(kmax)[None, :] >= k[:, None]
    Y[pad] = np.nan
    V[pad] = np.nan
    return Y, V


@pytest.fixture(scope="module")
def client():
    with dd.LocalCluster(n_workers=2, threads_per_worker=1, processes=False, dashboard_address=None) as cluster:
        with dd.Client(cluster) as c:
            yield c


def assert_same(a, b):
    for f in FIELDS:
        np.testing.assert_array_equal(getattr(a, f), getattr(b, f), err_msg=f)
    assert list(a.test_used) == list(b.test_used)
    assert a.conventions == b.conventions


@pytest.mark.parametrize("method", ["REML", "DL", "PM"])
def test_pool_many_on_a_cluster_equals_the_in_memory_run(client, method):
    Y, V = random_rows(1200, seed=1)
    chunks = ((400, 350, 300, 150), (9, 6))  # rows irregular, columns split: pool_many regroups whole rows
    Yd, Vd = da.from_array(Y, chunks=chunks), da.from_array(V, chunks=chunks)
    with dd.get_task_stream(client) as ts:
        got = me.pool_many(Yd, Vd, method=method, test="hksj")
    assert_same(got, me.pool_many(Y, V, method=method, test="hksj"))
    pooled = [t for t in ts.data if "_pool_block" in t["key"][0] or "_pool_block" in str(t["key"])]
    assert len(pooled) == 4  # one task per chunk of rows, run on the cluster


def test_pool_many_dask_with_standard_errors_and_a_numpy_partner(client):
    Y, V = random_rows(300, seed=2)
    got = me.pool_many(da.from_array(Y, chunks=(100, -1)), sei=np.sqrt(V), method="REML", preset="revman")
    assert_same(got, me.pool_many(Y, sei=np.sqrt(V), method="REML", preset="revman"))


def test_errors_in_a_chunk_name_the_global_row(client):
    Y, V = random_rows(300, seed=3)
    V[250, 0] = -0.1
    Y[250, 0] = 0.3
    with pytest.raises(ValueError, match=r"sampling variances must be positive.*\[\[250, 0\]\]"):
        me.pool_many(da.from_array(Y, chunks=(100, -1)), da.from_array(V, chunks=(100, -1)))
    with pytest.raises(ValueError, match="same shape"):
        me.pool_many(da.from_array(Y, chunks=(100, -1)), da.from_array(V[:, :-1], chunks=(100, -1)))
    with pytest.raises(ValueError, match="2-D"):
        me.pool_many(da.from_array(Y[0], chunks=5), da.from_array(V[0], chunks=5))


def test_map_analyses_gives_each_task_its_own_rows_only(client):
    Y, _ = random_rows(500, seed=4)
    out = map_analyses(_rows_seen, da.from_array(Y, chunks=(128, -1)), row_offset="first")
    np.testing.assert_array_equal(out["rows"], [128, 128, 128, 116])
    np.testing.assert_array_equal(out["first"], [0, 128, 256, 384])
    np.testing.assert_array_equal(out["total"], np.nansum(Y, axis=1))


def _rows_seen(block, *, first):
    return {"rows": np.array([block.shape[0]]), "first": np.array([first]), "total": np.nansum(block, axis=1)}


def test_map_analyses_in_memory_chunks_and_errors():
    Y, V = random_rows(250, seed=5)
    whole = map_analyses(_pool_rows, Y, V)
    parts = map_analyses(_pool_rows, Y, V, chunk_rows=64)
    for key in whole:
        np.testing.assert_array_equal(whole[key], parts[key])
    with pytest.raises(ValueError, match="different numbers of rows"):
        map_analyses(_pool_rows, Y, V[:-1])
    with pytest.raises(ValueError, match="chunk_rows must be a positive integer"):
        map_analyses(_pool_rows, Y, V, chunk_rows=0)
    with pytest.raises(ValueError, match="at least one array"):
        map_analyses(_pool_rows)


def _pool_rows(Y, V):
    r = me.pool_many(Y, V)
    return {"estimate": r.estimate, "tau2_ci_high": r.tau2_ci_high}


def test_the_multiverse_on_a_cluster_equals_the_in_memory_run(client):
    from mt_evidence.synthesis import analysis as A
    from mt_evidence.synthesis.multiverse import multiverse

    cfg = A.load_config()
    frame = A.comparison_frame(me.load_evidence(), cfg)
    here = multiverse(frame, cfg)
    with dd.get_task_stream(client) as ts:
        there = multiverse(frame, cfg, chunk_rows=7)
    assert len(ts.data) > 0  # the pooling ran as tasks on the cluster
    import pandas as pd

    pd.testing.assert_frame_equal(here.specs, there.specs)
    with pytest.raises(ValueError, match="chunk_rows"):
        multiverse(frame, cfg, chunk_rows=0)

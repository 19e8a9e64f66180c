"""pool_many on dask arrays, on a local dask.distributed cluster, and the chunk mapper behind it
(stats/distributed.py). Data are SYNTHETIC random draws, not trials. (That ``import mt_evidence`` and pooling
NumPy arrays never import dask is checked in test_package.py, in a fresh interpreter.)"""

import dask.array as da  # the dev extra installs dask and distributed (pip install -e '.[dev]')
import distributed as dd
import numpy as np
import pytest

import mt_evidence as me
from mt_evidence.stats.distributed import map_analyses
from synthetic_batches import as_analyses, random_rows

FIELDS = ("estimate", "se", "stat", "p", "ci_low", "ci_high", "pi_low", "pi_high", "tau2", "tau2_se",
          "tau2_ci_low", "tau2_ci_high", "tau", "i2", "i2_ci_low", "i2_ci_high", "h2", "h2_ci_low", "h2_ci_high",
          "q", "q_df", "q_p", "k", "df", "s2w", "loglik", "weights")




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


def test_pool_many_dask_with_chosen_fields_sends_back_only_those(client):
    Y, V = random_rows(900, seed=4)
    chosen = ("estimate", "se", "tau2", "i2_ci_high")
    got = me.pool_many(da.from_array(Y, chunks=(250, -1)), da.from_array(V, chunks=(250, -1)), method="REML",
                       fields=chosen)
    full = me.pool_many(Y, V, method="REML")
    assert set(got.computed) == set(chosen) | {"k"}
    for f in chosen + ("k",):
        np.testing.assert_array_equal(getattr(got, f), getattr(full, f), err_msg=f)
    assert got.p is None and got.weights is None


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


@pytest.mark.parametrize("method", ["REML", "DL"])
def test_pool_many_on_a_bag_of_analyses_equals_the_in_memory_run(client, method):
    """A bag of analyses of their own sizes: one task per partition, each padded to its own largest k; every
    field the same to the bit as the whole batch padded in memory (weights padded to the largest k of all)."""
    import dask.bag as db

    Y, V = random_rows(1000, seed=6)
    Y[:300, 8:], V[:300, 8:] = np.nan, np.nan  # the first partition's largest k is below the others'
    Y[:300, 0], V[:300, 0] = 0.1, 0.2  # (and no analysis is left empty)
    bag = db.from_sequence(as_analyses(Y, V), partition_size=300)
    with dd.get_task_stream(client) as ts:
        got = me.pool_many(bag, method=method, test="hksj")
    assert_same(got, me.pool_many(Y, V, method=method, test="hksj"))
    assert got.weights.shape == Y.shape
    assert len([t for t in ts.data if "_pool_partition" in str(t["key"])]) == bag.npartitions == 4


def test_pool_many_on_a_bag_with_chosen_fields_and_standard_errors(client):
    import dask.bag as db

    Y, V = random_rows(500, seed=7)
    S = np.sqrt(V)
    bag = db.from_sequence([{"yi": y, "sei": s} for y, s in as_analyses(Y, S)], npartitions=3)
    got = me.pool_many(bag, method="REML", fields=("estimate", "se", "tau2"))
    full = me.pool_many(Y, sei=S, method="REML")
    assert set(got.computed) == {"estimate", "se", "tau2", "k"}
    for f in got.computed:
        np.testing.assert_array_equal(getattr(got, f), getattr(full, f), err_msg=f)


def test_a_bag_made_by_a_simulation_on_the_workers(client):
    """The analyses need not exist in the caller: a bag mapped from seeds draws them in each task."""
    import dask.bag as db

    got = me.pool_many(db.range(600, npartitions=4).map(_draw_analysis), method="DL")
    assert_same(got, me.pool_many([_draw_analysis(i) for i in range(600)], method="DL"))


def _draw_analysis(seed):
    rng = np.random.default_rng(seed)
    k = int(rng.integers(2, 12))
    v = rng.uniform(0.01, 0.3, size=k)
    return {"yi": rng.normal(0.3, np.sqrt(v + 0.05)), "vi": v}


def test_every_bad_analysis_of_a_bag_is_named_by_its_position_in_the_bag(client):
    import dask.bag as db

    Y, V = random_rows(300, seed=8)
    analyses = as_analyses(Y, V)
    analyses[5] = (analyses[5][0], -analyses[5][1])
    analyses[160] = {"yi": [0.1, 0.2]}
    analyses[299] = (analyses[299][0], analyses[299][1][:-1]) if len(analyses[299][0]) > 1 else ([0.1], [])
    with pytest.raises(ValueError) as err:
        me.pool_many(db.from_sequence(analyses, partition_size=100))
    msg = str(err.value)
    assert msg.startswith("3 of the 300 analyses cannot be pooled")
    assert "analysis 5: sampling variances must be positive" in msg
    assert "analysis 160: has no 'yi'" not in msg and "analysis 160: needs exactly one of 'vi'" in msg
    assert "analysis 299: yi has" in msg
    with pytest.raises(ValueError, match="the dask bag is empty"):
        me.pool_many(db.from_sequence([], npartitions=1))
    with pytest.raises(TypeError, match="takes a dask bag"):
        from mt_evidence.stats.distributed import map_partitions
        map_partitions(len, [1, 2])


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


def test_the_multiverse_on_dask_without_dask_names_the_extra(monkeypatch):
    import sys

    from mt_evidence.synthesis.multiverse import multiverse

    monkeypatch.setitem(sys.modules, "dask", None)  # as if dask were not installed
    with pytest.raises(ImportError, match=r"multiverse\(chunk_rows=\) runs on dask.*mt_evidence\[dask\]"):
        multiverse(None, None, chunk_rows=7)


# ---------------------------------------------------------------------------------------------- GOSH on dask
GOSH_FIELDS = ("k", "q", "i2", "h2", "tau2", "estimate")


def gosh_studies(k, seed=6):
    rng = np.random.default_rng(seed)
    v = rng.uniform(0.01, 0.3, k)
    return rng.normal(0.2, np.sqrt(v + 0.05)), v


def assert_same_gosh(a, b):
    assert list(a.table.columns) == list(b.table.columns)
    for f in GOSH_FIELDS:
        assert a.table[f].dtype == b.table[f].dtype, f
        assert np.array_equal(a.table[f].to_numpy(), b.table[f].to_numpy(), equal_nan=True), f
    assert np.array_equal(a.incl, b.incl)
    assert (a.exact, a.seed, a.method, a.labels, a.k) == (b.exact, b.seed, b.method, b.labels, b.k)


def gosh_tasks(ts):
    return [t for t in ts.data if "_fast_part" in str(t["key"]) or "_general_part" in str(t["key"])]


# (method, k, random subsets or None for every one, chunk, chunk_rows, tasks expected)
GOSH_CASES = [
    ("FE", 12, None, 256, 1024, 4),  # blocks of 2^8 subsets, 4 blocks a task, 16 blocks
    ("DL", 12, None, 256, 1000, 6),  # 1000 rounds down to 3 blocks a task: 16 blocks in 6 tasks
    ("DL", 12, 3000, 256, 1000, 4),  # random: 768 rows a task
    ("REML", 10, None, 100, 300, 4),  # 1,023 subsets: 300, 300, 300, 123
    ("REML", 10, 600, 64, 200, 4),  # random: 192 rows a task
]


@pytest.mark.parametrize("method,k,subsets,chunk,chunk_rows,n_tasks", GOSH_CASES)
def test_gosh_on_a_cluster_equals_the_in_memory_run(client, method, k, subsets, chunk, chunk_rows, n_tasks):
    y, v = gosh_studies(k)
    kw = dict(method=method, chunk=chunk, labels=[f"s{i}" for i in range(k)])
    if subsets is not None:
        kw.update(subsets=subsets, seed=17)
    here = me.gosh(y, v, **kw)
    with dd.get_task_stream(client) as ts:
        there = me.gosh(y, v, chunk_rows=chunk_rows, **kw)
    assert_same_gosh(here, there)
    assert there.exact == (subsets is None) and there.n_subsets == (2**k - 1 if subsets is None else subsets)
    assert len(gosh_tasks(ts)) == n_tasks  # one task per block of subsets, run on the cluster


def test_gosh_on_dask_local_scheduler_and_progress_per_task(client):
    import dask

    y, v = gosh_studies(11, seed=8)
    here = me.gosh(y, v, method="DL", chunk=128)
    seen = []
    with dask.config.set(scheduler="sync"), dd.get_task_stream(client) as ts:  # the Client is not dask's scheduler
        there = me.gosh(y, v, method="DL", chunk=128, chunk_rows=512, progress=lambda d, t: seen.append((d, t)))
    assert_same_gosh(here, there)
    assert gosh_tasks(ts) == []  # ran on dask's local scheduler, not on the cluster
    assert seen == [(d, 2047) for d in (511, 1023, 1535, 2047)]  # one step per task of 4 blocks of 128
    seen.clear()
    there = me.gosh(y, v, method="REML", subsets=500, seed=3, chunk=50, chunk_rows=100,
                    progress=lambda d, t: seen.append((d, t)))
    assert_same_gosh(me.gosh(y, v, method="REML", subsets=500, seed=3, chunk=50), there)
    assert len(seen) == 5 and seen[-1] == (500, 500)  # on the cluster, in the order the tasks finish
    assert sorted(np.diff([0] + [d for d, _ in seen])) == [100] * 5


@pytest.mark.parametrize("method,subsets", [("DL", None), ("FE", 3000), ("REML", None), ("REML", 600)])
def test_gosh_on_a_cluster_reduced_result(client, method, subsets):
    y, v = gosh_studies(12 if method != "REML" else 10, seed=10)
    kw = dict(method=method, chunk=128) if subsets is None else dict(method=method, chunk=128, subsets=subsets,
                                                                    seed=5)
    full = me.gosh(y, v, **kw)
    with dd.get_task_stream(client) as ts:
        small = me.gosh(y, v, chunk_rows=256, columns=("estimate", "i2"), membership=False, **kw)
    assert len(gosh_tasks(ts)) > 1 and small.incl is None and list(small.table.columns) == ["i2", "estimate"]
    for col in ("i2", "estimate"):
        assert np.array_equal(small.table[col].to_numpy(), full.table[col].to_numpy()), col


def test_gosh_tasks_get_only_their_own_subsets(client, monkeypatch):
    from mt_evidence.stats import distributed as dist
    from mt_evidence.stats import gosh as gosh_module

    sent = []
    real = dist.run_tasks

    def spy(func, calls, on_result):
        sent.append((func.__name__, calls))
        return real(func, calls, on_result)

    monkeypatch.setattr(gosh_module.distributed, "run_tasks", spy)
    y, v = gosh_studies(12, seed=9)
    me.gosh(y, v, method="REML", subsets=1000, seed=4, chunk=100, chunk_rows=250)  # 200 rows a task
    me.gosh(y, v, method="PM", subsets=2**12, chunk=1000, chunk_rows=1000)  # every subset: ranges only
    me.gosh(y, v, method="FE", chunk=256, chunk_rows=512)
    (f1, random_calls), (f2, exact_calls), (f3, fast_calls) = sent
    assert f1 == f2 == "_general_part" and f3 == "_fast_part"
    for calls in (random_calls, exact_calls, fast_calls):
        for args, _ in calls:  # y and v, then scalars only
            assert np.array_equal(args[0], y) and np.array_equal(args[1], v)
            assert all(np.ndim(a) == 0 for a in args[2:])
    assert [c[0][4:6] for c in random_calls] == [(0, 200), (200, 400), (400, 600), (600, 800), (800, 1000)]
    assert [c[1]["masks"].shape for c in random_calls] == [(200,)] * 5 and random_calls[0][1]["incl"] is None
    assert [c[0][4:6] for c in exact_calls] == [(0, 1000), (1000, 2000), (2000, 3000), (3000, 4000), (4000, 4095)]
    assert all(c[1] == {"masks": None, "incl": None, "columns": GOSH_FIELDS, "membership": True} for c in exact_calls)
    assert [c[0][4:6] for c in fast_calls] == [(h, h + 2) for h in range(0, 16, 2)]  # 2 blocks of 2^8 a task


def test_gosh_chunk_rows_errors_and_dask_missing(monkeypatch):
    y, v = gosh_studies(6)
    for bad in (0, -5, 2.5, True, "100"):
        with pytest.raises(ValueError, match="chunk_rows must be a positive whole number"):
            me.gosh(y, v, chunk_rows=bad)
    import sys

    monkeypatch.setitem(sys.modules, "dask", None)  # as if dask were not installed
    with pytest.raises(ImportError, match=r"gosh\(chunk_rows=\) runs on dask.*pip install 'mt_evidence\[dask\]'"):
        me.gosh(y, v, chunk_rows=10)
    assert me.gosh(y, v).n_subsets == 63  # without chunk_rows dask is not needed


def _square_or_fail(i, *, fail=-1):
    if i == fail:
        raise ValueError(f"task {i} failed")
    return i * i


@pytest.mark.parametrize("scheduler", ["cluster", "sync"])
def test_run_tasks_hands_back_every_result_and_raises_a_task_error(client, scheduler):
    import dask

    from mt_evidence.stats.distributed import run_tasks

    from contextlib import nullcontext

    from mt_evidence.stats.distributed import active_client

    calls = [((i,), {}) for i in range(11)]  # more than the 4 in flight on a cluster of 2 threads
    got = {}
    with nullcontext() if scheduler == "cluster" else dask.config.set(scheduler=scheduler):
        assert (active_client() is client) == (scheduler == "cluster")
        run_tasks(_square_or_fail, calls, lambda i, r: got.__setitem__(i, r))
        assert got == {i: i * i for i in range(11)}
        with pytest.raises(ValueError, match="task 7 failed"):
            run_tasks(_square_or_fail, [((i,), {"fail": 7}) for i in range(11)], lambda i, r: None)

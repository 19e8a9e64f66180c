"""Batch work over chunks of analyses: in memory, or on dask (one task per chunk; a dask.distributed cluster
when a Client is active).

``map_analyses`` applies a batch function (one analysis per row of every input) chunk by chunk and
concatenates what it returns, so that only one chunk of the inputs is in a worker's memory at a time.
``pool_many`` uses it for dask arrays, and the multiverse through ``pool_many``. ``map_partitions`` applies a
function to each partition of a dask bag (``pool_many`` on a bag of analyses of any sizes). ``run_tasks`` runs work whose
inputs are made inside each task (GOSH: a range of subsets), one task per call, and hands each result back as it
arrives, so that only the output and the results in flight are in the caller's memory.

dask is optional (``pip install mt_evidence[dask]``) and is imported only when a dask collection is passed or a
chunked computation is asked for; ``require_dask`` says which extra to install when it is missing.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np

__all__ = ["is_dask_bag", "is_dask_collection", "map_analyses", "map_partitions", "require_dask", "run_tasks"]


def is_dask_collection(x: Any) -> bool:
    """Whether ``x`` is a dask collection (array, dataframe, delayed), checked without importing dask."""
    return hasattr(type(x), "__dask_graph__") and x.__dask_graph__() is not None


def is_dask_bag(x: Any) -> bool:
    """Whether ``x`` is a dask bag (checked without importing dask when it is not loaded)."""
    if "dask.bag" not in sys.modules:
        return False
    from dask.bag import Bag

    return isinstance(x, Bag)


def require_dask(feature: str) -> None:
    """Raise an ImportError naming the extra to install when dask is missing (``feature``: what needs it)."""
    try:
        import dask  # noqa: F401
    except ImportError as err:
        raise ImportError(f"{feature} runs on dask, which is not installed: pip install 'mt_evidence[dask]' "
                          "(dask and dask.distributed)") from err


def active_client():
    """The dask.distributed Client that dask's current scheduler belongs to, or None (dask's local scheduler)."""
    if "distributed" not in sys.modules:  # no Client can exist without the module
        return None
    import dask.base
    from distributed import Client

    owner = getattr(dask.base.get_scheduler(), "__self__", None)
    return owner if isinstance(owner, Client) else None


def run_tasks(func: Callable[..., Any], calls: Sequence[tuple[tuple, Mapping[str, Any]]],
              on_result: Callable[[int, Any], object]) -> None:
    """Run ``func(*args, **kwargs)`` for every ``(args, kwargs)`` in ``calls``, each as one dask task, and call
    ``on_result(i, result)`` (in the caller's thread) for call ``i`` as its result arrives.

    With a ``dask.distributed.Client`` active (dask's current scheduler) the tasks are submitted to its cluster
    a few at a time (twice as many as it has worker threads in flight, a new one as each finishes) and each
    result is handed over and released as soon as it finishes, so the cluster holds only the tasks in flight;
    otherwise dask's local scheduler runs them in waves of as many tasks as it has workers, each wave's results
    handed over in order. Either way the caller holds only the results in flight besides what ``on_result``
    keeps; an error in a task is raised here (with a client, the tasks in flight are then cancelled). ``func``
    must be a module-level function (picklable) to run on a cluster; the arguments travel with each task, so
    they should be only what it needs.
    """
    require_dask("run_tasks")
    client = active_client()
    if client is None:
        import dask

        call = dask.delayed(func, pure=True)
        wave = max(1, int(dask.config.get("num_workers", None) or dask.system.CPU_COUNT))
        for first in range(0, len(calls), wave):
            tasks = [call(*args, **dict(kwargs)) for args, kwargs in calls[first:first + wave]]
            for i, result in enumerate(dask.compute(*tasks), start=first):
                on_result(i, result)
        return
    from distributed import as_completed

    window = max(2, 2 * sum(client.nthreads().values()))
    pending = iter(enumerate(calls))
    index: dict[int, int] = {}
    running = []

    def submit() -> None:
        for i, (args, kwargs) in pending:
            fut = client.submit(func, *args, pure=True, **dict(kwargs))
            index[id(fut)] = i
            running.append(fut)
            return

    for _ in range(window):
        submit()
    done = as_completed(list(running))
    try:
        for fut in done:
            result = fut.result()
            running.remove(fut)
            i = index.pop(id(fut))
            fut.release()
            before = len(running)
            submit()
            if len(running) > before:
                done.add(running[-1])
            on_result(i, result)
    except BaseException:
        client.cancel(running)
        raise


def map_analyses(
    func: Callable[..., Mapping[str, np.ndarray]],
    *arrays: Any,
    chunk_rows: int | None = None,
    row_offset: str | None = None,
    **kwargs: Any,
) -> dict[str, np.ndarray]:
    """Apply ``func`` to chunks of analyses and concatenate its outputs.

    Parameters
    ----------
    func : callable
        ``func(*blocks, **kwargs)`` takes NumPy arrays holding the same rows (analyses) of every input and
        returns a mapping of arrays whose first axis runs over those rows (other axes must agree between
        chunks). It must be a module-level function (picklable) to run on a cluster.
    *arrays : array-like
        One analysis per row (first axis), the same number of rows in each. NumPy arrays (or anything
        ``np.asarray`` takes) are processed in memory, in one call or in chunks of ``chunk_rows`` rows. dask
        arrays are processed one task per row chunk (the chunks of the first dask array; the others are
        rechunked to match, and every chunk holds whole rows), with dask's current scheduler; with a
        ``dask.distributed.Client`` active that is the cluster.
    chunk_rows : int, optional
        For in-memory input, the rows per call (all at once by default); ignored for dask input.
    row_offset : str, optional
        Name of a keyword through which ``func`` receives the index of its chunk's first row (for messages
        that name rows, or per-row seeds).
    **kwargs
        Passed to every call of ``func``.

    Returns
    -------
    dict
        Each output of ``func``, concatenated over the chunks in row order (NumPy arrays, in memory).
    """
    if not arrays:
        raise ValueError("map_analyses needs at least one array of analyses")
    if chunk_rows is not None and (not isinstance(chunk_rows, (int, np.integer)) or chunk_rows < 1):
        raise ValueError(f"chunk_rows must be a positive integer; got {chunk_rows!r}")
    if any(is_dask_collection(a) for a in arrays):
        return _map_dask(func, arrays, row_offset, kwargs)
    arrays = tuple(np.asarray(a) for a in arrays)
    m = _rows(arrays)
    step = m if chunk_rows is None else int(chunk_rows)
    outs = []
    for start in range(0, max(m, 1), max(step, 1)):
        blocks = tuple(a[start:start + step] for a in arrays)
        kw = dict(kwargs, **({row_offset: start} if row_offset else {}))
        outs.append(func(*blocks, **kw))
    return _concat(outs)


def _rows(arrays) -> int:
    sizes = {a.shape[0] if a.ndim else None for a in arrays}
    if None in sizes:
        raise ValueError("every input of map_analyses needs a first axis (one analysis per row)")
    if len(sizes) != 1:
        raise ValueError(f"the inputs have different numbers of rows (analyses): {sorted(sizes)}")
    return sizes.pop()


def _concat(outs: list[Mapping[str, np.ndarray]]) -> dict[str, np.ndarray]:
    if not outs:
        return {}
    keys = list(outs[0])
    for o in outs[1:]:
        if list(o) != keys:
            raise ValueError(f"func returned different outputs for different chunks: {keys} and {list(o)}")
    return {key: np.concatenate([np.asarray(o[key]) for o in outs], axis=0) for key in keys}


def _map_dask(func, arrays, row_offset, kwargs) -> dict[str, np.ndarray]:
    import dask
    import dask.array as da

    darrs = [a if is_dask_collection(a) else da.asarray(a) for a in arrays]
    for a in darrs:
        if not hasattr(a, "chunks"):
            raise TypeError(f"map_analyses takes dask arrays; got {type(a).__name__}")
        if a.ndim == 0:
            raise ValueError("every input of map_analyses needs a first axis (one analysis per row)")
    first = next(a for a, orig in zip(darrs, arrays) if is_dask_collection(orig))
    rows = first.chunks[0]
    if any(np.isnan(c) for c in rows):
        first = first.compute_chunk_sizes()
        rows = first.chunks[0]
    m = int(sum(rows))
    bad = [a.shape[0] for a in darrs if a.shape[0] != m]
    if bad:
        raise ValueError(f"the inputs have different numbers of rows (analyses): {sorted({m, *bad})}")
    # whole rows in every chunk, and the same row chunks in every input
    darrs = [a.rechunk((rows,) + tuple(-1 for _ in a.shape[1:])) for a in darrs]
    starts = np.concatenate([[0], np.cumsum(rows)[:-1]]).astype(int)
    blocks = [a.to_delayed().reshape(len(rows)) for a in darrs]
    call = dask.delayed(func, pure=True)
    tasks = []
    for i, start in enumerate(starts):
        kw = dict(kwargs, **({row_offset: int(start)} if row_offset else {}))
        tasks.append(call(*(b[i] for b in blocks), **kw))
    return _concat(list(dask.compute(*tasks)))


def map_partitions(func: Callable[..., Any], bag: Any, **kwargs: Any) -> list[Any]:
    """``func(elements, **kwargs)`` for every partition of the dask bag ``bag`` (``elements``: the partition's
    elements, an iterable), one task per partition, with dask's current scheduler (a ``dask.distributed`` cluster
    when a Client is active); returns what each call returned, in partition order. Only one partition's elements
    are in a task's memory; the caller receives only what ``func`` returns. ``func`` must be a module-level
    function (picklable) to run on a cluster."""
    import dask

    if not is_dask_bag(bag):
        raise TypeError(f"map_partitions takes a dask bag; got {type(bag).__name__}")
    call = dask.delayed(func, pure=True)
    return list(dask.compute(*[call(part, **kwargs) for part in bag.to_delayed(optimize_graph=True)]))

"""The intercept engine's iterative solvers compiled with numba, one meta-analysis at a time: the same numbers to
the bit as ``intercept``'s NumPy code, the solvers four to five times faster and ``pool_many`` with every field about
twice as fast (benchmarks/README.md).

``intercept`` solves every column of a batch at once with NumPy. Its solvers are iterations (Newton steps, the
certificate's points and splits, the Q-profile bounds) in which each step is a dozen NumPy calls on (K, m) arrays,
so that at k = 20 most of the time goes to NumPy's cost per call and to passes over memory. Here each solver runs
through one column to the end before the next, with every sum in registers: the REML/ML root with its certificate
of the global maximum (``likelihood_columns``), the score grid for the columns the certificate leaves unproven
(``grid_columns``), the Q-profile bounds of tau^2 (``qprofile_columns``) and the Paule-Mandel and empirical Bayes
estimators (``q_equals_columns``); and the sums of the fits at 0 and at tau^2-hat (``fit_columns``).

Same to the bit: every formula is written here in the same order of operations as in ``intercept`` (its sums over
studies add the K rows in order, as NumPy's column sums and ``einsum`` do; products of three factors are taken
left to right, as ``einsum`` does), only + - * / and sqrt are used (correctly rounded in both; no log or exp, whose
implementations differ), and the functions are compiled without ``fastmath`` (no reassociation, no fused
multiply-add). ``tests/test_compiled.py`` checks every field of many batches, edge cases included, to the bit.
Columns whose certificate fails go to the score grid (compiled too); the best of its maxima is chosen in NumPy,
with the NumPy engine's log-likelihood.

When they run (``use``): numba is optional (the ``fast`` extra), and loading it costs about 0.7 s in a process (and,
the very first time on a machine, about 8 s to compile the solvers into numba's cache), more than the solvers save
on any one batch short of half a million analyses. So by default (automatic) a process starts on the NumPy engine
and loads the compiled solvers once it has pooled ``WARM_AFTER`` analyses in batches of ``MIN_COLUMNS`` or more
(about 1.5 s of NumPy work at k = 20: from then on they pay for themselves), as a simulation study does within
seconds, while a single GOSH or multiverse run never pays for them. ``use(True)`` loads them at once (a simulation
study, a benchmark), ``use(False)`` keeps NumPy. Batches of fewer than ``MIN_COLUMNS`` always run on NumPy. The
numbers are the same whichever runs.
"""

from __future__ import annotations

import functools
import importlib.util
import warnings

#: batches with fewer columns use the NumPy engine (the same numbers; no compilation for a single analysis)
MIN_COLUMNS = 64
#: analyses pooled (in batches of MIN_COLUMNS or more) after which the automatic mode loads the compiled solvers
WARM_AFTER = 500_000


class _State:
    mode: bool | None = None  # use(): True always, False never, None automatic
    pooled = 0  # analyses pooled in large batches so far (automatic mode)
    loaded = False  # the compiled solvers are imported


def use(mode: bool | None = True) -> None:
    """Run ``pool_many``'s solvers compiled (True: loaded now, for every batch of ``MIN_COLUMNS`` or more), never
    (False), or automatically (None, the default: once ``WARM_AFTER`` analyses have been pooled). True without numba
    raises ImportError, naming the extra to install."""
    if mode is True:
        if not available():
            raise ImportError("the compiled solvers need numba: pip install 'mt_evidence[fast]'")
        kernels()
    _State.mode = mode


def note_batch(m: int) -> None:
    """Count a batch of ``m`` analyses (``pool_columns`` calls this once per batch); in automatic mode, load the
    compiled solvers once the count reaches ``WARM_AFTER``."""
    if _State.mode is None and not _State.loaded and m >= MIN_COLUMNS:
        _State.pooled += m
        if _State.pooled >= WARM_AFTER and available():
            kernels()


@functools.cache
def available() -> bool:
    """Whether numba can be imported (the ``fast`` extra). Installed but broken (e.g. built for another NumPy): a
    warning says so, once, and the NumPy engine runs."""
    if importlib.util.find_spec("numba") is None:
        return False
    try:
        import numba  # noqa: F401
    except Exception as exc:  # an installed numba that cannot be imported must not stop pool_many
        warnings.warn(f"numba is installed but cannot be imported ({type(exc).__name__}: {exc}); pool_many runs on "
                      "its NumPy engine (the same numbers, slower)", RuntimeWarning, stacklevel=3)
        return False
    return True


def use_for(m: int) -> bool:
    """Whether a batch of ``m`` columns runs on the compiled solvers (see ``use``)."""
    if m < MIN_COLUMNS or _State.mode is False:
        return False
    return _State.loaded if _State.mode is None else available()


def kernels():
    """The module of compiled functions, ``numba_kernels`` (numba compiles each on first use, or loads it from its
    cache)."""
    from . import numba_kernels

    _State.loaded = True
    return numba_kernels

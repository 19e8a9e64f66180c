"""Batches of SYNTHETIC meta-analyses (random draws, not trials) for the batch engine's tests."""

from __future__ import annotations

import numpy as np


def random_rows(m: int, seed: int, kmax: int = 15) -> tuple[np.ndarray, np.ndarray]:
    """``m`` meta-analyses of 1 to ``kmax`` studies, one per row, NaN-padded (``pool_many``'s input): variances
    uniform on [0.005, 0.5], effects around 0.2 with tau^2 of 0, 0.05 or 0.3."""
    rng = np.random.default_rng(seed)
    k = rng.integers(1, kmax + 1, size=m)
    V = rng.uniform(0.005, 0.5, size=(m, kmax))
    Y = rng.normal(0.2, np.sqrt(V + rng.choice([0.0, 0.05, 0.3], size=(m, 1))))
    pad = np.arange(kmax)[None, :] >= k[:, None]
    Y[pad] = np.nan
    V[pad] = np.nan
    return Y, V


def as_analyses(Y: np.ndarray, V: np.ndarray) -> list[tuple[np.ndarray, np.ndarray]]:
    """The rows of a NaN-padded batch as analyses of their own sizes: pairs (yi, vi) without the padding."""
    keep = ~np.isnan(Y)
    return [(y[m], v[m]) for y, v, m in zip(Y, V, keep)]

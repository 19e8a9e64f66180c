"""mt_evidence: evidence synthesis for manual therapy, exercise and combined care in low back pain.

The public API: effect sizes and conversions (``effect_size`` and friends), pooling (``pool``,
``pool_many``), subgroups (``subgroup``) and meta-regression (``meta_regression``). Importing the package
does no I/O and does not import matplotlib.
"""

from .effects import (
    combine_arms,
    effect_size,
    hedges_correction,
    mean_sd_from_median,
    rescale,
    sd_change,
    sd_from_ci,
    sd_from_ci_difference,
    sd_from_se,
    se_from_ci,
    se_from_p,
)
from .pooling import PoolManyResult, PoolResult, pool, pool_many
from .regression import MetaRegressionResult, meta_regression
from .subgroups import SubgroupResult, subgroup

__all__ = [
    "MetaRegressionResult",
    "PoolManyResult",
    "PoolResult",
    "SubgroupResult",
    "combine_arms",
    "effect_size",
    "hedges_correction",
    "mean_sd_from_median",
    "meta_regression",
    "pool",
    "pool_many",
    "rescale",
    "sd_change",
    "sd_from_ci",
    "sd_from_ci_difference",
    "sd_from_se",
    "se_from_ci",
    "se_from_p",
    "subgroup",
]
__version__ = "0.1.0"

"""mt_evidence: evidence synthesis for manual therapy, exercise and combined care in low back pain.

The public API: effect sizes and conversions (``effect_size`` and friends), pooling (``pool``,
``pool_many``; 2x2 tables and proportions: ``pool_binary``, ``pool_proportions``), subgroups (``subgroup``), meta-regression (``meta_regression``), small-study and robustness checks (``egger_test``, ``trim_and_fill``,
``pet_peese``, ``selection_model``, ``permutation_test``, ``cumulative``, ``baujat``, ``gosh``) and network meta-analysis (``network_meta``,
``component_network_meta``, ``network_over_time``). Importing the package
does no I/O and does not import matplotlib.
"""

from .stats.effects import (
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
from .stats.bias import begg_test, egger_test, influence, leave_one_out, rank_test, trim_and_fill
from .stats.gosh import GoshResult, gosh
from .stats.permutation import PermutationResult, permutation_test
from .stats.robust import BaujatResult, CumulativeResult, PetPeeseResult, baujat, cumulative, pet_peese
from .stats.selection import EmptyIntervalError, SelectionModelResult, selection_model
from .stats.binary import BinaryPoolResult, ProportionPoolResult, pool_binary, pool_proportions
from .stats.pooling import PoolManyResult, PoolResult, pool, pool_many
from .stats.network import ComponentNetworkResult, NetworkResult, component_network_meta, network_meta
from .stats.network_time import NetworkTimeResult, network_over_time
from .stats.regression import MetaRegressionResult, meta_regression
from .stats.subgroups import SubgroupResult, subgroup

__all__ = [
    "BinaryPoolResult",
    "ProportionPoolResult",
    "pool_binary",
    "pool_proportions",
    "MetaRegressionResult",
    "ComponentNetworkResult",
    "NetworkResult",
    "component_network_meta",
    "network_meta",
    "network_over_time",
    "NetworkTimeResult",
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
    "egger_test",
    "rank_test",
    "begg_test",
    "leave_one_out",
    "influence",
    "trim_and_fill",
    "pet_peese",
    "PetPeeseResult",
    "selection_model",
    "SelectionModelResult",
    "EmptyIntervalError",
    "permutation_test",
    "PermutationResult",
    "cumulative",
    "CumulativeResult",
    "baujat",
    "BaujatResult",
    "gosh",
    "GoshResult",
]
__version__ = "0.1.0"

# Readers are loaded on first use (they import pandera), so `import mt_evidence` stays light.
_LAZY = {
    "load_evidence": ("evidence.io", "load_evidence"),
    "validate_path": ("evidence.io", "validate_path"),
    "read_wide": ("evidence.io", "read_wide"),
    "import_wide": ("evidence.wide", "import_wide"),
    "bundled_data_dir": ("evidence.io", "bundled_data_dir"),
    "read_revman": ("evidence.revman", "read_revman"),
    "read_revman_review": ("evidence.revman_review", "read_revman_review"),
    "write_revman_folder": ("evidence.revman_review", "write_revman_folder"),
    "RevManReview": ("evidence.revman_review", "RevManReview"),
    "Evidence": ("evidence.io", "Evidence"),
    "EvidenceError": ("evidence.schema", "EvidenceError"),
    "build_processed": ("evidence.build", "build_processed"),
}
__all__ += list(_LAZY)


def __getattr__(name: str):
    if name in _LAZY:
        import importlib

        module, attr = _LAZY[name]
        return getattr(importlib.import_module(f"{__name__}.{module}"), attr)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")

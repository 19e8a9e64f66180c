"""mt_evidence: evidence synthesis for manual therapy, exercise and combined care in low back pain."""

from .pooling import PoolManyResult, PoolResult, pool, pool_many

__all__ = ["PoolManyResult", "PoolResult", "pool", "pool_many"]
__version__ = "0.1.0"

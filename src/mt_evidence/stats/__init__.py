"""Layer 1, numerics on arrays: effect sizes and conversions (``effects``), the pooling engine (``pooling``,
``engine``, ``solvers``), binary outcomes and proportions (``binary``), conventions and presets (``conventions``), meta-regression (``regression``), subgroups
(``subgroups``), the multilevel model (``multilevel``), small-study checks (``bias``, ``selection``) and the
robustness of a conclusion (``robust``, ``permutation``, ``gosh``, with ``progress`` for their progress bars). No files, no settings, no plotting; imports nothing
from the layers above (evidence, synthesis, reporting)."""

"""Layer 1, numerics on arrays: effect sizes and conversions (``effects``), pooling (``pooling``, on the
intercept-only engine ``intercept``; ``engine`` and ``solvers`` for models with moderators), batch work over
chunks of analyses, in memory or on dask (``distributed``), binary outcomes and proportions (``binary``),
conventions and presets (``conventions``), meta-regression (``regression``), subgroups (``subgroups``), the
multilevel model (``multilevel``), small-study checks (``bias``, ``selection``) and the robustness of a conclusion
(``robust``, ``permutation``, ``gosh``, with ``progress`` for their progress bars and ``printing`` for what their
results share). No files, no settings, no plotting; imports nothing from the layers above (evidence, synthesis,
reporting)."""

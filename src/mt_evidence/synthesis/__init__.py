"""Layer 3, review logic: comparisons by follow-up window and short against long term (``analysis``),
certainty of evidence (``grade``), the clinic claims and their verdicts (``claims``), and the settings that
drive them (``settings``). Imports only from ``evidence`` and ``stats``."""

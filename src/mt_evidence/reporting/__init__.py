"""Layer 4, output for people: plots (``plots``, matplotlib only here), figure sets (``figures``) and the
clinician report with its template (``report``). Imports from the layers below, never the other way."""

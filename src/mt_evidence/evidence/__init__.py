"""Layer 2, the evidence: the data contract (``schema``) and its validation (``validation``), readers for CSV
folders and workbooks (``io``), wide sheets through a mapping (``wide``) and RevMan files (``revman``), the
extraction template, source addresses (``links``), follow-up windows (``windows``), the build of
``data/processed`` (``build``) and atomic, owned output folders (``atomic``). Imports only from ``stats``."""

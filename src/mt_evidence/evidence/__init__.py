"""Layer 2, the evidence: the data contract (``schema``), readers for CSV folders, workbooks and wide sheets
(``io``) and RevMan files (``revman``), the extraction template, source addresses (``links``), follow-up windows
(``windows``), the build of ``data/processed`` (``build``) and atomic, owned output folders (``atomic``).
Imports only from ``stats``."""

"""The settings that drive a review: analysis (windows, thresholds, pooling), the claims file and a reviewer's
certainty overrides, read from one TOML file."""

from __future__ import annotations

import tomllib
from dataclasses import dataclass
from pathlib import Path

from . import analysis as A
from . import claims as C
from . import grade


@dataclass(frozen=True)
class ReportSettings:
    analysis: A.AnalysisConfig
    claims: list
    overrides: grade.Overrides
    source: str = "default"


def load_settings(path: str | Path | None = None) -> ReportSettings:
    """Report settings: an analysis TOML (windows, thresholds, pooling) with an optional ``[report]`` table
    naming a claims file (``claims``) and a reviewer's certainty overrides file (``overrides``), relative to the
    settings file."""
    cfg = A.load_config(path)
    claims_path = overrides_path = None
    if path is not None:
        spec = tomllib.loads(Path(path).read_text(encoding="utf-8")).get("report", {})
        base = Path(path).parent
        if "claims" in spec:
            claims_path = base / spec["claims"]
        if "overrides" in spec:
            overrides_path = base / spec["overrides"]
    return ReportSettings(cfg, C.load_claims(claims_path), grade.Overrides.load(overrides_path),
                          "default" if path is None else str(path))


__all__ = ["ReportSettings", "load_settings"]

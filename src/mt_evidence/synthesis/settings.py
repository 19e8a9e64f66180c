"""The settings that drive a review: analysis (windows, thresholds, pooling), the claims file and a reviewer's
certainty overrides, read from one TOML file."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from ..evidence.tomlfile import read_toml
from . import analysis as A
from . import claims as C
from . import grade


@dataclass(frozen=True)
class ReportSettings:
    analysis: A.AnalysisConfig
    claims: list
    overrides: grade.Overrides
    source: str = "default"
    #: where the claims came from: "default" (the package's clinic claims) or the claims file
    claims_source: str = "default"


def load_settings(path: str | Path | None = None, vocabulary=None) -> ReportSettings:
    """Report settings: an analysis TOML (windows, thresholds, pooling) with an optional ``[report]`` table
    naming a claims file (``claims``) and a reviewer's certainty overrides file (``overrides``), relative to the
    settings file. With a review's own ``vocabulary`` the package's clinic claims do not apply: no claim is tested
    unless the settings name a claims file, whose tests may use the review's comparisons (docs/methods.md
    section 18)."""
    cfg = A.load_config(path)
    claims_path = overrides_path = None
    if path is not None:
        spec = read_toml(path, "analysis.toml")[0].get("report", {})
        base = Path(path).parent
        if "claims" in spec:
            claims_path = _inside(base, spec["claims"], path, "claims")
        if "overrides" in spec:
            overrides_path = _inside(base, spec["overrides"], path, "overrides")
    own = vocabulary is not None and not vocabulary.is_default
    claims = [] if own and claims_path is None else C.load_claims(claims_path, vocabulary)
    problems = claim_window_problems(claims, cfg)
    if problems:
        raise ValueError(f"{claims_path or 'claims.toml (default)'}: " + "; ".join(problems))
    return ReportSettings(cfg, claims, grade.Overrides.load(overrides_path), "default" if path is None else str(path),
                          "default" if claims_path is None else str(claims_path))


def _inside(base: Path, value, settings: str | Path, key: str) -> Path:
    """A file named in the settings, resolved in the settings file's folder; never outside it (a settings file
    must not make the report print an unrelated file)."""
    if not isinstance(value, str) or not value.strip():
        raise ValueError(f"{settings}: [report] {key} = {value!r}; expected a file name next to the settings file")
    target = (base / value).resolve()
    if not target.is_relative_to(base.resolve()):
        raise ValueError(f"{settings}: [report] {key} = {value!r} points outside the settings file's folder "
                         f"({base.resolve()}); put the file in that folder and name it there")
    return target


def claim_window_problems(claims: list, cfg: A.AnalysisConfig) -> list[str]:
    """Claims naming a window the settings do not define (a misspelt window would read as 'no trial')."""
    names = {w.name for w in cfg.windows} | {"short_vs_long"}
    out = []
    for c in claims:
        for t in c.tests:
            harm = t.expect in ("no_serious_harm", "describe")
            if harm and t.window != "any":
                out.append(f"claim {c.id}: a harms test counts events over the whole trial: window = \"any\" "
                           f"(got {t.window!r})")
            elif not harm and t.window not in names:
                out.append(f"claim {c.id}: window {t.window!r} is not defined (windows: {', '.join(sorted(names))})")
    return out


__all__ = ["ReportSettings", "load_settings"]

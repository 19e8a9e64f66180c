"""Follow-up windows: which time since randomisation counts as short, intermediate or long term.

The windows themselves are settings of the review (``data/analysis.toml``, table ``[[windows]]``; the
defaults are the Cochrane Back and Neck group's); this module holds the type and the default, so that building
``data/processed`` and the analyses use one definition.
"""

from __future__ import annotations

from dataclasses import dataclass

import pandas as pd

from .tomlfile import read_toml


@dataclass(frozen=True)
class Window:
    """A follow-up window in weeks since randomisation, with the time point preferred inside it (``target``)."""

    name: str
    label: str
    lower: float
    upper: float
    include_lower: bool
    include_upper: bool
    target: float

    def contains(self, weeks: float) -> bool:
        if weeks is None or pd.isna(weeks):
            return False
        lo_ok = weeks >= self.lower if self.include_lower else weeks > self.lower
        hi_ok = weeks <= self.upper if self.include_upper else weeks < self.upper
        return bool(lo_ok and hi_ok)


def default_windows() -> tuple[Window, ...]:
    """The windows of the packaged analysis settings."""
    spec, _ = read_toml(None, "analysis.toml")
    return tuple(Window(**w) for w in spec["windows"])


__all__ = ["Window", "default_windows"]

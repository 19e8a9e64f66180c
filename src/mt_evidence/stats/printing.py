"""What result objects share when printed: p-values in metafor's style, text and notebook representations built
from one list of lines, and the conventions a result was computed under."""

from __future__ import annotations

import html

import numpy as np

__all__ = ["format_p", "PrintedResult", "WithConventions"]


def format_p(p: float) -> str:
    """'= 0.1234' or '< .0001', to follow a 'p'."""
    if not np.isfinite(p):
        return "= NA"
    return "< .0001" if p < 1e-4 else f"= {p:.4f}"


class PrintedResult:
    """Printing from ``self._lines()``: ``repr`` joins them, notebooks show them preformatted. A dataclass using
    this must be declared with ``repr=False`` (or define its own ``__repr__``)."""

    def _lines(self) -> list[str]:  # pragma: no cover - every subclass defines it
        raise NotImplementedError

    def __repr__(self) -> str:
        return "\n".join(self._lines())

    def _repr_html_(self) -> str:
        return "<pre>" + html.escape(repr(self)) + "</pre>"


class WithConventions:
    """``method``, ``test`` and ``level`` read from the result's ``conventions``."""

    @property
    def method(self) -> str:
        return self.conventions.method

    @property
    def test(self) -> str:
        return self.conventions.test

    @property
    def level(self) -> float:
        return self.conventions.level

"""Named statistical conventions, their aliases, and presets that reproduce other tools.

Tools disagree mainly because their defaults differ. Every such choice is a field of :class:`Conventions`,
carried by every result and printed with it.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, replace

METHODS: tuple[str, ...] = ("FE", "DL", "HE", "HS", "SJ", "PM", "EB", "ML", "REML")
METHOD_NAMES: dict[str, str] = {
    "FE": "common effect (inverse variance)",
    "DL": "DerSimonian-Laird",
    "HE": "Hedges (variance components)",
    "HS": "Hunter-Schmidt",
    "SJ": "Sidik-Jonkman",
    "PM": "Paule-Mandel",
    "EB": "empirical Bayes (Morris)",
    "ML": "maximum likelihood",
    "REML": "restricted maximum likelihood",
}
_METHOD_ALIASES = {
    "EE": "FE",
    "CE": "FE",
    "FIXED": "FE",
    "COMMON": "FE",
    "IV": "FE",
    "DERSIMONIAN-LAIRD": "DL",
    "PAULE-MANDEL": "PM",
    "HEDGES": "HE",
    "HUNTER-SCHMIDT": "HS",
    "SIDIK-JONKMAN": "SJ",
}

TESTS: tuple[str, ...] = ("z", "t", "hksj")
TEST_NAMES = {
    "z": "Wald z (normal quantiles)",
    "t": "Wald t with k-p df (no variance rescaling)",
    "hksj": "Hartung-Knapp-Sidik-Jonkman (t with k-p df, rescaled variance)",
}
_TEST_ALIASES = {"KNHA": "hksj", "HK": "hksj", "KH": "hksj", "HARTUNG-KNAPP": "hksj", "HKSJ": "hksj", "Z": "z", "T": "t"}

# metafor 3.8 predict.rma(pi.type=): "default" uses the CI's quantile (z, or t with k-p df under t/HKSJ);
# "riley" uses t with k-p-1 df (k-2 for one intercept: Higgins, Thompson & Spiegelhalter 2009; Riley 2011);
# "t" uses t with k-p df whatever the test; "simple" uses z and ignores the SE of the estimate.
PI_TYPES: tuple[str, ...] = ("default", "riley", "t", "simple")
PI_NAMES = {
    "default": "metafor default: same quantile as the CI, sqrt(se^2 + tau^2)",
    "riley": "t with k-2 df (Higgins 2009 / Riley 2011), sqrt(se^2 + tau^2)",
    "t": "t with k-1 df, sqrt(se^2 + tau^2)",
    "simple": "z, sqrt(tau^2) only",
}
# I^2: "tau2" is metafor's 100*tau2/(tau2 + typical within-study variance) with the model's tau^2;
# "q" is Higgins & Thompson's (Q - df)/Q, truncated at zero (RevMan 5, R meta).
I2_TYPES: tuple[str, ...] = ("tau2", "q")
I2_NAMES = {"tau2": "from tau^2 (metafor)", "q": "from Q: (Q - df)/Q (Higgins & Thompson 2002)"}


@dataclass(frozen=True)
class Conventions:
    """Every convention a pooled result depends on; printed with the result."""

    method: str = "REML"
    test: str = "z"
    adhoc: bool = False
    level: float = 0.95
    pi_type: str = "default"
    i2_type: str = "tau2"
    tau2_ci: str = "QP"
    preset: str | None = None

    def describe(self) -> str:
        parts = [
            f"tau^2 estimator: {self.method} ({METHOD_NAMES[self.method]})",
            f"CI for the estimate: {TEST_NAMES[self.test]}"
            + (" with the ad hoc correction max(1, s^2)" if self.adhoc else ""),
            f"level: {self.level:g}",
            f"prediction interval: {PI_NAMES[self.pi_type]}",
            f"I^2: {I2_NAMES[self.i2_type]}",
            "CI for tau^2, I^2, H^2: Q-profile (Viechtbauer 2007)",
        ]
        if self.preset:
            parts.insert(0, f"preset: {self.preset}")
            if self.preset.startswith("revman5"):
                parts.insert(1, "SMDs as RevMan 5 computes them need effect_size(..., preset='revman5') "
                                "(vtype='REVMAN'); pooling cannot change a variance it is given")
        return "; ".join(parts)

    def to_dict(self) -> dict:
        return asdict(self)


# Presets reproduce other tools' defaults in one word.
# RevMan (2024-2025 random-effects methods): REML, Q-profile CI for tau^2, HKSJ CI for the mean, I^2 from tau^2
# and a t-based prediction interval (Cochrane Methods, "Random-effects meta-analysis methods for Intervention
# Reviews", methods.cochrane.org, read 2026-11-23). That page does not state the t distribution's degrees of
# freedom; the preset uses k - 1 (metafor's pi.type = "t"); pi_type="riley" gives k - 2. RevMan 5:
# DerSimonian-Laird, Wald z, I^2 from Q.
PRESETS: dict[str, dict] = {
    "metafor": dict(method="REML", test="z", adhoc=False, pi_type="default", i2_type="tau2"),
    "revman": dict(method="REML", test="hksj", adhoc=False, pi_type="t", i2_type="tau2"),
    "revman5": dict(method="DL", test="z", adhoc=False, pi_type="riley", i2_type="q"),
}


def normalise_method(method: str) -> str:
    if not isinstance(method, str):
        raise TypeError(f"method must be a string, one of {', '.join(METHODS)}; got {method!r}")
    key = method.strip().upper()
    key = _METHOD_ALIASES.get(key, key)
    if key not in METHODS:
        raise ValueError(
            f"unknown method {method!r}: accepted are {', '.join(METHODS)} "
            f"(aliases: {', '.join(sorted(_METHOD_ALIASES))})"
        )
    return key


def normalise_test(test: str) -> str:
    if not isinstance(test, str):
        raise TypeError(f"test must be a string, one of {', '.join(TESTS)}; got {test!r}")
    key = test.strip()
    key = _TEST_ALIASES.get(key.upper(), key.lower())
    if key not in TESTS:
        raise ValueError(f"unknown test {test!r}: accepted are 'z', 't', 'hksj' (alias 'knha')")
    return key


def resolve(
    *,
    preset: str | None,
    method: str | None,
    test: str | None,
    adhoc: bool | None,
    level: float | None,
    pi_type: str | None,
    i2_type: str | None,
) -> Conventions:
    """Start from the preset (or metafor's defaults) and apply every explicitly given option."""
    if preset is not None:
        key = preset.strip().lower()
        if key not in PRESETS:
            raise ValueError(f"unknown preset {preset!r}: accepted are {', '.join(PRESETS)}")
        conv = Conventions(**PRESETS[key], preset=key)
    else:
        conv = Conventions()
    changes: dict = {}
    if method is not None:
        changes["method"] = normalise_method(method)
    if test is not None:
        changes["test"] = normalise_test(test)
    if adhoc is not None:
        changes["adhoc"] = bool(adhoc)
    if level is not None:
        lvl = float(level)
        if lvl > 1 and lvl < 100:
            lvl = lvl / 100.0
        if not 0 < lvl < 1:
            raise ValueError(f"level must be in (0, 1) (or a percentage in (0, 100)); got {level!r}")
        changes["level"] = lvl
    if pi_type is not None:
        if pi_type not in PI_TYPES:
            raise ValueError(f"unknown pi_type {pi_type!r}: accepted are {', '.join(PI_TYPES)}")
        changes["pi_type"] = pi_type
    if i2_type is not None:
        if i2_type not in I2_TYPES:
            raise ValueError(f"unknown i2_type {i2_type!r}: accepted are {', '.join(I2_TYPES)}")
        changes["i2_type"] = i2_type
    if changes and conv.preset is not None:
        differs = {k: v for k, v in changes.items() if getattr(conv, k) != v}
        if differs:
            changes["preset"] = conv.preset + " (modified: " + ", ".join(f"{k}={v}" for k, v in differs.items()) + ")"
    conv = replace(conv, **changes)
    if conv.adhoc and conv.test != "hksj":
        raise ValueError("adhoc=True is the ad hoc correction of the HKSJ variance; use it with test='hksj'")
    return conv

"""A review's vocabulary: its treatments, outcomes, populations and comparisons (docs/methods.md section 18).

The default is this package's question (manual therapy, exercise and combined care for low back pain,
``data/vocabulary.toml``). Another review declares its own in a ``review.toml`` beside its evidence files, in the
same form::

    [review]
    title = "Spinal manipulative therapy for chronic low back pain"
    primary_outcomes = ["pain", "function"]

    [treatments]                  # declaration order = the order in which arms are compared
    smt = { label = "spinal manipulative therapy", role = "active" }
    sham = { label = "sham SMT", role = "control", group = "sham" }

    [outcomes]
    pain = "pain"

    [populations]
    chronic = "chronic low back pain"

    [[comparisons]]               # optional: default, every active care against later ones and each control group
    name = "smt_vs_sham"
    first = "smt"
    second = ["sham"]

Validation accepts exactly the declared names; build, comparisons, tables, plots and the network follow them.
"""

from __future__ import annotations

import difflib
from dataclasses import dataclass, field
from pathlib import Path

from .tomlfile import read_toml

__all__ = ["Treatment", "Comparison", "Vocabulary", "VocabularyError", "load_vocabulary", "default_vocabulary",
           "REVIEW_FILE"]

#: the file in an evidence folder that declares the review's vocabulary
REVIEW_FILE = "review.toml"
ROLES = ("active", "control")
NAME_CHARS = "letters, digits and '_' (starting with a letter)"

_KEYS = {
    "": {"review", "treatments", "groups", "outcomes", "populations", "comparisons"},
    "review": {"title", "primary_outcomes", "source"},
    "treatment": {"label", "role", "group", "components", "network"},
    "comparison": {"name", "first", "second", "labels", "view"},
}


class VocabularyError(ValueError):
    """A vocabulary file with problems; ``problems`` lists each (key, what is expected there)."""

    def __init__(self, source: str, problems: list[tuple[str, str]]):
        self.source = source
        self.problems = list(problems)
        super().__init__(f"{len(self.problems)} problem(s) in {source}:\n"
                         + "\n".join(f"  - {key or 'the file'}: expected {msg}" for key, msg in self.problems))


@dataclass(frozen=True)
class Treatment:
    """One care a trial arm can receive (a value of the ``intervention`` columns)."""

    name: str
    label: str
    role: str = "active"
    group: str = ""
    components: tuple[str, ...] = ()
    network: bool = True  # a node of the network (False for a catch-all such as "other care")


@dataclass(frozen=True)
class Comparison:
    """``first`` against any of ``second`` (controls of one group pooled together); ``view``: a labelled view
    never used for a verdict."""

    name: str
    first: str
    second: tuple[str, ...]
    labels: tuple[str, str]
    view: bool = False


@dataclass(frozen=True, eq=False)
class Vocabulary:
    """The names a review's evidence may use, with their labels; see the module docstring."""

    title: str
    treatments: tuple[Treatment, ...]
    outcomes: dict[str, str]
    populations: dict[str, str]
    comparisons: tuple[Comparison, ...]
    primary_outcomes: tuple[str, ...]
    groups: dict[str, str] = field(default_factory=dict)
    source: str = "default"
    is_default: bool = False

    # -- names
    @property
    def treatment_names(self) -> tuple[str, ...]:
        return tuple(t.name for t in self.treatments)

    @property
    def controls(self) -> tuple[str, ...]:
        return tuple(t.name for t in self.treatments if t.role == "control")

    @property
    def network_nodes(self) -> tuple[str, ...]:
        return tuple(t.name for t in self.treatments if t.network)

    def treatment(self, name: str) -> Treatment | None:
        return next((t for t in self.treatments if t.name == name), None)

    def label(self, name: str) -> str:
        """A treatment's, group's or outcome's label (the name itself when undeclared)."""
        t = self.treatment(name)
        if t is not None:
            return t.label
        return self.groups.get(name) or self.outcomes.get(name) or name

    def treatment_labels(self) -> dict[str, str]:
        return {t.name: t.label for t in self.treatments}

    def rank(self, name: str) -> int:
        """Position in the declaration order (undeclared names last): the first-named care is compared first."""
        names = self.treatment_names
        return names.index(name) if name in names else len(names)

    def components(self) -> dict[str, list[str]]:
        return {t.name: list(t.components) for t in self.treatments if t.components}

    # -- comparisons
    def comparison(self, name: str) -> Comparison | None:
        return next((c for c in self.comparisons if c.name == name), None)

    def comparison_map(self) -> dict[str, tuple[str, tuple[str, ...]]]:
        return {c.name: (c.first, c.second) for c in self.comparisons}

    def comparison_labels(self, name: str) -> tuple[str, str]:
        c = self.comparison(name)
        return c.labels if c is not None else (name, "")

    def views(self) -> tuple[str, ...]:
        return tuple(c.name for c in self.comparisons if c.view)

    def describe(self) -> str:
        return (f"vocabulary from {self.source}: {len(self.treatments)} treatments, {len(self.outcomes)} outcomes, "
                f"{len(self.populations)} populations, {len(self.comparisons)} comparisons")

    def __repr__(self) -> str:
        return f"Vocabulary({self.describe()})"


def _unknown_keys(found, allowed: set[str], where: str, problems: list) -> None:
    for k in found:
        if k not in allowed:
            close = difflib.get_close_matches(k, sorted(allowed), n=1)
            hint = f"; did you mean '{close[0]}'?" if close else ""
            problems.append((f"{where}{k}", f"a known key, one of {', '.join(sorted(allowed))}{hint}"))


def _is_name(x) -> bool:
    return isinstance(x, str) and x[:1].isalpha() and x.replace("_", "").isalnum() and x.isascii()


def _labels_table(spec, key: str, problems: list) -> dict[str, str]:
    """``[outcomes]``/``[populations]``/``[groups]``: name = "label" (or name = { label = "..." })."""
    out: dict[str, str] = {}
    if spec is None:
        return out
    if not isinstance(spec, dict):
        problems.append((key, f"a table of name = \"label\" (got {type(spec).__name__})"))
        return out
    for name, value in spec.items():
        if isinstance(value, dict):
            _unknown_keys(value, {"label"}, f"{key}.{name}.", problems)
            value = value.get("label", name)
        if not _is_name(name):
            problems.append((f"{key}.{name}", f"a name of {NAME_CHARS}"))
        elif not isinstance(value, str) or not value.strip():
            problems.append((f"{key}.{name}", f"a label in quotes (got {value!r})"))
        else:
            out[name] = value.strip()
    return out


def _treatments(spec, problems: list) -> tuple[Treatment, ...]:
    if not isinstance(spec, dict) or not spec:
        problems.append(("treatments", "a [treatments] table declaring at least one treatment, e.g. "
                                       "smt = { label = \"spinal manipulation\", role = \"active\" }"))
        return ()
    out = []
    for name, t in spec.items():
        where = f"treatments.{name}"
        if not _is_name(name):
            problems.append((where, f"a name of {NAME_CHARS}"))
            continue
        if isinstance(t, str):
            t = {"label": t}
        if not isinstance(t, dict):
            problems.append((where, "a table such as { label = \"...\", role = \"active\" }"))
            continue
        _unknown_keys(t, _KEYS["treatment"], where + ".", problems)
        role = t.get("role", "active")
        if role not in ROLES:
            problems.append((f"{where}.role", f"'active' or 'control' (got {role!r})"))
            continue
        group = t.get("group", "")
        if not isinstance(group, str) or (group and not _is_name(group)):
            problems.append((f"{where}.group", f"a group name of {NAME_CHARS} (got {group!r})"))
            continue
        comps = t.get("components", [])
        if not isinstance(comps, list) or not all(isinstance(c, str) for c in comps):
            problems.append((f"{where}.components", f"a list of treatment names (got {comps!r})"))
            continue
        label = t.get("label", name.replace("_", " "))
        if not isinstance(label, str) or not label.strip():
            problems.append((f"{where}.label", f"a label in quotes (got {label!r})"))
            continue
        network = t.get("network", True)
        if not isinstance(network, bool):
            problems.append((f"{where}.network", f"true or false (got {network!r})"))
            continue
        out.append(Treatment(name, label.strip(), role, group if role == "control" else "", tuple(comps), network))
    names = {t.name for t in out}
    for t in out:
        for c in t.components:
            if c not in names or c == t.name:
                problems.append((f"treatments.{t.name}.components", f"'{c}' is not another declared treatment"))
    return tuple(out)


def _side_label(names: tuple[str, ...], treatments: dict[str, Treatment], groups: dict[str, str]) -> str:
    if len(names) == 1:
        return treatments[names[0]].label
    gs = {treatments[n].group for n in names}
    if len(gs) == 1 and "" not in gs:
        g = gs.pop()
        members = {t.name for t in treatments.values() if t.group == g}
        if set(names) == members:
            return groups.get(g) or " or ".join(treatments[n].label for n in names)
    return " or ".join(treatments[n].label for n in names)


def _default_comparisons(treatments: tuple[Treatment, ...]) -> list[dict]:
    """Every active care against each later-declared active care, and against each control group."""
    active = [t for t in treatments if t.role == "active"]
    groups: dict[str, list[str]] = {}
    for t in treatments:
        if t.role == "control":
            groups.setdefault(t.group or t.name, []).append(t.name)
    out = []
    for i, a in enumerate(active):
        for b in active[i + 1:]:
            out.append({"name": f"{a.name}_vs_{b.name}", "first": a.name, "second": [b.name]})
        for g, members in groups.items():
            out.append({"name": f"{a.name}_vs_{g}", "first": a.name, "second": members})
    return out


def _comparisons(spec, treatments: tuple[Treatment, ...], groups: dict[str, str],
                 problems: list) -> tuple[Comparison, ...]:
    by_name = {t.name: t for t in treatments}
    if spec is None:
        spec = _default_comparisons(treatments)
    if not isinstance(spec, list):
        problems.append(("comparisons", "a list of [[comparisons]] tables (two brackets)"))
        return ()
    out, seen = [], set()
    for i, c in enumerate(spec, 1):
        where = f"comparisons[{i}]"
        if not isinstance(c, dict):
            problems.append((where, "a [[comparisons]] table"))
            continue
        _unknown_keys(c, _KEYS["comparison"], where + ".", problems)
        name, first, second = c.get("name"), c.get("first"), c.get("second")
        if isinstance(second, str):
            second = [second]
        ok = True
        if not _is_name(name):
            problems.append((f"{where}.name", f"a name of {NAME_CHARS} (got {name!r})"))
            ok = False
        elif name in seen:
            problems.append((f"{where}.name", f"'{name}' is declared twice; each comparison once"))
            ok = False
        if first not in by_name:
            problems.append((f"{where}.first", f"a declared treatment (got {first!r}; declared: "
                                               f"{', '.join(by_name)})"))
            ok = False
        if not isinstance(second, list) or not second or any(s not in by_name for s in second):
            problems.append((f"{where}.second", f"a list of declared treatments (got {second!r})"))
            ok = False
        elif first in second:
            problems.append((f"{where}.second", f"'{first}' on both sides"))
            ok = False
        labels = c.get("labels")
        if labels is not None and not (isinstance(labels, list) and len(labels) == 2
                                       and all(isinstance(x, str) and x.strip() for x in labels)):
            problems.append((f"{where}.labels", f"two labels, [\"first\", \"second\"] (got {labels!r})"))
            ok = False
        view = c.get("view", False)
        if not isinstance(view, bool):
            problems.append((f"{where}.view", f"true or false (got {view!r})"))
            ok = False
        if not ok:
            continue
        seen.add(name)
        second = tuple(second)
        labels = tuple(labels) if labels else (by_name[first].label, _side_label(second, by_name, groups))
        out.append(Comparison(name, first, second, labels, view))
    return tuple(out)


def vocabulary_from_spec(spec: dict, source: str, *, is_default: bool = False) -> Vocabulary:
    """A vocabulary from a parsed TOML table; :class:`VocabularyError` lists every problem."""
    problems: list[tuple[str, str]] = []
    if not isinstance(spec, dict):
        raise VocabularyError(source, [("", "a TOML file")])
    _unknown_keys(spec, _KEYS[""], "", problems)
    review = spec.get("review", {})
    if not isinstance(review, dict):
        problems.append(("review", "a [review] table"))
        review = {}
    _unknown_keys(review, _KEYS["review"], "review.", problems)
    treatments = _treatments(spec.get("treatments"), problems)
    outcomes = _labels_table(spec.get("outcomes"), "outcomes", problems)
    if not outcomes and "outcomes" not in [k for k, _ in problems]:
        problems.append(("outcomes", "an [outcomes] table declaring at least one outcome, e.g. pain = \"pain\""))
    populations = _labels_table(spec.get("populations"), "populations", problems)
    if not populations:
        populations = {"mixed": "mixed"}
    groups = _labels_table(spec.get("groups"), "groups", problems)
    comparisons = _comparisons(spec.get("comparisons"), treatments, groups, problems)
    primary = review.get("primary_outcomes", list(outcomes)[:2])
    if not isinstance(primary, list) or any(o not in outcomes for o in primary):
        problems.append(("review.primary_outcomes", f"a list of declared outcomes (got {primary!r}; declared: "
                                                    f"{', '.join(outcomes)})"))
        primary = []
    title = review.get("title", "What the trials show")
    if not isinstance(title, str) or not title.strip():
        problems.append(("review.title", f"a title in quotes (got {title!r})"))
        title = "What the trials show"
    if problems:
        raise VocabularyError(source, problems)
    return Vocabulary(title=title.strip(), treatments=treatments, outcomes=outcomes, populations=populations,
                      comparisons=comparisons, primary_outcomes=tuple(primary), groups=groups, source=source,
                      is_default=is_default)


_DEFAULT: Vocabulary | None = None


def default_vocabulary() -> Vocabulary:
    """The package's own vocabulary (``data/vocabulary.toml``), read once."""
    global _DEFAULT
    if _DEFAULT is None:
        spec, source = read_toml(None, "vocabulary.toml")
        _DEFAULT = vocabulary_from_spec(spec, source, is_default=True)
    return _DEFAULT


def load_vocabulary(path: str | Path | None = None) -> Vocabulary:
    """A review's vocabulary from ``path`` (a ``review.toml``), or the default when ``path`` is None.

    Raises :class:`VocabularyError` naming the file and every key with a problem.
    """
    if path is None:
        return default_vocabulary()
    spec, source = read_toml(path, REVIEW_FILE)
    return vocabulary_from_spec(spec, source)

"""Read continuous-outcome data from RevMan 5 review files (``.rm5``).

A RevMan 5 file is XML with upper-case element and attribute names. The parts this reader uses::

    <COCHRANE_REVIEW ...>
      <STUDIES_AND_REFERENCES>
        <STUDIES>
          <INCLUDED_STUDIES>
            <STUDY ID="STD-Smith_x002d_2004" NAME="Smith 2004" YEAR="2004" .../>
          </INCLUDED_STUDIES>
          ...
        </STUDIES>
      </STUDIES_AND_REFERENCES>
      <ANALYSES_AND_DATA>
        <COMPARISON ID="CMP-001" NO="1">
          <NAME>Comparison name</NAME>
          <CONT_OUTCOME ID="CMP-001.01" NO="1" SUBGROUPS="NO|YES" ...>
            <NAME>Outcome name</NAME>
            <GROUP_LABEL_1>Experimental label</GROUP_LABEL_1>
            <GROUP_LABEL_2>Control label</GROUP_LABEL_2>
            <CONT_DATA STUDY_ID="STD-..." MEAN_1=".." SD_1=".." TOTAL_1=".." MEAN_2=".." SD_2=".." TOTAL_2=".."/>
            <CONT_SUBGROUP ID="CMP-001.01.01" NO="1">
              <NAME>Subgroup name</NAME>
              <CONT_DATA .../>
            </CONT_SUBGROUP>
          </CONT_OUTCOME>
          <DICH_OUTCOME>...</DICH_OUTCOME>   (dichotomous; not read here)
        </COMPARISON>
      </ANALYSES_AND_DATA>
    </COCHRANE_REVIEW>

Study IDs are XML-name escaped by RevMan (``STD-ISIS_x002d_2`` is the study named ``ISIS-2``); the reader
shows the study's ``NAME`` where the file has it and otherwise the decoded ID.

The result is the package's long "arms" format: one row per study x arm x outcome (see :data:`ARMS_COLUMNS`),
plus the RevMan-specific columns ``comparison`` and ``group_label``.
"""

from __future__ import annotations

import math
import os
import re
import xml.etree.ElementTree as ET
from collections.abc import Mapping
from pathlib import Path

import numpy as np
import pandas as pd

from . import schema as _schema

__all__ = [
    "ARMS_COLUMNS",
    "INTERVENTIONS",
    "REVMAN_EXTRA_COLUMNS",
    "RevManError",
    "decode_study_id",
    "element_text",
    "read_review_root",
    "read_revman",
    "study_names",
]

#: Columns of the package's long "arms" format that continuous outcomes fill, in order: every column of the data
#: contract (:mod:`mt_evidence.evidence.schema`) but ``events``, the count of a dichotomous outcome, which this
#: reader of continuous outcomes never fills (:func:`mt_evidence.evidence.revman_review.read_revman_review`
#: reads every outcome type).
ARMS_COLUMNS: tuple[str, ...] = tuple(c for c in _schema.ARM_COLUMNS if c != "events")

#: Columns :func:`read_revman` adds after :data:`ARMS_COLUMNS`.
REVMAN_EXTRA_COLUMNS: tuple[str, ...] = ("comparison", "group_label")

#: Intervention categories accepted as values of ``intervention_map``.
INTERVENTIONS: tuple[str, ...] = _schema.INTERVENTIONS

#: Fields an ``outcome_map`` entry may set.
OUTCOME_FIELDS: tuple[str, ...] = ("outcome", "instrument", "scale_min", "scale_max", "higher_is_worse",
                                   "timepoint_weeks", "technique")

_TEXT_COLUMNS = (
    "study_id",
    "arm",
    "intervention",
    "technique",
    "outcome",
    "instrument",
    "value_type",
    "change_sign",
    "role",
    "source_url",
    "source_location",
    "derivation",
    "note",
    "comparison",
    "group_label",
)
_FLOAT_COLUMNS = (
    "scale_min",
    "scale_max",
    "timepoint_weeks",
    "mean",
    "sd",
    "se",
    "ci_low",
    "ci_high",
    "median",
    "q1",
    "q3",
    "min",
    "max",
)

_ROOT_TAG = "COCHRANE_REVIEW"
_XML_NAME_ESCAPE = re.compile(r"_x([0-9A-Fa-f]{4})_")
_ARMS = ((1, "experimental"), (2, "control"))


class RevManError(ValueError):
    """A RevMan file could not be read, or its data are unusable.

    Parameters
    ----------
    path : str
        The file, as given to :func:`read_revman`.
    problems : list of str
        Every problem found; the message lists them all.

    Attributes
    ----------
    path : str
        The file, as given.
    problems : list of str
        Every problem found, one sentence each.
    """

    def __init__(self, path: str, problems: list[str]):
        self.path = path
        self.problems = list(problems)
        count = len(self.problems)
        head = f"RevMan file {path!r}: {count} problem{'s' if count != 1 else ''}"
        if count == 1:
            message = f"{head}: {self.problems[0]}"
        else:
            message = head + ":\n" + "\n".join(f"  - {p}" for p in self.problems)
        super().__init__(message)


def _text(element: ET.Element | None) -> str:
    """All text inside ``element``, whitespace collapsed; empty when there is no element."""
    if element is None:
        return ""
    return " ".join("".join(element.itertext()).split())


_ENCODING_HINT = ("RevMan 5 saves its files as UTF-8: re-save the review from RevMan, or convert the file to UTF-8 "
                  "(e.g. `iconv -f windows-1252 -t utf-8 old.rm5 > new.rm5`)")


def _parse_xml(file: Path, source: str):
    """The XML root of a RevMan file; an unknown or wrong text encoding is a RevManError saying what to do."""
    from .files import MAX_CSV_BYTES, InputRefused, read_bytes

    try:
        data = read_bytes(file, MAX_CSV_BYTES, "a RevMan 5 review (.rm5)")
    except InputRefused as exc:
        raise RevManError(source, [str(exc)]) from None
    head = data[:200].decode("ascii", errors="replace")
    declared = re.search(r"encoding\s*=\s*[\"']([^\"']+)[\"']", head)
    try:
        return ET.fromstring(data)
    except LookupError:
        raise RevManError(source, [f"the file declares the text encoding {declared.group(1)!r}, which is not a "
                                   f"known encoding; {_ENCODING_HINT}"]) from None
    except ET.ParseError as exc:
        if declared is None or declared.group(1).lower().replace("_", "-") in ("utf-8", "utf8"):
            try:
                data.decode("utf-8")
            except UnicodeDecodeError as bad:
                line = data[:bad.start].count(b"\n") + 1
                raise RevManError(source, [f"the file is not valid UTF-8 (byte 0x{data[bad.start]:02x} on line "
                                           f"{line}); {_ENCODING_HINT}"]) from None
        raise RevManError(source, [f"not an XML file ({exc})"]) from None


def _decode_id(raw: str) -> str:
    """Undo RevMan's XML-name escaping (``_x002d_`` is ``-``) and drop the ``STD-`` prefix of study IDs."""
    decoded = _XML_NAME_ESCAPE.sub(lambda m: chr(int(m.group(1), 16)), raw.strip())
    if decoded.startswith("STD-"):
        decoded = decoded[4:]
    return decoded


def _identifier(name: str) -> str:
    """A study name as an identifier: runs of spaces become ``_``; only letters, digits, ``_ - .`` are kept."""
    ident = re.sub(r"\s+", "_", name.strip())
    ident = re.sub(r"[^\w.\-]", "", ident)
    return re.sub(r"_+", "_", ident).strip("_")


def _study_names(root: ET.Element) -> dict[str, str]:
    """Map each RevMan study ID to its display name.

    Included studies come first; studies elsewhere under ``STUDIES`` (excluded, awaiting, ongoing) only fill
    IDs that the included studies do not cover.
    """
    names: dict[str, str] = {}
    studies = root.find("STUDIES_AND_REFERENCES/STUDIES")
    if studies is None:
        return names
    included = studies.find("INCLUDED_STUDIES")
    groups = ([included] if included is not None else []) + [g for g in studies if g is not included]
    for group in groups:
        for study in group.iter("STUDY"):
            sid = (study.get("ID") or "").strip()
            name = " ".join((study.get("NAME") or "").split())
            if sid and name and sid not in names:
                names[sid] = name
    return names


def _study_identifiers(names: dict[str, str]) -> dict[str, str]:
    """Identifiers for the named studies.

    Studies whose names collapse to the same identifier (``"Smith 2004"`` and ``"Smith, 2004"``) are numbered
    in the order the file lists them: ``Smith_2004_1``, ``Smith_2004_2``.
    """
    idents = {sid: _identifier(name) or _identifier(_decode_id(sid)) for sid, name in names.items()}
    groups: dict[str, list[str]] = {}
    for sid, ident in idents.items():
        groups.setdefault(ident, []).append(sid)
    used = set(groups)
    for ident, sids in groups.items():
        if len(sids) < 2:
            continue
        number = 0
        for sid in sids:
            candidate = ident
            while candidate in used:
                number += 1
                candidate = f"{ident}_{number}"
            idents[sid] = candidate
            used.add(candidate)
    return idents


def _normalise_map(intervention_map: Mapping[str, str] | None) -> dict[str, str]:
    if intervention_map is None:
        return {}
    if not isinstance(intervention_map, Mapping):
        raise TypeError(
            "intervention_map must be a dict from RevMan group labels to intervention categories; "
            f"got {type(intervention_map).__name__}"
        )
    out: dict[str, str] = {}
    for label, category in intervention_map.items():
        if not isinstance(label, str) or not isinstance(category, str):
            raise TypeError(f"intervention_map keys and values must be strings; got {label!r}: {category!r}")
        if category not in INTERVENTIONS:
            raise ValueError(
                f"intervention_map[{label!r}] = {category!r} is not an intervention category; "
                f"accepted are {', '.join(INTERVENTIONS)}"
            )
        key = " ".join(label.split()).casefold()
        if key in out and out[key] != category:
            raise ValueError(
                f"intervention_map gives the label {label!r} two categories ({out[key]!r} and {category!r}); "
                "labels are matched case-insensitively"
            )
        out[key] = category
    return out


def _number(raw: str | None, attr: str, *, whole: bool = False, minimum: float | None = None) -> tuple[float, str]:
    """Parse one attribute value; return ``(value, "")`` or ``(nan, what is wrong)``."""
    if raw is None:
        return math.nan, f"{attr} is missing"
    text = raw.strip()
    if not text:
        return math.nan, f"{attr} is empty"
    try:
        value = float(text)
    except ValueError:
        return math.nan, f"{attr}={raw!r} is not a number"
    if not math.isfinite(value):
        return math.nan, f"{attr}={raw!r} is not a finite number"
    if whole and value != int(value):
        return math.nan, f"{attr}={raw!r} is not a whole number of participants"
    if minimum is not None and value < minimum:
        if whole:
            detail = " (no participants; RevMan writes 0 for data never entered)" if value == 0 else ""
            return math.nan, f"{attr}={raw!r} is below {minimum:g}{detail}"
        return math.nan, f"{attr}={raw!r} is negative"
    return value, ""


def _empty_frame() -> pd.DataFrame:
    return _typed(pd.DataFrame({c: [] for c in ARMS_COLUMNS + REVMAN_EXTRA_COLUMNS}))


def _typed(frame: pd.DataFrame) -> pd.DataFrame:
    """Give every column the dtype the package's tables use (as ``schema.coerce_table`` does).

    Text: object, missing is ``None``; numbers (``n`` too): float64, missing is NaN; ``higher_is_worse`` and
    ``adjusted``: pandas' nullable ``boolean``.
    """
    out = frame.loc[:, list(ARMS_COLUMNS + REVMAN_EXTRA_COLUMNS)].copy()
    for col in _TEXT_COLUMNS:
        out[col] = pd.Series([None if pd.isna(v) else str(v) for v in out[col]], index=out.index, dtype=object)
    for col in _FLOAT_COLUMNS + ("n",):
        out[col] = out[col].astype(np.float64)
    for col in ("higher_is_worse", "adjusted"):
        out[col] = pd.Series(list(out[col]), index=out.index, dtype="boolean")
    return out.reset_index(drop=True)


def read_review_root(path: str | os.PathLike) -> tuple[ET.Element, Path, str]:
    """The XML root of a RevMan 5 review, the file and the path as given.

    Raises FileNotFoundError when ``path`` is not a file, and :class:`RevManError` when the file is not XML, is
    in an unusable encoding, or is not a RevMan review (root element other than ``COCHRANE_REVIEW``).
    """
    source = os.fspath(path)
    file = Path(source)
    if not file.is_file():
        raise FileNotFoundError(f"RevMan file {source!r} does not exist (or is not a file)")
    root = _parse_xml(file, source)
    if root.tag != _ROOT_TAG:
        raise RevManError(
            source, [f"not a RevMan 5 review: the root element is <{root.tag}>, a RevMan file has <{_ROOT_TAG}>"]
        )
    return root, file, source


#: All text inside an element, whitespace collapsed ("" for no element).
element_text = _text
#: A RevMan study ID with its XML-name escapes undone and the ``STD-`` prefix dropped.
decode_study_id = _decode_id
#: Each RevMan study ID with its display name (included studies first).
study_names = _study_names


def read_revman(
    path: str | os.PathLike,
    *,
    intervention_map: dict[str, str] | None = None,
    outcome_map: dict[str, dict] | None = None,
) -> pd.DataFrame:
    """Read the continuous outcomes of a RevMan 5 review file into the long "arms" format.

    Every ``CONT_DATA`` row of every ``CONT_OUTCOME`` of every ``COMPARISON`` gives two rows: arm 1
    (``MEAN_1``, ``SD_1``, ``TOTAL_1``; RevMan's experimental group) and arm 2 (``MEAN_2``, ``SD_2``,
    ``TOTAL_2``; the control group). Rows inside subgroups (``CONT_SUBGROUP``) are read too. Dichotomous,
    generic inverse-variance and other outcome types are not read.

    Parameters
    ----------
    path : str or os.PathLike
        The ``.rm5`` file.
    intervention_map : dict of str to str, optional
        Maps RevMan group labels (the ``GROUP_LABEL_1`` / ``GROUP_LABEL_2`` text of an outcome, matched
        case-insensitively and with whitespace collapsed) to intervention categories: one of
        ``manual_therapy``, ``exercise``, ``combined``, ``usual_care``, ``advice``, ``sham``, ``wait_list``,
        ``other``. Labels not in the map get ``"other"``.
    outcome_map : dict of str to dict, optional
        Maps RevMan outcome names (matched like group labels) to the fields RevMan does not hold per arm:
        ``outcome`` (a category of the data contract, e.g. ``"pain"``), ``instrument``, ``scale_min``,
        ``scale_max``, ``higher_is_worse``, ``timepoint_weeks``, ``technique``. Without it, ``outcome`` is the
        RevMan name, which the validator reports until it is mapped.

    Returns
    -------
    pandas.DataFrame
        One row per study x arm x outcome row, columns :data:`ARMS_COLUMNS` then ``comparison`` (the
        comparison's name) and ``group_label`` (RevMan's label of that arm). Filled in:

        - ``study_id``: the study's ``NAME`` from the file's studies section (included studies first) with
          runs of spaces made ``_`` and characters other than letters, digits, ``_``, ``-`` and ``.``
          dropped (``"Smith 2004"`` becomes ``"Smith_2004"``); the decoded RevMan ID when the file has no
          name for it; names that collapse to one identifier are numbered (``Smith_2004_1``, ``Smith_2004_2``);
        - ``arm``: ``"experimental"`` (group 1) or ``"control"`` (group 2);
        - ``intervention``: from ``intervention_map``, else ``"other"``;
        - ``outcome``: the outcome's ``NAME``;
        - ``value_type``: ``"final"``; ``adjusted``: ``False``;
        - ``n``, ``mean``, ``sd``: ``TOTAL_k``, ``MEAN_k``, ``SD_k``;
        - ``source_url``: ``file:`` and the file's absolute path; ``source_location``: file name, comparison, outcome, subgroup
          (when there is one), study row and group;
        - ``derivation``: ``""``; ``note``: ``"subgroup: <name>"`` for rows inside a subgroup, else ``""``.

        Everything else (technique, instrument, scale, direction, time point, SE, CI, median, quartiles,
        range) is missing: RevMan 5 files do not hold it per arm. A file without continuous outcomes gives
        an empty frame with these columns.

        Dtypes follow the package's tables: text columns are ``object`` (missing is ``None``), numbers
        including ``n`` are ``float64`` (missing is NaN), ``higher_is_worse`` and ``adjusted`` are pandas'
        nullable ``boolean``.

    Raises
    ------
    FileNotFoundError
        If ``path`` does not exist.
    RevManError
        If the file is not XML, is not a RevMan review (root element other than ``COCHRANE_REVIEW``), or has
        continuous data that cannot be used: a ``CONT_DATA`` row without ``STUDY_ID``, an outcome without a
        name, or a missing, empty, non-numeric or non-finite ``MEAN``/``SD``/``TOTAL``, a negative ``SD``, or
        a ``TOTAL`` that is not a whole number of at least 1. All problems in the file are collected and
        reported in one exception (see :attr:`RevManError.problems`), each naming the comparison, outcome,
        subgroup and study.
    TypeError, ValueError
        If ``intervention_map`` is not a mapping of strings to the categories above.

    Examples
    --------
    >>> arms = read_revman("review.rm5", intervention_map={"Spinal manipulation": "manual_therapy",
    ...                                                     "Usual care": "usual_care"})  # doctest: +SKIP
    """
    labels_map = _normalise_map(intervention_map)
    root, file, source = read_review_root(path)

    names = _study_names(root)
    idents = _study_identifiers(names)
    problems: list[str] = []
    rows: list[dict] = []

    analyses = root.find("ANALYSES_AND_DATA")
    comparisons = analyses.findall("COMPARISON") if analyses is not None else []
    for ci, comparison in enumerate(comparisons, start=1):
        comp_no = comparison.get("NO") or str(ci)
        comp_name = _text(comparison.find("NAME"))
        comp_where = f"comparison {comp_no} '{comp_name}'" if comp_name else f"comparison {comp_no} (no name)"
        for oi, outcome in enumerate(comparison.findall("CONT_OUTCOME"), start=1):
            out_no = outcome.get("NO") or str(oi)
            out_name = _text(outcome.find("NAME"))
            out_where = f"outcome {out_no} '{out_name}'" if out_name else f"outcome {out_no} (no name)"
            if not out_name:
                problems.append(f"{comp_where}, {out_where}: the continuous outcome has no NAME")
            labels = {k: _text(outcome.find(f"GROUP_LABEL_{k}")) for k, _ in _ARMS}

            blocks: list[tuple[str, list[ET.Element]]] = [("", outcome.findall("CONT_DATA"))]
            for si, sub in enumerate(outcome.findall("CONT_SUBGROUP"), start=1):
                sub_name = _text(sub.find("NAME")) or f"subgroup {sub.get('NO') or si}"
                blocks.append((sub_name, sub.findall("CONT_DATA")))

            for sub_name, data_rows in blocks:
                sub_where = f", subgroup '{sub_name}'" if sub_name else ""
                for di, data in enumerate(data_rows, start=1):
                    raw_id = (data.get("STUDY_ID") or "").strip()
                    if raw_id:
                        display = names.get(raw_id) or _decode_id(raw_id)
                        study_id = idents.get(raw_id) or _identifier(_decode_id(raw_id))
                        row_where = f"study '{display}'"
                    else:
                        display, study_id = "", ""
                        row_where = f"data row {di} (no STUDY_ID)"
                    where = f"{comp_where}, {out_where}{sub_where}, {row_where}"
                    if not raw_id:
                        problems.append(f"{where}: STUDY_ID is missing")

                    values: dict[int, tuple[float, float, float]] = {}
                    for k, _ in _ARMS:
                        mean, p_mean = _number(data.get(f"MEAN_{k}"), f"MEAN_{k}")
                        sd, p_sd = _number(data.get(f"SD_{k}"), f"SD_{k}", minimum=0.0)
                        n, p_n = _number(data.get(f"TOTAL_{k}"), f"TOTAL_{k}", whole=True, minimum=1.0)
                        problems.extend(f"{where}: {p}" for p in (p_mean, p_sd, p_n) if p)
                        values[k] = (mean, sd, n)
                    if problems:
                        continue  # nothing will be returned; keep collecting problems only

                    for k, arm in _ARMS:
                        mean, sd, n = values[k]
                        label = labels[k]
                        location = (
                            f"RevMan file {file.name}, comparison '{comp_name}', outcome '{out_name}'"
                            f"{sub_where}, row '{display}', group {k} (MEAN_{k}, SD_{k}, TOTAL_{k})"
                        )
                        rows.append(
                            {
                                "study_id": study_id,
                                "arm": arm,
                                "intervention": labels_map.get(label.casefold(), "other"),
                                "technique": None,
                                "outcome": out_name,
                                "instrument": None,
                                "scale_min": np.nan,
                                "scale_max": np.nan,
                                "higher_is_worse": pd.NA,
                                "timepoint_weeks": np.nan,
                                "value_type": "final",
                                "change_sign": None,
                                "role": None,
                                "n": n,
                                "mean": mean,
                                "sd": sd,
                                "se": np.nan,
                                "ci_low": np.nan,
                                "ci_high": np.nan,
                                "median": np.nan,
                                "q1": np.nan,
                                "q3": np.nan,
                                "min": np.nan,
                                "max": np.nan,
                                "adjusted": False,
                                "source_url": "file:" + str(file.resolve()),
                                "source_location": location,
                                "derivation": "",
                                "note": f"subgroup: {sub_name}" if sub_name else "",
                                "comparison": comp_name,
                                "group_label": label or None,
                            }
                        )

    if problems:
        raise RevManError(source, problems)
    if not rows:
        return _empty_frame()
    frame = pd.DataFrame.from_records(rows)
    if outcome_map:
        bad = {k: set(v) - set(OUTCOME_FIELDS) for k, v in outcome_map.items() if set(v) - set(OUTCOME_FIELDS)}
        if bad:
            raise ValueError(f"outcome_map entries may set {', '.join(OUTCOME_FIELDS)}; unknown: {bad}")
        folded = {" ".join(k.split()).casefold(): v for k, v in outcome_map.items()}
        for i, name in frame["outcome"].items():
            spec = folded.get(" ".join(str(name).split()).casefold())
            if spec:
                for key, val in spec.items():
                    frame.at[i, key] = val
    return _typed(frame)

"""Readers: tidy CSV folders and Excel workbooks, validated against the data contract in
:mod:`mt_evidence.evidence.schema` (:mod:`mt_evidence.evidence.validation`); wide extraction sheets are read
through a mapping by :mod:`mt_evidence.evidence.wide` (``read_wide`` here is a thin wrapper).

``load_evidence(path=None)`` is the entry point: ``None`` loads the bundled evidence (``data/raw``).
"""

from __future__ import annotations

import codecs
import hashlib
import os
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from . import schema
from .schema import EvidenceError, Problem
from .validation import TABLE_FILES, schemas_of, validate_tables
from .vocabulary import REVIEW_FILE, Vocabulary, VocabularyError, default_vocabulary, load_vocabulary

__all__ = ["Evidence", "load_evidence", "validate_path", "read_wide", "bundled_data_dir", "EvidenceError",
           "validate_tables", "schemas_of", "TABLE_FILES"]



def bundled_data_dir() -> Path:
    """The bundled evidence: ``$MT_EVIDENCE_DATA`` if set, else ``data/raw`` of the project checkout."""
    env = os.environ.get("MT_EVIDENCE_DATA")
    if env:
        return Path(env)
    here = Path(__file__).resolve()
    for parent in here.parents:
        cand = parent / "data" / "raw"
        if (cand / "studies.csv").exists():
            return cand
    raise FileNotFoundError(
        "the bundled evidence (data/raw/studies.csv) was not found next to the package; "
        "install the project in editable mode from its checkout (make setup) or set MT_EVIDENCE_DATA"
    )


@dataclass(frozen=True)
class Evidence:
    """Validated evidence: three tables plus where they came from and a hash of the raw bytes."""

    studies: pd.DataFrame
    arms: pd.DataFrame
    contrasts: pd.DataFrame
    source: str
    data_hash: str
    files: dict[str, str] = field(default_factory=dict)
    rob: pd.DataFrame = field(default_factory=lambda: pd.DataFrame(columns=list(schema.ROB_COLUMNS)))
    harms: pd.DataFrame = field(default_factory=lambda: pd.DataFrame(columns=list(schema.HARM_COLUMNS)))
    arm_details: pd.DataFrame = field(default_factory=lambda: pd.DataFrame(columns=list(schema.ARM_DETAIL_COLUMNS)))
    #: values allowed but probably wrong (schema.plausibility_warnings), each naming file, row and column
    warnings: tuple = ()
    #: the review's treatments, outcomes, populations and comparisons (docs/methods.md section 18)
    vocabulary: Vocabulary = field(default_factory=default_vocabulary)

    def summary(self) -> str:
        return (
            f"{len(self.studies)} trials, {len(self.arms)} arm rows, {len(self.contrasts)} contrast rows "
            f"from {self.source} (sha256 {self.data_hash[:12]})"
        )

    def __repr__(self) -> str:
        return f"Evidence({self.summary()})"


# ------------------------------------------------------------------------------------------ raw reading


def _first_line(text: str) -> str:
    """``text.splitlines()[0]`` ("" for no text), without splitting a whole large file."""
    size = 1 << 16
    while True:
        lines = text[:size].splitlines()
        if len(lines) > 1 or size >= len(text):
            return lines[0] if lines else ""
        size *= 4


def _read_csv_checked(path: Path) -> tuple[pd.DataFrame | None, list[Problem], bytes]:
    from .files import MAX_CSV_BYTES, file_problem

    problem = file_problem(path, MAX_CSV_BYTES)
    if problem:
        return None, [Problem(str(path), None, None, problem, "a CSV file (comma-separated text)")], b""
    data = path.read_bytes()
    problems: list[Problem] = []
    if not data or data.isspace():
        return None, [Problem(str(path), 1, None, "an empty file",
                              "a header line naming the columns (mt-evidence template writes one)")], data
    utf8 = True
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        utf8 = False
        line = data[: exc.start].count(b"\n") + 1
        problems.append(Problem(str(path), line, None, f"bytes that are not UTF-8 (byte {exc.start}: "
                                f"{data[exc.start:exc.start + 1]!r})",
                                "UTF-8 text: save the file as 'CSV UTF-8' in your spreadsheet program"))
        text = data.decode("utf-8", errors="replace")
    import io as _io

    first = _first_line(text)
    if ";" in first and "," not in first:
        problems.append(Problem(str(path), 1, None, "a header separated by semicolons (';')",
                                "comma-separated values: save as 'CSV UTF-8 (comma delimited)', or change the list "
                                "separator of your spreadsheet program to a comma"))
        return None, problems, data
    # the parser reads UTF-8 bytes either way: valid files are handed over as they are (without the BOM) rather
    # than as a text buffer (four bytes a character)
    bom = len(codecs.BOM_UTF8) if data.startswith(codecs.BOM_UTF8) else 0
    source = _io.BytesIO(data[bom:]) if utf8 else _io.StringIO(text)
    del text
    try:
        # cells as plain Python text (pandas' str arrays cost more to build; custom columns are made str below)
        df = pd.read_csv(source, dtype=object, keep_default_na=False, na_values=[""])
    except (pd.errors.ParserError, pd.errors.EmptyDataError) as exc:
        problems.append(Problem(str(path), None, None, f"a malformed CSV ({str(exc).strip()})",
                                "comma-separated values with the same number of fields on every line"))
        return None, problems, data
    import csv

    header = [c.strip() for c in next(csv.reader([first]), [])]
    seen: set[str] = set()
    for c in header:
        if c in seen:
            problems.append(Problem(str(path), 1, c, f"the column '{c}' twice in the header",
                                    "each column once (remove or rename the second one)"))
        seen.add(c)
    if len(seen) < len(header):
        return None, problems, data
    df.columns = [str(c).strip() for c in df.columns]
    custom = [c for c in df.columns if c.startswith("x_")]  # carried into the typed tables as they are read
    if custom:
        df[custom] = df[custom].astype(str)
    return df, problems, data


def _raw_tables_from_folder(folder: Path) -> tuple[dict[str, pd.DataFrame], dict[str, str], list[Problem],
                                                   list[bytes]]:
    tables, files, problems = {}, {}, []
    raw_bytes: list[bytes] = []  # what the hash covers: each file's name, a NUL byte and its bytes
    for table, fname in TABLE_FILES.items():
        p = folder / fname
        files[table] = str(p)
        if not p.exists():
            if table in schema.OPTIONAL_TABLES:
                tables[table] = pd.DataFrame(columns=list(schema.TABLES[table][0]))
                continue
            problems.append(Problem(str(p), None, None, "no such file", f"a {fname} in {folder}"))
            tables[table] = pd.DataFrame(columns=list(schema.TABLES[table][0]))
            continue
        df, probs, data = _read_csv_checked(p)
        problems += probs
        raw_bytes += [fname.encode() + b"\0", data]
        tables[table] = df if df is not None else pd.DataFrame(columns=list(schema.TABLES[table][0]))
    return tables, files, problems, raw_bytes


def _raw_tables_from_workbook(path: Path) -> tuple[dict[str, pd.DataFrame], dict[str, str], list[Problem],
                                                     list[bytes]]:
    from .files import workbook_problem

    tables, files, problems = {}, {}, []
    problem = workbook_problem(path)
    if problem:
        return ({t: pd.DataFrame(columns=list(schema.TABLES[t][0])) for t in TABLE_FILES},
                {t: f"{path} [{t}]" for t in TABLE_FILES},
                [Problem(str(path), None, None, problem, "an .xlsx workbook")], [])
    try:
        book = pd.read_excel(path, sheet_name=None, dtype=str)
    except Exception as exc:  # openpyxl raises several types for a broken file
        return ({t: pd.DataFrame(columns=list(schema.TABLES[t][0])) for t in TABLE_FILES},
                {t: f"{path} [{t}]" for t in TABLE_FILES},
                [Problem(str(path), None, None, f"a file Excel cannot open ({exc})", "an .xlsx workbook")], [])
    for table in TABLE_FILES:
        files[table] = f"{path} [sheet {table}]"
        if table not in book:
            if table in schema.OPTIONAL_TABLES:
                tables[table] = pd.DataFrame(columns=list(schema.TABLES[table][0]))
                continue
            problems.append(Problem(str(path), None, None, f"no sheet named '{table}' (sheets: {list(book)})",
                                    "sheets named studies, arms and (optionally) contrasts, rob, harms and arm_details"))
            tables[table] = pd.DataFrame(columns=list(schema.TABLES[table][0]))
            continue
        df = book[table]
        df.columns = [str(c).strip() for c in df.columns]
        tables[table] = df.replace({np.nan: None})
    return tables, files, problems, [path.read_bytes()]


#: progress messages check_path and load_evidence send: reading, one per table, rules across rows, plausibility
VALIDATE_STEPS = len(TABLE_FILES) + 3


def _read_any(path: Path) -> tuple[dict, dict, list[Problem], list[bytes]]:
    if path.is_dir():
        return _raw_tables_from_folder(path)
    if path.suffix.lower() in (".xlsx", ".xlsm"):
        return _raw_tables_from_workbook(path)
    if path.suffix.lower() == ".csv" and path.name in TABLE_FILES.values():
        return _raw_tables_from_folder(path.parent)
    return ({t: pd.DataFrame(columns=list(schema.TABLES[t][0])) for t in TABLE_FILES},
            {t: str(path) for t in TABLE_FILES},
            [Problem(str(path), None, None, f"a {path.suffix or 'suffix-less'} file",
                     "a folder with studies.csv, arms.csv and contrasts.csv, or an .xlsx workbook (an old .xls: "
                     "save it as .xlsx)")], [])


def review_file(path: Path) -> Path | None:
    """The ``review.toml`` that declares an evidence folder's vocabulary, if there is one."""
    folder = path if path.is_dir() else path.parent if path.name in TABLE_FILES.values() else None
    if folder is not None and (folder / REVIEW_FILE).is_file():
        return folder / REVIEW_FILE
    return None


def resolve_vocabulary(path: Path, vocabulary: Vocabulary | str | os.PathLike | None) -> tuple[Vocabulary, list[Problem], bytes]:
    """The vocabulary for evidence at ``path``: the one given (a :class:`Vocabulary` or a file), else the
    folder's ``review.toml``, else the default. Problems in the file come back as :class:`Problem` rows."""
    if isinstance(vocabulary, Vocabulary):
        return vocabulary, [], b""
    file = Path(vocabulary) if vocabulary is not None else review_file(path)
    if file is None:
        return default_vocabulary(), [], b""
    try:
        vocab = load_vocabulary(file)
    except VocabularyError as exc:
        return default_vocabulary(), [Problem(str(file), None, key or None,
                                              "an unknown key" if msg.startswith("a known key") else "a value that "
                                              "does not fit", msg) for key, msg in exc.problems], b""
    except (ValueError, OSError) as exc:
        return default_vocabulary(), [Problem(str(file), None, None, str(exc).removeprefix(f"{file}: "),
                                              "a review.toml in TOML (see docs/methods.md section 18)")], b""
    return vocab, [], REVIEW_FILE.encode() + b"\0" + file.read_bytes()


def validate_path(path: str | os.PathLike, vocabulary: Vocabulary | str | os.PathLike | None = None) -> list[Problem]:
    """Every problem in an evidence folder or workbook (empty list when clean)."""
    return check_path(path, vocabulary)[0]


def check_path(path: str | os.PathLike, vocabulary: Vocabulary | str | os.PathLike | None = None,
               progress=None) -> tuple[list[Problem], list[Problem]]:
    """(problems, warnings) of an evidence folder or workbook: problems stop loading; warnings name values the
    contract allows but that are probably wrong (:func:`schema.plausibility_warnings`). The vocabulary: the one
    given, else the folder's ``review.toml``, else the default. ``progress``, when given, is called with a message
    as each of the ``VALIDATE_STEPS`` steps begins."""
    p = Path(path)
    if not p.exists():
        return [Problem(str(p), None, None, "no such file or folder", "an evidence folder or .xlsx workbook")], []
    vocab, vproblems, _ = resolve_vocabulary(p, vocabulary)
    if vproblems:
        return vproblems, []
    say = progress or (lambda _msg: None)
    typed, files, problems, _ = _read_and_validate(p, vocab, say)
    say("checking plausibility")
    warnings = [] if problems else schema.plausibility_warnings(typed, _files_of(files))
    return problems, warnings


def _read_and_validate(p: Path, vocabulary: Vocabulary, say, hashed: bytes | None = None
                       ) -> tuple[dict[str, pd.DataFrame], dict[str, str], list[Problem], str]:
    """Typed tables, file names, every problem and (``hashed``: the vocabulary's own bytes to add) the SHA-256 of
    the raw bytes of an existing path; the bytes are hashed and let go before validation, which needs the memory
    more."""
    say("reading the files")
    raw, files, problems, raw_bytes = _read_any(p)
    digest = hashlib.sha256()
    for chunk in raw_bytes if hashed is not None else ():
        digest.update(chunk)
    if hashed:
        digest.update(hashed)
    del raw_bytes
    typed, more = validate_tables(raw, files, vocabulary, progress=say)
    return typed, files, problems + more, digest.hexdigest() if hashed is not None else ""


def _files_of(files: dict[str, str]) -> dict[str, str]:
    out = dict(files)
    for table in schema.OPTIONAL_TABLES:
        out.setdefault(table, TABLE_FILES[table])
    return out


def load_evidence(path: str | os.PathLike | None = None,
                  vocabulary: Vocabulary | str | os.PathLike | None = None, progress=None) -> Evidence:
    """Load and validate evidence from a folder of CSV files or an Excel workbook.

    ``path=None`` loads the bundled evidence. ``vocabulary``: a :class:`Vocabulary` or a ``review.toml``; by
    default the folder's ``review.toml`` when it has one, else the package's vocabulary (docs/methods.md section
    18). Raises :class:`EvidenceError` listing every problem. ``progress``, when given, is called with a message as
    each of the ``VALIDATE_STEPS`` steps begins.
    """
    p = bundled_data_dir() if path is None else Path(path)
    if not p.exists():
        raise EvidenceError([Problem(str(p), None, None, "no such file or folder",
                                     "an evidence folder (studies.csv, arms.csv, contrasts.csv) or .xlsx workbook")])
    vocab, vproblems, vdigest = resolve_vocabulary(p, vocabulary)
    if vproblems:
        raise EvidenceError(vproblems)
    say = progress or (lambda _msg: None)
    typed, files, problems, data_hash = _read_and_validate(p, vocab, say, hashed=vdigest)
    if problems:
        raise EvidenceError(problems)
    say("checking plausibility")
    warnings = tuple(schema.plausibility_warnings(typed, _files_of(files)))
    return Evidence(warnings=warnings, studies=schema.with_rob_overall(typed["studies"], typed["rob"]), arms=typed["arms"], contrasts=typed["contrasts"], source=str(p),
                    data_hash=data_hash, files=files, rob=typed["rob"],
                    harms=typed["harms"], arm_details=typed["arm_details"], vocabulary=vocab)


# ------------------------------------------------------------------------------------------ wide sheets


def read_wide(path: str | os.PathLike, mapping: str | os.PathLike) -> pd.DataFrame:
    """Read a wide extraction sheet (one row per arm or trial, outcome/time columns side by side) into arms rows,
    through a mapping file (the language of :mod:`mt_evidence.evidence.wide`, docs/bring-your-own-review.md).

    Returns a frame in the arms format, each row with the sheet row and columns it came from (not yet validated:
    pass it through ``validate_tables``, which names problems by the sheet's own row and column). Problems with the
    mapping, the columns it names and the values it recodes raise :class:`EvidenceError`, all at once. The first
    mapping form (``[columns]`` of sheet columns, ``[defaults]`` of constants, ``[[measures]]`` whose numbers name
    columns) is still read. To write an evidence folder from a sheet, use ``wide.import_wide``
    (``mt-evidence import-wide``).
    """
    from .wide import read_wide_arms

    return read_wide_arms(path, mapping)


@dataclass(frozen=True)
class TemplateOutput:
    """What ``write_template`` wrote: the path, the files written, and existing files left as they were."""

    path: Path
    written: list[str]
    kept: list[str]


def write_template(path: str | os.PathLike) -> TemplateOutput:
    """Write an empty extraction template: an .xlsx workbook (sheets studies, arms, contrasts, rob and a
    ``dictionary`` sheet describing every column), or, for a path without a suffix, a folder of CSV files.

    Nothing is ever overwritten: an existing workbook is refused (``OutputRefused``); in an existing folder only
    the missing files are written and the others are listed in ``kept``, unchanged.
    """
    from . import atomic

    path = Path(path)
    dictionary = pd.DataFrame(
        [{"table": t, "column": c, "type": {"num": "number", "int": "whole number", "bool": "true/false",
                                            "str": "text"}[k], "required": "yes" if c in req else "no"}
         for t, (cols, req) in schema.TABLES.items() for c, k in cols.items()]
    )
    empty = {t: pd.DataFrame(columns=list(cols)) for t, (cols, _) in schema.TABLES.items()}
    if path.suffix.lower() in (".xlsx", ".xlsm"):
        import io as _io

        if path.exists() or path.is_symlink():
            raise atomic.OutputRefused(f"{path} exists; choose a new name (nothing was written, the file is "
                                        "unchanged)")
        buf = _io.BytesIO()
        with pd.ExcelWriter(buf) as xw:
            for t, df in empty.items():
                df.to_excel(xw, sheet_name=t, index=False)
            dictionary.to_excel(xw, sheet_name="dictionary", index=False)
        written, kept = atomic.write_new_files(path.parent, {path.name: buf.getvalue()})
        if kept:
            raise atomic.OutputRefused(f"{path} appeared while the template was written; it was left unchanged")
        return TemplateOutput(path, written, kept)
    if path.suffix and not path.is_dir():
        raise atomic.OutputRefused(f"{path}: a template is an .xlsx workbook or a folder (a name without a suffix); "
                                    "nothing was written")
    files = {TABLE_FILES[t]: df.to_csv(index=False).encode("utf-8") for t, df in empty.items()}
    files["dictionary.csv"] = dictionary.to_csv(index=False).encode("utf-8")
    written, kept = atomic.write_new_files(path, files)
    return TemplateOutput(path, written, kept)

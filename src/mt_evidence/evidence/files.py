"""Input files are read only when they are what they claim to be: a regular file (not a FIFO, device or
folder, which would hang or read forever), within a stated size, and for a workbook, a zip archive that does not
inflate past a stated size (a "zip bomb" of 1 MB can unpack to gigabytes). Each refusal says what was found and
what would be right."""

from __future__ import annotations

import os
import stat
import zipfile
from pathlib import Path

MB = 1024 * 1024
MAX_CSV_BYTES = 512 * MB  # an evidence table (1,000,000 arm rows are about 150 MB)
MAX_SETTINGS_BYTES = 1 * MB  # settings, claims and overrides files (TOML)
MAX_WORKBOOK_BYTES = 100 * MB  # an .xlsx as stored
MAX_WORKBOOK_UNZIPPED = 1024 * MB  # an .xlsx once unpacked
MAX_WORKBOOK_RATIO = 200  # unpacked / packed: ordinary workbooks stay far below


class InputRefused(ValueError):
    """An input file that is not read, with the reason."""


def file_problem(path: str | os.PathLike, max_bytes: int) -> str | None:
    """None when ``path`` is a regular file of at most ``max_bytes``; else what is wrong (without reading it)."""
    p = Path(path)
    try:
        st = p.stat()
    except FileNotFoundError:
        return "no such file"
    except OSError as exc:
        return f"a file that cannot be opened ({exc.strerror})"
    if stat.S_ISDIR(st.st_mode):
        return "a folder, not a file"
    if not stat.S_ISREG(st.st_mode):
        kind = "a named pipe (FIFO)" if stat.S_ISFIFO(st.st_mode) else \
            "a device" if stat.S_ISCHR(st.st_mode) or stat.S_ISBLK(st.st_mode) else "a special file"
        return f"{kind}, not a regular file"
    if st.st_size > max_bytes:
        return f"a file of {st.st_size / MB:,.0f} MB, larger than the limit of {max_bytes / MB:,.0f} MB"
    if not os.access(p, os.R_OK):
        return "a file this user may not read"
    return None


def read_bytes(path: str | os.PathLike, max_bytes: int, what: str) -> bytes:
    """The bytes of a regular file within ``max_bytes``, or ``InputRefused`` naming the file and the problem."""
    problem = file_problem(path, max_bytes)
    if problem:
        raise InputRefused(f"{path}: found {problem}; expected {what}")
    with open(path, "rb") as fh:
        data = fh.read(max_bytes + 1)
    if len(data) > max_bytes:  # grew while being read
        raise InputRefused(f"{path}: larger than the limit of {max_bytes / MB:,.0f} MB; expected {what}")
    return data


def workbook_problem(path: str | os.PathLike) -> str | None:
    """None when an .xlsx is a regular file whose unpacked size stays within the limits; else what is wrong."""
    problem = file_problem(path, MAX_WORKBOOK_BYTES)
    if problem:
        return problem
    try:
        with zipfile.ZipFile(path) as zf:
            infos = zf.infolist()
    except zipfile.BadZipFile:
        return "a file that is not an .xlsx workbook (not a zip archive; an old .xls or a protected workbook?)"
    except OSError as exc:
        return f"a file that cannot be opened ({exc.strerror})"
    unpacked = sum(i.file_size for i in infos)
    packed = max(1, os.path.getsize(path))
    if unpacked > MAX_WORKBOOK_UNZIPPED or unpacked / packed > MAX_WORKBOOK_RATIO:
        return (f"a workbook that unpacks to {unpacked / MB:,.0f} MB from {packed / MB:,.1f} MB (limits "
                f"{MAX_WORKBOOK_UNZIPPED / MB:,.0f} MB and {MAX_WORKBOOK_RATIO}x), which would exhaust memory")
    names = {i.filename for i in infos}
    if "EncryptedPackage" in names or "[Content_Types].xml" not in names:
        return "a protected or damaged workbook (save it without a password as .xlsx)"
    return None


__all__ = ["InputRefused", "file_problem", "read_bytes", "workbook_problem", "MAX_CSV_BYTES",
           "MAX_SETTINGS_BYTES"]

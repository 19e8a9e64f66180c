"""Atomic writes: a reader never sees a half-written file or a half-updated folder, and nothing is deleted
that the package did not write.

Two levels:

* ``write_bytes`` / ``write_text``: one file, through a temporary file in the same folder, then a rename.
* ``replace_owned_folder``: a whole output folder (``data/processed``, a report folder) written to a sibling
  staging folder and swapped in at once. The folder is *owned* by the command that writes it: a marker file
  (``.mt-evidence-owner``, JSON) names the writer and every file it wrote. A folder that holds anything else
  (a user's files, the raw evidence) is refused with a clear message; files that appear later in an owned
  folder are carried over into the new version, never deleted.

The swap uses Linux's ``renameat2(RENAME_EXCHANGE)`` where available (one atomic step: the folder always holds
the old or the new version); elsewhere two renames, with recovery of a left-over old version on the next run.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import errno
import json
import os
import shutil
import tempfile
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path

MARKER = ".mt-evidence-owner"
KEEP = frozenset({".gitkeep"})


class OutputRefused(ValueError):
    """An output location the package will not write to, with the reason and what would be right."""


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def _fsync_dir(path: Path) -> None:
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def write_bytes(path: str | os.PathLike, data: bytes) -> None:
    """Write ``data`` to ``path`` through a temporary file in the same folder, then rename."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.chmod(tmp, 0o666 & ~_umask())  # mkstemp makes 0600; give the file the usual permissions
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def write_text(path: str | os.PathLike, text: str) -> None:
    write_bytes(path, text.encode("utf-8"))


def write_new_files(folder: str | os.PathLike, files: Mapping[str, bytes]) -> tuple[list[str], list[str]]:
    """Write each file that does not exist yet; never overwrite. Returns (written, kept) names."""
    folder = Path(folder)
    if folder.exists() and not folder.is_dir():
        raise OutputRefused(f"{folder} is a file, not a folder; nothing was written")
    folder.mkdir(parents=True, exist_ok=True)
    written, kept = [], []
    for name, data in files.items():
        p = folder / name
        if p.exists() or p.is_symlink():
            kept.append(name)
            continue
        # O_EXCL: a file created between the check and the write is not overwritten either
        fd, tmp = tempfile.mkstemp(prefix=f".{name}.", suffix=".tmp", dir=folder)
        try:
            with os.fdopen(fd, "wb") as fh:
                fh.write(data)
            os.chmod(tmp, 0o666 & ~_umask())
            os.link(tmp, p)  # fails with EEXIST instead of replacing
            written.append(name)
        except FileExistsError:
            kept.append(name)
        finally:
            os.unlink(tmp)
    return written, kept


# ------------------------------------------------------------------------------------------ owned folders


def read_marker(folder: Path) -> dict | None:
    """The owner marker of ``folder`` (writer, files), or None when there is none or it is unreadable."""
    p = folder / MARKER
    if not p.is_file() or p.is_symlink():
        return None
    try:
        data = json.loads(p.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    if not isinstance(data, dict) or not isinstance(data.get("files"), list):
        return None
    return data


def _entries(folder: Path) -> list[str]:
    return sorted(e.name for e in os.scandir(folder))


def _inside(a: Path, b: Path) -> bool:
    """True when ``a`` is ``b`` or lies inside it."""
    return a == b or b in a.parents


def check_output_folder(target: str | os.PathLike, writer: str, *, protected: Iterable[str | os.PathLike] = (),
                        legacy: Callable[[Path, list[str]], bool] | None = None) -> Path:
    """Refuse an output folder that is not ours to replace; return its absolute path.

    Accepted: a folder that does not exist yet; an empty folder (or one holding only ``.gitkeep``); a folder
    whose marker says ``writer`` wrote it; a folder an earlier version wrote (``legacy`` decides from its
    entries). Refused, with the reason: a file; a symbolic link; a protected folder (the raw evidence), a folder
    inside one or one that contains one; any other folder with content.
    """
    raw = Path(target)
    target = Path(os.path.abspath(raw))
    if raw.is_symlink():
        raise OutputRefused(f"{raw} is a symbolic link; give the output folder's real path (nothing was written)")
    for p in protected:
        prot = Path(os.path.abspath(p))
        real_t, real_p = Path(os.path.realpath(target)), Path(os.path.realpath(prot))
        if _inside(real_t, real_p) or _inside(real_p, real_t):
            what = "is" if real_t == real_p else ("lies inside" if _inside(real_t, real_p) else "contains")
            raise OutputRefused(
                f"{raw} {what} the evidence folder {p}, which the package never writes to; choose another "
                "output folder with --out (nothing was written)")
    if not target.exists():
        return target
    if not target.is_dir():
        raise OutputRefused(f"{raw} is a file, not a folder: the output goes to a folder of its own; choose a "
                            "new or empty folder with --out (nothing was written, the file is unchanged)")
    entries = [e for e in _entries(target) if e not in KEEP]
    if not entries:
        return target
    marker = read_marker(target)
    if marker is not None:
        if marker.get("writer") == writer:
            return target
        raise OutputRefused(f"{raw} was written by `mt-evidence {marker.get('writer')}`, not by `mt-evidence "
                            f"{writer}`; choose another output folder (nothing was written)")
    if legacy is not None and legacy(target, entries):
        return target
    shown = ", ".join(entries[:5]) + (f" and {len(entries) - 5} more" if len(entries) > 5 else "")
    raise OutputRefused(
        f"{raw} already holds files that `mt-evidence {writer}` did not write ({shown}); it only replaces a "
        "folder it created. Choose a new or empty folder with --out, or move those files (nothing was written)")


_EXCHANGE: Callable[[Path, Path], bool] | None = None


def _exchange_function() -> Callable[[Path, Path], bool]:
    """``exchange(a, b)`` swaps two paths atomically (Linux renameat2 RENAME_EXCHANGE); False if unsupported."""
    global _EXCHANGE
    if _EXCHANGE is not None:
        return _EXCHANGE
    func = None
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
        func = libc.renameat2
        func.argtypes = [ctypes.c_int, ctypes.c_char_p, ctypes.c_int, ctypes.c_char_p, ctypes.c_uint]
        func.restype = ctypes.c_int
    except (OSError, AttributeError):
        func = None

    def exchange(a: Path, b: Path) -> bool:
        if func is None:
            return False
        at_fdcwd, rename_exchange = -100, 2
        if func(at_fdcwd, os.fsencode(a), at_fdcwd, os.fsencode(b), rename_exchange) == 0:
            return True
        err = ctypes.get_errno()
        if err in (errno.ENOSYS, errno.EINVAL, errno.EOPNOTSUPP):
            return False
        raise OSError(err, os.strerror(err), str(a))

    _EXCHANGE = exchange
    return exchange


def _remove_owned(folder: Path) -> None:
    """Delete one of our staging or old folders, its marker last: a kill midway leaves it recognisable."""
    for e in os.scandir(folder):
        if e.name == MARKER:
            continue
        if e.is_dir(follow_symlinks=False):
            shutil.rmtree(e.path, ignore_errors=True)
        else:
            try:
                os.unlink(e.path)
            except FileNotFoundError:
                pass
    try:
        os.unlink(folder / MARKER)
    except FileNotFoundError:
        pass
    os.rmdir(folder)


def _staging_prefix(target: Path, kind: str) -> str:
    return f".{target.name}.{kind}."


def recover(target: str | os.PathLike, writer: str) -> None:
    """Finish what a killed run left: restore the old version when the folder is missing, then remove our own
    staging and old folders (only those holding our marker)."""
    target = Path(os.path.abspath(target))
    parent = target.parent
    if not parent.is_dir():
        return
    leftovers = []
    for kind in ("old", "new"):
        for e in os.scandir(parent):
            if e.name.startswith(_staging_prefix(target, kind)) and e.is_dir(follow_symlinks=False):
                if not os.listdir(e.path):  # made, then killed before anything was written
                    os.rmdir(e.path)
                    continue
                m = read_marker(Path(e.path))
                if m is not None and m.get("writer") == writer:
                    leftovers.append((kind, Path(e.path), m))
    if not target.exists():
        complete = [p for kind, p, m in leftovers if kind == "old" or m.get("complete")]
        if complete:
            newest = max(complete, key=lambda p: p.stat().st_mtime)
            os.replace(newest, target)
            _fsync_dir(parent)
    for _kind, p, _m in leftovers:
        if p.exists():
            _remove_owned(p)


def _link_or_copy_tree(src: Path, dst: Path) -> None:
    """Carry an entry over into the new folder: hard links where possible (no bytes copied), else a copy."""
    def link(s, d):
        try:
            os.link(s, d)
        except OSError:
            shutil.copy2(s, d)

    if src.is_symlink():
        os.symlink(os.readlink(src), dst)
    elif src.is_dir():
        shutil.copytree(src, dst, symlinks=True, copy_function=link)
    else:
        link(src, dst)


def replace_owned_folder(target: str | os.PathLike, files: Mapping[str, bytes], writer: str, *,
                         protected: Iterable[str | os.PathLike] = (),
                         legacy: Callable[[Path, list[str]], bool] | None = None) -> Path:
    """Make ``target`` hold ``files`` (relative name -> bytes), all or nothing; return its path.

    The folder must be ours to replace (``check_output_folder``). The new version is written to a sibling
    staging folder with the owner marker; files in the old version that we did not write (named in no marker,
    e.g. a user's notes or another command's subfolder) are carried over; then the staging folder is swapped
    in. Any error before the swap leaves the old folder exactly as it was.
    """
    target = check_output_folder(target, writer, protected=protected, legacy=legacy)
    recover(target, writer)
    parent = target.parent
    parent.mkdir(parents=True, exist_ok=True)
    old_marker = read_marker(target) if target.exists() else None
    ours_before = set(old_marker["files"]) if old_marker else set()
    if target.exists() and old_marker is None:  # empty folder or an earlier version's output (legacy)
        ours_before = {e for e in _entries(target) if e not in KEEP}
    tmp = Path(tempfile.mkdtemp(prefix=_staging_prefix(target, "new"), dir=parent))
    os.chmod(tmp, 0o777 & ~_umask())
    marker = {"writer": writer, "files": sorted(files), "complete": False,
              "note": "written by mt_evidence: this folder is replaced as a whole by the command named here"}
    try:
        (tmp / MARKER).write_text(json.dumps(marker), encoding="utf-8")
        for name, data in files.items():
            p = tmp / name
            p.parent.mkdir(parents=True, exist_ok=True)
            with open(p, "wb") as fh:
                fh.write(data)
                fh.flush()
                os.fsync(fh.fileno())
            os.chmod(p, 0o666 & ~_umask())
        if target.exists():
            top_new = {Path(n).parts[0] for n in files}
            top_ours = {Path(n).parts[0] for n in ours_before}
            for name in _entries(target):
                if name == MARKER or name in top_ours:
                    continue
                if name in top_new:
                    raise OutputRefused(f"{target / name} was not written by `mt-evidence {writer}` but has the "
                                        "name of one of its outputs; move it away (nothing was written)")
                _link_or_copy_tree(target / name, tmp / name)
        marker["complete"] = True
        with open(tmp / MARKER, "w", encoding="utf-8") as fh:
            fh.write(json.dumps(marker, indent=1))
            fh.flush()
            os.fsync(fh.fileno())
        _fsync_dir(tmp)
        if target.exists():
            if _exchange_function()(tmp, target):
                _fsync_dir(parent)
                _remove_owned(tmp)  # now the old version
                return target
            old = Path(tempfile.mkdtemp(prefix=_staging_prefix(target, "old"), dir=parent))
            old.rmdir()
            os.replace(target, old)
            try:
                os.replace(tmp, target)
            except BaseException:
                os.replace(old, target)
                raise
            _fsync_dir(parent)
            _remove_owned(old)
        else:
            os.replace(tmp, target)
            _fsync_dir(parent)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return target

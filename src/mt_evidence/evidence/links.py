"""Source addresses: which values are web links, which are local references, and how a link is written.

A report is opened by clinicians, so an address from data becomes a link only when it is an ``http``/``https``
address with a host (or a ``doi:`` reference, written as its https://doi.org address). Everything else (other
schemes such as ``javascript:`` or ``file:``, addresses with control characters or spaces that browsers would
strip, relative paths) is shown as plain text or refused by the data contract. The same function decides in
the contract and when rendering, so a value that slips past one is still caught by the other.
"""

from __future__ import annotations

import re
from urllib.parse import quote, urlsplit

WEB_SCHEMES = ("http", "https")
_DOI = re.compile(r"^doi:\s*(10\.\d{4,9}/\S+)$", re.IGNORECASE)
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f\u200b-\u200f\u202a-\u202e\u2066-\u2069\ufeff]")
_BAD_CHARS = re.compile(r"[\x00-\x20\x7f-\x9f\\<>\"'`\u200b-\u200f\u202a-\u202e\u2066-\u2069\ufeff]")

WEB_LINK_EXPECTED = ("an address starting with http:// or https:// and a host name, without spaces or control "
                     "characters (e.g. https://pubmed.ncbi.nlm.nih.gov/12345678/), or doi:10.xxxx/...")
LOCAL_EXPECTED = (WEB_LINK_EXPECTED + "; or a local source: file: and an absolute path, or a path under data/, "
                  "without '..'")
#: review files a trial can be imported from (``mt-evidence revman``): allowed as a local source in ``sources``
IMPORTED_SUFFIXES = (".rm5",)
IMPORTED_EXPECTED = ("or the RevMan review the trial was imported from (file: and the absolute path of an .rm5 file, "
                     "or its path under data/)")


def safe_href(value) -> str | None:
    """The address to put in ``href`` for ``value``, or None when it must not be a link.

    >>> safe_href("https://pubmed.ncbi.nlm.nih.gov/1/")
    'https://pubmed.ncbi.nlm.nih.gov/1/'
    >>> safe_href("doi:10.1136/bmj.1") , safe_href("javascript:alert(1)//https://x.org")
    ('https://doi.org/10.1136/bmj.1', None)
    """
    if not isinstance(value, str):
        return None
    v = value.strip()
    m = _DOI.match(v)
    if m:
        return "https://doi.org/" + quote(m.group(1), safe="/:;()._-")
    if not v.lower().startswith(("http://", "https://")) or _BAD_CHARS.search(v):
        return None
    try:
        parts = urlsplit(v)
        host = parts.hostname
    except ValueError:
        return None
    if parts.scheme.lower() not in WEB_SCHEMES or not host or parts.username or parts.password:
        return None
    return v


def is_local_reference(value) -> bool:
    """A local source (an imported file): ``file:`` + absolute path, or a relative path under ``data/``; never a
    link, shown as text."""
    if not isinstance(value, str):
        return False
    v = value.strip()
    if _CONTROL.search(v) or "\\" in v:
        return False
    if v.lower().startswith("file:"):
        path = v[5:]
        if path.startswith("//"):
            path = path[2:]
            if not path.startswith("/"):
                return False  # file://host/...: a remote host
    elif v.startswith("data/"):
        path = v
    else:
        return False
    return bool(path) and ".." not in path.split("/")


def is_imported_review(value) -> bool:
    """A local reference (:func:`is_local_reference`) to a review file a trial was imported from (RevMan 5
    ``.rm5``): the one kind of local source a study's ``sources`` may hold; shown as text, never a link."""
    return is_local_reference(value) and value.strip().lower().endswith(IMPORTED_SUFFIXES)


def source_problem(value, *, local_ok: bool) -> str | None:
    """None when ``value`` is an acceptable source address; else what is wrong with it (for a Problem)."""
    if safe_href(value) is not None:
        return None
    if local_ok and is_local_reference(value):
        return None
    v = str(value)
    if v.strip().lower().startswith(("http://", "https://")):
        return "an address with spaces, control or quote characters, or no host"
    scheme = v.split(":", 1)[0].strip() if ":" in v else ""
    if scheme and re.fullmatch(r"[A-Za-z][A-Za-z0-9+.\-]*", scheme):
        return f"an address of the kind '{scheme}:', which is never a link in a report"
    if ".." in v.split("/"):
        return "a path with '..'"
    return "not a web address"


def split_sources(value) -> list[str]:
    """The parts of a ``sources`` cell (separated by ``;``)."""
    if not isinstance(value, str):
        return []
    return [p.strip() for p in value.split(";") if p.strip()]

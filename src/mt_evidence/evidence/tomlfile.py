"""Reading the package's TOML settings files, or a user's replacement for one."""

from __future__ import annotations

import tomllib
from importlib import resources
from pathlib import Path


def read_toml(path: str | Path | None, default: str) -> tuple[dict, str]:
    """Parse ``path`` (or the packaged ``data/<default>`` when ``path`` is None); return (spec, source name).

    A file that is not valid TOML raises ValueError naming the file and the parser's message.
    """
    if path is None:
        text = resources.files("mt_evidence").joinpath(f"data/{default}").read_text(encoding="utf-8")
        source = f"{default} (default)"
    else:
        from .files import MAX_SETTINGS_BYTES, read_bytes

        source = str(path)
        try:
            text = read_bytes(path, MAX_SETTINGS_BYTES, "a settings file (TOML text)").decode("utf-8")
        except UnicodeDecodeError:
            raise ValueError(f"{source}: not UTF-8 text; save the settings file as UTF-8") from None
    try:
        return tomllib.loads(text), source
    except tomllib.TOMLDecodeError as exc:
        raise ValueError(f"{source}: not valid TOML ({exc})") from None

"""Progress reporting for long computations (GOSH, permutation tests) without printing from ``stats`` otherwise.

``progress=False`` (the default everywhere) reports nothing; ``progress=True`` shows a rich progress bar (on the
terminal, or as a live display in a notebook); a callable is called as ``progress(done, total)`` after each chunk
of work, so a caller can drive its own display. rich is imported only when a bar is shown.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager

__all__ = ["progress_reporter"]


@contextmanager
def progress_reporter(progress: bool | Callable[[int, int], object] | None, total: int,
                      description: str) -> Iterator[Callable[[int], None]]:
    """A context manager yielding ``advance(n)``: report that ``n`` more of ``total`` units are done."""
    if progress is None or progress is False:
        yield lambda n: None
        return
    if callable(progress):
        done = 0

        def advance_callback(n: int) -> None:
            nonlocal done
            done += int(n)
            progress(done, total)

        yield advance_callback
        return
    if progress is not True:
        raise ValueError(f"progress must be True, False or a callable taking (done, total); got {progress!r}")
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, \
        TimeRemainingColumn

    with Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                  TimeRemainingColumn()) as bar:
        task = bar.add_task(description, total=total)
        yield lambda n: bar.advance(task, n)

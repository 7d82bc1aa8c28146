"""Progress bars for long work: a tqdm bar on stderr with count, rate and ETA.

Bars follow tqdm's convention: drawn when stderr is a terminal, not when it goes to a
pipe or a file (a log, a test's captured output), unless asked for. The environment
decides for every bar of a process:

``ELBOLAB_PROGRESS=1``
    Draw bars even when stderr is not a terminal (a batch job's log that should record
    how fast it ran).
``ELBOLAB_NO_PROGRESS=1``
    Draw none, even on a terminal. It wins over ``ELBOLAB_PROGRESS``.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Iterable

from tqdm import tqdm

__all__ = ["progress", "close_all"]


def _disabled_by_environment() -> bool | None:
    """True, False, or None for tqdm's own rule (off when the stream is not a terminal)."""
    if os.environ.get("ELBOLAB_NO_PROGRESS", "") == "1":
        return True
    if os.environ.get("ELBOLAB_PROGRESS", "") == "1":
        return False
    return None


def close_all() -> None:
    """Close every open bar, so that a message printed next starts on a line of its own."""
    for bar in list(getattr(tqdm, "_instances", ())):
        bar.close()


def progress(
    iterable: Iterable | None = None,
    total: int | float | None = None,
    desc: str = "",
    unit: str = "it",
    disable: bool | None = None,
    **kwargs,
) -> tqdm:
    """A tqdm progress bar (use as an iterator, or as a context manager with ``update``).

    Parameters
    ----------
    iterable : iterable, optional
        Wrapped and iterated over; its ``len`` is the total unless ``total`` is given.
    total : int, optional
        Expected number of steps (needed for the ETA when ``iterable`` has no len).
    desc : str
        Label shown before the bar.
    unit : str
        Name of one step ("it", "epoch", "doc", ...).
    disable : bool, optional
        Hide the bar; default: as the environment says (see the module docstring).
    **kwargs
        Passed to ``tqdm`` (e.g. ``leave=False``, ``position``).
    """
    if disable is None:
        disable = _disabled_by_environment()
    kwargs.setdefault("file", sys.stderr)
    kwargs.setdefault("dynamic_ncols", True)
    kwargs.setdefault("mininterval", 0.5)
    return tqdm(iterable, total=total, desc=desc, unit=unit, disable=disable, **kwargs)

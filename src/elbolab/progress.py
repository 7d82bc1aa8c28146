"""Progress bars for long work: a tqdm bar on stderr with count, rate and ETA.

Set ``ELBOLAB_NO_PROGRESS=1`` to silence every bar (CI logs, benchmarks). Unlike tqdm's
own ``disable=None`` (off when stderr is not a terminal), bars stay on by default, so
that a job whose stderr goes to a log file still records how fast it ran.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Iterable

from tqdm import tqdm

__all__ = ["progress"]


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
        Hide the bar; default: hidden only when ``ELBOLAB_NO_PROGRESS=1``.
    **kwargs
        Passed to ``tqdm`` (e.g. ``leave=False``, ``position``).
    """
    if disable is None:
        disable = os.environ.get("ELBOLAB_NO_PROGRESS", "") == "1"
    kwargs.setdefault("file", sys.stderr)
    kwargs.setdefault("dynamic_ncols", True)
    kwargs.setdefault("mininterval", 0.5)
    return tqdm(iterable, total=total, desc=desc, unit=unit, disable=disable, **kwargs)

"""Where a study's units of work run, checkpointed in its run directory.

A *unit* is a function of no arguments (restart r of an LDA fit, one sweep point, one
VAE) whose result depends only on its own settings and seeds. :func:`cached_map` loads
the units that the run directory holds a checkpoint for and hands the others to the
dispatcher of the study run in progress (:mod:`elbolab.cluster`), checkpointing each
result the moment it arrives, so that a killed run loses at most the units in flight
and ``--resume`` continues from the rest. :func:`cached` does the same for one step that
runs in this process.

The dispatcher is the one :func:`dispatching` holds for the block it encloses:
:func:`elbolab.studies.run_study` sets the one of ``--scheduler`` around a study's
``run``, so that the studies need not pass it down to every place that maps units.
Elsewhere, and inside a unit that runs on a cluster worker, units run serially in this
process.

The run directory (:class:`elbolab.report.RunDir`) only stores: a checkpoint is the
record ``{"value": result, "seconds": wall time}`` pickled under the unit's key.
"""

from __future__ import annotations

import contextlib
import contextvars
from collections.abc import Callable, Iterator, Mapping
from typing import TYPE_CHECKING, Any

from ..cluster import Serial
from ..progress import progress

if TYPE_CHECKING:
    from ..cluster import Auto, DaskDispatcher
    from ..report import RunDir

    Dispatcher = Serial | DaskDispatcher | Auto

__all__ = ["cached", "cached_map", "dispatching"]

_DISPATCHER: contextvars.ContextVar = contextvars.ContextVar("elbolab_dispatcher", default=None)


@contextlib.contextmanager
def dispatching(dispatcher: Dispatcher) -> Iterator[Dispatcher]:
    """Within the block, :func:`cached_map` runs its units on ``dispatcher``."""
    token = _DISPATCHER.set(dispatcher)
    try:
        yield dispatcher
    finally:
        _DISPATCHER.reset(token)


def cached_map(
    rundir: RunDir,
    units: Mapping[str, Callable[[], Any]],
    timings: dict | None = None,
    desc: str = "units",
) -> dict[str, Any]:
    """Every unit's result, each computed once and checkpointed in ``rundir``.

    ``units`` maps checkpoint keys to functions of no arguments whose results depend
    only on their own settings and seeds. Units with a checkpoint are loaded; the others
    run on the current dispatcher (see :func:`dispatching`; on a cluster, at once) and
    each result is checkpointed the moment it arrives. Returns key -> value in the order
    of ``units``, with each unit's wall time (from the run that computed it) in
    ``timings[KEY_seconds]``, also in that order.
    """
    return _cached_map(rundir, units, timings, desc, _DISPATCHER.get() or Serial())


def cached(
    rundir: RunDir, key: str, compute: Callable[[], Any], timings: dict | None = None
) -> Any:
    """``compute()`` once, in this process: checkpointed in ``rundir`` under ``key`` and
    reused on resume; its wall time goes to ``timings[KEY_seconds]``. For independent
    units use :func:`cached_map`."""
    return _cached_map(rundir, {key: compute}, timings, "units", Serial())[key]


def _cached_map(rundir, units, timings, desc, dispatcher) -> dict[str, Any]:
    done = {key: rundir.load_checkpoint(key) for key in units}
    missing = {key: fn for key, fn in units.items() if done[key] is None}
    if missing:
        with progress(
            total=len(missing),
            desc=desc,
            unit="unit",
            disable=True if len(missing) < 2 else None,
        ) as bar:
            for key, value, seconds in dispatcher.map(missing):
                done[key] = {"value": value, "seconds": seconds}
                rundir.save_checkpoint(key, done[key])
                bar.update(1)
    if timings is not None:
        timings.update({f"{key}_seconds": done[key]["seconds"] for key in units})
    return {key: done[key]["value"] for key in units}

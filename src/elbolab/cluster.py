"""Where a study's independent units of work run: in this process, or on a Dask cluster.

A *unit* is a function of no arguments (restart r of an LDA fit, one sweep point, one
VAE) whose result depends only on its own settings and seeds, never on which units ran
before it or beside it. :func:`elbolab.studies.runner.cached_map` hands the units a run
still lacks to a dispatcher and checkpoints each result as soon as it arrives, so a
killed run loses at most the units in flight, and a serial run and a cluster run with
the same seeds give the same results.

Schedulers (the CLI's ``--scheduler``):

``auto`` (the CLI's default)
    Serial where a local cluster cannot pay for itself, a local cluster where it can
    (:class:`Auto`): serial on a machine with fewer than ``AUTO_MIN_CORES`` cores, where
    every unit already uses all cores through numba's and torch's threads; otherwise
    the first unit of a batch runs here, timed, and the rest go to a local cluster (one
    worker per core) if they would take at least ``AUTO_MIN_SECONDS`` in series by that
    estimate. Once started, the cluster serves every later batch of two or more units.
``serial``
    Every unit in this process, one after the other (the library's default: a script
    that starts worker processes needs an ``if __name__ == "__main__":`` guard).
``local`` or ``local:N``
    A ``distributed.LocalCluster`` of N worker processes with one thread each; N
    defaults to the machine's cores. It starts at the first unit a run needs, so a run
    resumed after its last unit never starts one.
``tcp://HOST:PORT``
    An existing Dask cluster (``dask scheduler`` + ``dask worker``). Its workers need
    elbolab installed and, for the checkpoints a long unit writes while it runs, the run
    directory at the same path (a shared file system).

If a worker dies, Dask reruns its units on the others (up to
``distributed.scheduler.allowed-failures`` times); a rerun LDA fit or VAE continues from
the checkpoint its first attempt wrote.

Local workers run one thread each (numba and BLAS included), so ``local:N`` uses N
cores. A unit whose numba kernel reduces in parallel (the landscape study's full-mode
objective) may then differ from its serial run in the last bits, where the sum runs in
another order (about 1e-15 relative), and so may a torch unit whose reductions split
over threads. CAVI for LDA does not depend on thread counts: the ``lda`` study on a
cluster equals its serial run bit for bit (tested).
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Iterator, Mapping
from typing import Any

from .errors import ConfigError

__all__ = ["Auto", "Serial", "DaskDispatcher", "make_dispatcher"]

# The ``auto`` rule (see the module docstring); benchmarks/cluster_restart_sweep.py
# measures what it rests on. On 2 cores a local cluster was slower than serial for every
# unit length and count measured: its workers take seconds to start and import, and a
# unit on one thread is slower than the same unit on all cores.
AUTO_MIN_CORES = 4
AUTO_MIN_SECONDS = 30.0


# Environment of local workers: bars from several workers would garble one terminal, so
# the client shows one bar over the units. Dask applies this inside the spawned worker,
# after the worker has re-imported the parent's ``__main__`` (the ``elbolab`` script,
# which imports numba, torch and numpy), so it only suits what is read at run time.
# Thread counts are not: BLAS gets one thread from Dask's own default
# ``distributed.nanny.pre-spawn-environ`` (OMP/MKL/OPENBLAS_NUM_THREADS=1, set before
# the spawn), and numba and torch from :func:`_run_unit`. Setting NUMBA_NUM_THREADS here
# crashed workers: numba's config had read the core count at import; a kernel loaded
# from numba's cache started the thread pool with it, and the next kernel *compiled* in
# the worker re-read the environment, found 1, and raised "Cannot set
# NUMBA_NUM_THREADS to a different value once the threads have been launched".
_WORKER_ENV = {"ELBOLAB_NO_PROGRESS": "1"}


def _run_unit(fn: Callable[[], Any], threads: int | None = None) -> tuple[Any, float]:
    """Run one unit on ``threads`` numba and torch threads (None: as they are)."""
    if threads is not None:
        import numba
        import torch

        numba.set_num_threads(min(threads, numba.config.NUMBA_NUM_THREADS))
        torch.set_num_threads(threads)
    return _timed(fn)


def _timed(fn: Callable[[], Any]) -> tuple[Any, float]:
    started = time.perf_counter()
    value = fn()
    return value, time.perf_counter() - started


class Serial:
    """Run units one after the other in this process."""

    def __init__(self, description: str = "serial (this process)"):
        self.description = description

    def map(self, units: Mapping[str, Callable[[], Any]]) -> Iterator[tuple[str, Any, float]]:
        """Yield ``(key, value, seconds)`` for every unit, in the given order."""
        for key, fn in units.items():
            value, seconds = _timed(fn)
            yield key, value, seconds

    def close(self) -> None:
        pass


class DaskDispatcher:
    """Run units on a Dask cluster: a new local one, or an existing one at ``address``.

    Parameters
    ----------
    address : str, optional
        ``tcp://HOST:PORT`` of a running scheduler; None starts a ``LocalCluster``.
    n_workers : int, optional
        Worker processes of the local cluster (default: the machine's cores).

    The cluster is started (or connected to) at the first :meth:`map` call and closed by
    :meth:`close`; use the dispatcher as a context manager.
    """

    def __init__(self, address: str | None = None, n_workers: int | None = None):
        self.address = address
        self.n_workers = n_workers or usable_cores()
        self._client = None
        self._cluster = None

    @property
    def description(self) -> str:
        if self.address:
            return f"Dask cluster at {self.address}"
        return f"local Dask cluster, {self.n_workers} workers x 1 thread"

    @property
    def client(self):
        if self._client is None:
            from distributed import Client, LocalCluster

            if self.address:
                try:
                    self._client = Client(self.address, timeout="10s")
                except OSError as err:
                    raise ConfigError(
                        f"cannot reach a Dask scheduler at {self.address} ({err})"
                    ) from None
            else:
                self._cluster = LocalCluster(
                    n_workers=self.n_workers,
                    threads_per_worker=1,
                    processes=True,
                    dashboard_address=None,
                    env=_WORKER_ENV,
                )
                self._client = Client(self._cluster)
        return self._client

    def map(self, units: Mapping[str, Callable[[], Any]]) -> Iterator[tuple[str, Any, float]]:
        """Submit every unit at once; yield ``(key, value, seconds)`` as they finish.

        A unit that raises re-raises its exception here (the others are cancelled).
        """
        if not units:
            return
        from distributed import as_completed

        client = self.client
        # pure=False: a unit's key must not collide with an identical-looking earlier one.
        threads = None if self.address else 1  # local workers: one thread each
        futures = {
            client.submit(_run_unit, fn, threads, pure=False): key for key, fn in units.items()
        }
        try:
            for future in as_completed(futures):
                value, seconds = future.result()
                yield futures[future], value, seconds
        finally:
            client.cancel(list(futures))

    def close(self) -> None:
        if self._client is not None:
            self._client.close()
            self._client = None
        if self._cluster is not None:
            self._cluster.close()
            self._cluster = None

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


def usable_cores() -> int:
    """Cores this process may run on (its CPU affinity where the platform tells)."""
    if hasattr(os, "sched_getaffinity"):
        return len(os.sched_getaffinity(0))
    return os.cpu_count() or 1


class Auto:
    """Serial where a local cluster cannot pay for itself, a local cluster where it can.

    Parameters
    ----------
    cores : int, optional
        Cores to plan for (default: those this process may use).

    See the module docstring for the rule; :attr:`description` says which way it went.
    """

    def __init__(self, cores: int | None = None):
        self.cores = cores or usable_cores()
        self._serial = Serial()
        self._cluster: DaskDispatcher | None = None

    @property
    def description(self) -> str:
        if self._cluster is not None:
            return f"auto: {self._cluster.description}"
        if self.cores < AUTO_MIN_CORES:
            return f"auto: serial ({self.cores} cores, fewer than {AUTO_MIN_CORES})"
        return "auto: serial (no batch of units long enough for a local cluster)"

    def map(self, units: Mapping[str, Callable[[], Any]]) -> Iterator[tuple[str, Any, float]]:
        """Yield ``(key, value, seconds)`` for every unit (see the class docstring)."""
        if self._cluster is not None and len(units) >= 2:
            yield from self._cluster.map(units)
            return
        if self.cores < AUTO_MIN_CORES or len(units) < 2:
            yield from self._serial.map(units)
            return
        (first_key, first), *rest = units.items()
        value, seconds = _timed(first)
        yield first_key, value, seconds
        rest = dict(rest)
        if seconds * len(rest) >= AUTO_MIN_SECONDS:
            self._cluster = DaskDispatcher(n_workers=self.cores)
            yield from self._cluster.map(rest)
        else:
            yield from self._serial.map(rest)

    def close(self) -> None:
        if self._cluster is not None:
            self._cluster.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


def make_dispatcher(scheduler: str | None, on_gpu: bool = False) -> Auto | Serial | DaskDispatcher:
    """The dispatcher for a ``--scheduler`` value (see the module docstring).

    ``on_gpu``: the units train on this machine's GPU. Local workers would all share
    that one GPU (and each hold a CUDA context), so ``auto``, ``local`` and ``local:N``
    run the units one after another in this process; ``tcp://`` clusters are kept, each
    of their workers using its own GPU.
    """
    if scheduler in (None, "", "serial"):
        return Serial()
    if on_gpu and (scheduler in ("auto", "local") or scheduler.startswith("local:")):
        make_dispatcher(scheduler)  # still refuse a malformed value
        return Serial("serial: the units share this machine's GPU")
    if scheduler == "auto":
        return Auto()
    if scheduler == "local":
        return DaskDispatcher()
    if scheduler.startswith("local:"):
        count = scheduler.partition(":")[2]
        if not count.isdigit() or int(count) < 1:
            raise ConfigError(f"--scheduler local:N needs N >= 1 workers, got {scheduler!r}")
        return DaskDispatcher(n_workers=int(count))
    if scheduler.startswith("tcp://"):
        host, _, port = scheduler[len("tcp://") :].rpartition(":")
        if not host or not port.isdigit():
            raise ConfigError(f"--scheduler expects tcp://HOST:PORT, got {scheduler!r}")
        return DaskDispatcher(address=scheduler)
    raise ConfigError(
        f"unknown scheduler {scheduler!r}; use auto, serial, local, local:N or tcp://HOST:PORT"
    )

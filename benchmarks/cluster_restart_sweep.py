"""Where a local Dask cluster pays for itself: an LDA restart sweep, serial against
local clusters and ``auto``, over unit lengths.

Usage::

    python benchmarks/cluster_restart_sweep.py [--data ROOT] [--restarts 8]
                                               [--iters 5 20 50] [--repeats 3] [--json OUT]

The task is the ``lda`` study on the AP corpus (90% of its documents for training) with
K = 10 and ``--restarts`` restarts, each run for exactly ``--iters`` CAVI iterations
(tol = 0, so every run does the same work; several values give several unit lengths),
followed by document completion on the held-out 10%. Each restart is one unit of work
(:mod:`elbolab.cluster`). The same study is run, in this one process, with

* ``serial``: every restart in this process, one after the other (what a user without a
  cluster gets; numba's E-step already uses every core here),
* ``local:1`` and ``local:2``: a new ``distributed.LocalCluster`` with 1 or 2 worker
  processes of one Dask thread each,
* ``auto``: the default, which chooses between the two (:mod:`elbolab.cluster`).

The ratio serial / local:2 above 1 means the cluster paid for itself at that unit length:
the crossover of the ``auto`` rule.

Times are wall-clock seconds of ``run_study`` end to end, cluster start-up, data loading
and the report included (the user's view), median of ``--repeats``; every run's time is
printed. All runs must give the same metrics (checked, bit for bit). Progress bars off.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import platform
import statistics
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("ELBOLAB_NO_PROGRESS", "1")

from elbolab import studies  # noqa: E402
from elbolab.studies import lda  # noqa: E402

SCHEDULERS = ("serial", "local:1", "local:2", "auto")


def results(out: Path) -> dict:
    metrics = json.loads((out / "metrics.json").read_text())
    for r in metrics["per_k"].values():
        r.pop("fit_seconds")
    return {k: v for k, v in metrics.items() if k not in ("timings", "scheduler")}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data", type=Path, default=None)
    parser.add_argument("--restarts", type=int, default=8)
    parser.add_argument("--iters", type=int, nargs="+", default=[5, 20, 50])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--json", type=Path, default=None)
    args = parser.parse_args()

    times = {(it, s): [] for it in args.iters for s in SCHEDULERS}
    described = {}
    with tempfile.TemporaryDirectory() as tmp:
        for iters in args.iters:
            cfg = dataclasses.replace(
                lda.PRESETS["default"],
                topics=(10,),
                restarts=args.restarts,
                max_iter=iters,
                tol=0.0,
            )
            reference = None
            for rep in range(args.repeats):
                for scheduler in SCHEDULERS:  # interleaved, so drift hits all alike
                    out = Path(tmp) / f"{iters}_{scheduler.replace(':', '')}_{rep}"
                    started = time.perf_counter()
                    metrics = studies.run_study(
                        lda, cfg, out, data_root=args.data, scheduler=scheduler
                    )
                    times[iters, scheduler].append(time.perf_counter() - started)
                    described[iters, scheduler] = metrics["scheduler"]
                    got = results(out)
                    reference = reference or got
                    if got != reference:
                        print(f"MISMATCH: {scheduler}, {iters} iterations, run {rep}")
                        return 1
                    print(
                        f"  {iters:3d} iters, run {rep + 1}: {scheduler:8s} "
                        f"{times[iters, scheduler][-1]:7.2f} s",
                        flush=True,
                    )

    med = {key: statistics.median(t) for key, t in times.items()}
    print(
        f"\nLDA restart sweep on AP: K=10, {args.restarts} restarts, {os.cpu_count()} cores, "
        f"median of {args.repeats} (seconds; every run of a row gave the same metrics)"
    )
    print(f"  {'iters':>5s} " + " ".join(f"{s:>8s}" for s in SCHEDULERS) + "  serial/local:2")
    for iters in args.iters:
        row = " ".join(f"{med[iters, s]:8.2f}" for s in SCHEDULERS)
        print(f"  {iters:5d} {row}  {med[iters, 'serial'] / med[iters, 'local:2']:14.2f}x")
    for iters in args.iters:
        print(f"  auto at {iters} iterations chose: {described[iters, 'auto']}")
    if args.json:
        args.json.write_text(
            json.dumps(
                {
                    "machine": platform.platform(),
                    "cores": os.cpu_count(),
                    "restarts": args.restarts,
                    "seconds": {f"{it} {s}": t for (it, s), t in times.items()},
                    "median": {f"{it} {s}": t for (it, s), t in med.items()},
                },
                indent=2,
            )
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())

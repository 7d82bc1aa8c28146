"""Speed-up of an LDA restart sweep on a local Dask cluster: 1 worker against 2.

Usage::

    python benchmarks/cluster_restart_sweep.py [--data ROOT] [--restarts 8] [--iters 50]
                                               [--repeats 3] [--json OUT]

The task is the ``lda`` study on the AP corpus (90% of its documents for training) with
K = 10 and ``--restarts`` restarts, each run for exactly ``--iters`` CAVI iterations
(tol = 0, so every run does the same work), followed by document completion on the
held-out 10%. Each restart is one unit of work (:mod:`elbolab.cluster`). The same study
is run, in this one process, with

* ``serial``: every restart in this process, one after the other (what a user without a
  cluster gets; numba's E-step already uses every core here),
* ``local:1`` and ``local:2``: a new ``distributed.LocalCluster`` with 1 or 2 worker
  processes of one Dask thread each.

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

SCHEDULERS = ("serial", "local:1", "local:2")


def results(out: Path) -> dict:
    metrics = json.loads((out / "metrics.json").read_text())
    for r in metrics["per_k"].values():
        r.pop("fit_seconds")
    return {k: v for k, v in metrics.items() if k not in ("timings", "scheduler")}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data", type=Path, default=None)
    parser.add_argument("--restarts", type=int, default=8)
    parser.add_argument("--iters", type=int, default=50)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--json", type=Path, default=None)
    args = parser.parse_args()

    cfg = dataclasses.replace(
        lda.PRESETS["default"],
        topics=(10,),
        restarts=args.restarts,
        max_iter=args.iters,
        tol=0.0,
    )
    times = {s: [] for s in SCHEDULERS}
    reference = None
    with tempfile.TemporaryDirectory() as tmp:
        for rep in range(args.repeats):
            for scheduler in SCHEDULERS:  # interleaved, so drift hits all alike
                out = Path(tmp) / f"{scheduler.replace(':', '')}_{rep}"
                started = time.perf_counter()
                studies.run_study(lda, cfg, out, data_root=args.data, scheduler=scheduler)
                times[scheduler].append(time.perf_counter() - started)
                got = results(out)
                reference = reference or got
                if got != reference:
                    print(f"MISMATCH: {scheduler} run {rep} differs from the first run")
                    return 1
                print(f"  run {rep + 1}: {scheduler:8s} {times[scheduler][-1]:7.2f} s", flush=True)

    med = {s: statistics.median(t) for s, t in times.items()}
    print(
        f"\nLDA restart sweep on AP: K=10, {args.restarts} restarts x {args.iters} iterations, "
        f"{os.cpu_count()} cores, median of {args.repeats}"
    )
    for s in SCHEDULERS:
        print(f"  {s:8s} {med[s]:7.2f} s   (runs: {', '.join(f'{t:.2f}' for t in times[s])})")
    print(f"  speed-up 2 workers vs 1 worker: {med['local:1'] / med['local:2']:.2f}x")
    print(f"  speed-up 2 workers vs serial:   {med['serial'] / med['local:2']:.2f}x")
    print("  results identical across all runs: yes")
    if args.json:
        args.json.write_text(
            json.dumps(
                {
                    "machine": platform.platform(),
                    "cores": os.cpu_count(),
                    "restarts": args.restarts,
                    "iters": args.iters,
                    "seconds": times,
                    "median": med,
                },
                indent=2,
            )
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())

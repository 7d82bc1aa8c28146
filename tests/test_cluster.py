"""Independent units on Dask: a LocalCluster, a scheduler and workers started as
separate processes on 127.0.0.1, and a worker killed mid-task."""

import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
from distributed import Client, LocalCluster

from elbolab import cluster, studies
from elbolab.cluster import Auto, DaskDispatcher, Serial, make_dispatcher
from elbolab.errors import ConfigError
from elbolab.report import RunDir
from elbolab.studies import lda
from elbolab.studies.runner import cached_map, dispatching


def _results(out: Path) -> dict:
    metrics = json.loads((out / "metrics.json").read_text())
    for result in metrics["per_k"].values():
        result.pop("fit_seconds")  # a timing
    return {k: v for k, v in metrics.items() if k not in ("timings", "scheduler")}


# A smoke preset with more restarts, so that both workers get several.
CFG = lda.PRESETS["smoke"].__class__(**{**vars(lda.PRESETS["smoke"]), "restarts": 4})


@pytest.fixture(scope="module")
def serial_run(tmp_path_factory, real_data):
    out = tmp_path_factory.mktemp("serial") / "run"
    studies.run_study(lda, CFG, out, data_root=real_data("ap"), scheduler="serial")
    return _results(out)


@pytest.mark.parametrize(
    "text, kind",
    [
        (None, Serial),
        ("auto", Auto),
        ("serial", Serial),
        ("local", DaskDispatcher),
        ("local:3", DaskDispatcher),
    ],
)
def test_scheduler_names(text, kind):
    assert isinstance(make_dispatcher(text), kind)
    assert make_dispatcher("local:3").n_workers == 3
    assert make_dispatcher("tcp://127.0.0.1:8786").address == "tcp://127.0.0.1:8786"


@pytest.mark.parametrize(
    "text", ["local:0", "local:x", "tcp://nohost", "udp://a:1", "lcoal", "auto:2"]
)
def test_bad_scheduler_names_are_refused(text):
    with pytest.raises(ConfigError, match="scheduler|workers"):
        make_dispatcher(text)


def _sleepers(count: int, seconds: float) -> dict:
    def unit(i):
        return lambda: (time.sleep(seconds), os.getpid(), i)[1:]

    return {f"u{i}": unit(i) for i in range(count)}


def _pids(results) -> set:
    return {value[0] for _, value, _ in results}


def test_auto_stays_in_this_process_on_few_cores():
    auto = Auto(cores=cluster.AUTO_MIN_CORES - 1)
    results = list(auto.map(_sleepers(3, 0.0)))
    assert _pids(results) == {os.getpid()} and [v[1] for _, v, _ in results] == [0, 1, 2]
    assert "serial" in auto.description and "cores" in auto.description
    auto.close()


def test_auto_stays_in_this_process_for_short_units(monkeypatch):
    monkeypatch.setattr(cluster, "AUTO_MIN_CORES", 2)
    monkeypatch.setattr(cluster, "AUTO_MIN_SECONDS", 5.0)
    auto = Auto(cores=2)
    assert _pids(auto.map(_sleepers(3, 0.05))) == {os.getpid()}  # 2 x 0.05 s < 5 s
    assert _pids(auto.map({"one": lambda: (os.getpid(), 0)})) == {os.getpid()}
    assert "serial" in auto.description
    auto.close()


def test_auto_sends_long_batches_to_a_local_cluster(monkeypatch):
    monkeypatch.setattr(cluster, "AUTO_MIN_CORES", 2)
    monkeypatch.setattr(cluster, "AUTO_MIN_SECONDS", 0.5)
    with Auto(cores=2) as auto:
        results = list(auto.map(_sleepers(3, 0.3)))  # the first unit: 2 x 0.3 s >= 0.5 s
        assert sorted(v[1] for _, v, _ in results) == [0, 1, 2]
        assert results[0][1][0] == os.getpid()  # the timed first unit ran here
        assert os.getpid() not in _pids(results[1:])
        assert "local Dask cluster, 2 workers" in auto.description
        # The cluster, once started, takes later batches of two or more at once.
        assert os.getpid() not in _pids(auto.map(_sleepers(2, 0.0)))


def test_local_cluster_gives_the_serial_results_bit_for_bit(serial_run, tmp_path, real_data):
    out = tmp_path / "run"
    studies.run_study(lda, CFG, out, data_root=real_data("ap"), scheduler="local:2")
    assert json.loads((out / "metrics.json").read_text())["scheduler"].startswith("local Dask")
    assert _results(out) == serial_run


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


# Slow (about 25 s: a scheduler and two worker processes start); the LocalCluster test
# checks the same bit-for-bit equality in the default run.
@pytest.mark.slow
def test_scheduler_and_workers_as_separate_processes(serial_run, tmp_path, real_data):
    port = _free_port()
    address = f"tcp://127.0.0.1:{port}"
    env = {**os.environ, "ELBOLAB_NO_PROGRESS": "1"}
    cli = [sys.executable, "-m"]
    procs = [
        subprocess.Popen(
            [*cli, "distributed.cli.dask_scheduler", "--host", "127.0.0.1", "--port", str(port),
             "--dashboard-address", ":0", "--no-show"],
            env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )
    ]  # fmt: skip
    try:
        time.sleep(1.0)
        procs.append(
            subprocess.Popen(
                [*cli, "distributed.cli.dask_worker", address, "--nworkers", "2", "--nthreads",
                 "1", "--no-dashboard"],
                env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
            )
        )  # fmt: skip
        with Client(address, timeout="30s") as client:
            client.wait_for_workers(2, timeout=60)
        out = tmp_path / "run"
        smoke = ["--preset", "smoke", "--set", f"restarts={CFG.restarts}", "--out", str(out)]
        subprocess.run(
            [*cli, "elbolab.cli", "run", "lda", *smoke, "--scheduler", address],
            env={**env, "ELBOLAB_DATA": real_data("ap")},
            check=True,
            capture_output=True,
        )
        assert json.loads((out / "metrics.json").read_text())["scheduler"] == (
            f"Dask cluster at {address}"
        )
        assert _results(out) == serial_run
    finally:
        for proc in reversed(procs):
            proc.terminate()
        for proc in procs:
            proc.wait(timeout=30)


def test_an_unreachable_scheduler_is_a_clear_error(tmp_path, real_data):
    with pytest.raises(ConfigError, match="cannot reach a Dask scheduler"):
        studies.run_study(
            lda, CFG, tmp_path / "run", data_root=real_data("ap"),
            scheduler=f"tcp://127.0.0.1:{_free_port()}",
        )  # fmt: skip
    assert not (tmp_path / "run").exists()


def test_a_worker_killed_mid_task_loses_no_result(tmp_path):
    def unit(i):
        return lambda: (time.sleep(1.5), i * i)[1]

    with LocalCluster(n_workers=2, threads_per_worker=1, dashboard_address=None) as cluster:
        dispatcher = DaskDispatcher(address=cluster.scheduler_address)
        with dispatcher, Client(cluster) as watcher:
            rundir = RunDir(tmp_path / "run")
            pids = watcher.run(os.getpid)
            victim = {}

            def kill_a_busy_worker():
                # Wait until a worker holds a unit, then SIGKILL its process.
                deadline = time.monotonic() + 30
                while time.monotonic() < deadline:
                    busy = [w for w, tasks in watcher.processing().items() if tasks]
                    if busy:
                        time.sleep(0.3)  # mid-task
                        victim["address"] = busy[0]
                        os.kill(pids[busy[0]], signal.SIGKILL)
                        return
                    time.sleep(0.05)

            import threading

            killer = threading.Thread(target=kill_a_busy_worker)
            killer.start()
            with dispatching(dispatcher):
                values = cached_map(rundir, {f"unit{i}": unit(i) for i in range(4)})
            killer.join()
    assert victim, "no worker was killed"
    assert values == {f"unit{i}": i * i for i in range(4)}
    assert sorted(p.stem for p in rundir.checkpoints.glob("*.pkl")) == [
        f"unit{i}" for i in range(4)
    ]


# A script run the way the ``elbolab`` console script runs: its ``__main__`` imports numba
# (through elbolab.cli), so every spawned worker re-imports numba before Dask applies the
# worker environment. The parent compiles the LDA kernels into a fresh cache; the worker
# then loads them from the cache (which starts numba's thread pool) and compiles the
# landscape kernels, which re-reads numba's environment. With NUMBA_NUM_THREADS in the
# worker environment this raised "Cannot set NUMBA_NUM_THREADS to a different value once
# the threads have been launched" (issue 12).
_COLD_CACHE_SCRIPT = """
import elbolab.cli  # noqa: F401
import numpy as np
from elbolab.cluster import make_dispatcher
from elbolab.data import lda_corpus
from elbolab.models import LDA

corpus, _, _ = lda_corpus(n_docs=40, n_words=30, n_topics=3, seed=0)


def unit():
    import numba
    import torch
    from elbolab.landscape import LDAObjective

    LDA(n_topics=3, n_restarts=1, max_iter=2, seed=0).fit(corpus)
    objective = LDAObjective(corpus, n_topics=3, alpha=0.1, eta=0.1)
    lam = np.random.default_rng(0).gamma(1.0, size=(3, 30)) + 0.1
    value = float(objective(objective.to_vector(lam)[None])[0])
    return numba.get_num_threads(), torch.get_num_threads(), value


if __name__ == "__main__":
    LDA(n_topics=3, n_restarts=1, max_iter=2, seed=0).fit(corpus)
    with make_dispatcher("local:1") as dispatcher:
        (_, (numba_threads, torch_threads, value), _), = dispatcher.map({"unit": unit})
    print(numba_threads, torch_threads, value)
"""


# Slow (about 35 s: every kernel compiles in a fresh worker); CI's cold-cache demo run
# compiles them in one process.
@pytest.mark.slow
def test_workers_compile_numba_kernels_with_a_cold_cache(tmp_path):
    script = tmp_path / "cold_cache.py"
    script.write_text(_COLD_CACHE_SCRIPT)
    env = {**os.environ, "NUMBA_CACHE_DIR": str(tmp_path / "numba-cache")}
    done = subprocess.run(
        [sys.executable, str(script)], env=env, capture_output=True, text=True, timeout=300
    )
    assert done.returncode == 0, done.stderr[-3000:]
    numba_threads, torch_threads, value = done.stdout.split()
    assert (numba_threads, torch_threads) == ("1", "1")  # one core per local worker
    assert float(value) < 0  # a finite ELBO of discrete data

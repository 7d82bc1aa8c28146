"""The GPU session's scripts on the CPU: ``benchmarks/gpu_check.py`` and
``benchmarks/vae_epoch.py``.

The main test runs ``gpu_check.py --quick --device cpu`` as the GPU machine would run
it: in a fresh interpreter, from the source tree (``PYTHONPATH=src``), with dask and
distributed made unimportable (the GPU machine has neither), a fresh numba cache, no
progress bars, on the real binarized MNIST.
"""

from __future__ import annotations

import importlib.util
import json
import math
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

REPO = Path(__file__).resolve().parents[1]
BENCHMARKS = REPO / "benchmarks"
SECTIONS = "abcde"

# Runs a script as __main__ with dask unimportable: ``python -c WRAPPER SCRIPT ARGS...``.
WRAPPER = (
    "import runpy, sys\n"
    "sys.modules['dask'] = None\n"
    "sys.modules['distributed'] = None\n"
    "sys.argv = sys.argv[1:]\n"
    "runpy.run_path(sys.argv[0], run_name='__main__')\n"
)


def _load(name: str):
    """A benchmarks/ script as a module (benchmarks/ is not a package)."""
    spec = importlib.util.spec_from_file_location(f"_bench_{name}", BENCHMARKS / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


@pytest.mark.slow
def test_gpu_check_quick_on_cpu_without_dask(real_data, tmp_path):
    root = real_data("binarized_mnist")
    out = tmp_path / "check.json"
    env = dict(os.environ)
    env.update(
        NUMBA_CACHE_DIR=str(tmp_path / "numba"),
        ELBOLAB_NO_PROGRESS="1",
        ELBOLAB_DATA=root,
        PYTHONPATH=os.pathsep.join(
            [str(REPO / "src"), *filter(None, [os.environ.get("PYTHONPATH")])]
        ),
    )
    # One torch thread: the 2-core test machine is shared, and spinning OpenMP threads
    # slow a contended run many times over.
    cmd = [
        sys.executable,
        "-c",
        WRAPPER,
        str(BENCHMARKS / "gpu_check.py"),
        "--quick",
        "--device",
        "cpu",
        "--threads",
        "1",
        "--json",
        str(out),
    ]
    proc = subprocess.run(
        cmd, cwd=REPO, env=env, capture_output=True, text=True, timeout=900, check=False
    )
    log = proc.stdout + proc.stderr
    assert proc.returncode == 0, log[-6000:]
    assert "dask             not importable" in proc.stdout, log[-3000:]
    for key in SECTIONS:
        assert f"-- ({key}) ok in " in proc.stdout, log[-6000:]
    assert "5 of 5 sections ok" in proc.stdout

    record = json.loads(out.read_text(encoding="utf-8"))
    assert record["ok"] and record["failed"] == []
    sec = record["sections"]
    assert set(sec) == set(SECTIONS) and all(s["ok"] for s in sec.values())
    assert sec["a"]["result"]["device"] == "cpu"
    b = sec["b"]["result"]
    assert b["n_train"] == 1000 and b["elbolab_median"] > 0 and b["plain_median"] > 0
    assert math.isfinite(b["ratio"])
    c = sec["c"]["result"]
    assert c["n"] == 2000 and c["mutual_info"] <= c["log_n"]
    assert c["average_kl"] == pytest.approx(c["average_kl_direct"], rel=1e-9)
    d = sec["d"]["result"]
    assert d["k"] == 50 and set(d["models"]) == {"vae", "vamp"}
    for m in d["models"].values():
        assert m["n_test"] == 200 and math.isfinite(m["test_nll"])
        # log p(x) >= ELBO up to Monte Carlo noise (k = 50 is far from 5000)
        assert m["test_nll"] <= m["test_neg_elbo"] + 3 * m["test_nll_se_mc"] + 1.0
    e = sec["e"]["result"]
    assert e["config"]["epochs"] == 1 and e["config"]["n_train"] == 1000
    assert len(e["models"]) == 6
    assert all(math.isfinite(m["test_nll"]) for m in e["models"].values())
    for name in e["models"]:
        assert f"  {name:<10} test NLL" in proc.stdout


def test_gpu_check_reports_every_failure_and_exits_nonzero(tiny_data, capsys, monkeypatch):
    """Asked for a GPU where there is none, every section fails, says why, and the
    script goes on to the next one and exits 1."""
    if torch.cuda.is_available():
        pytest.skip("this machine has a GPU")
    monkeypatch.setenv("ELBOLAB_NO_PROGRESS", "1")
    gpu_check = _load("gpu_check")
    code = gpu_check.main(["--quick", "--device", "cuda", "--data", str(tiny_data.root)])
    out = capsys.readouterr().out
    assert code == 1
    for key in SECTIONS:
        assert f"-- ({key}) FAILED in " in out
    assert out.count("ERROR ") == len(SECTIONS)
    assert "sees no GPU" in out
    assert "0 of 5 sections ok" in out


def test_vae_epoch_tiny_on_cpu(tiny_data, tmp_path, capsys, monkeypatch, one_torch_thread):
    monkeypatch.setenv("ELBOLAB_NO_PROGRESS", "1")
    vae_epoch = _load("vae_epoch")
    out = tmp_path / "epoch.json"
    argv = ["--data", str(tiny_data.root), "--n-train", "200", "--epochs", "2"]
    argv += ["--repeats", "2", "--json", str(out)]
    assert vae_epoch.main(argv) == 0
    text = capsys.readouterr().out
    assert "elbolab train" in text and "plain PyTorch" in text and "ratio elbolab / plain" in text
    res = json.loads(out.read_text(encoding="utf-8"))
    assert res["device"] == "cpu" and res["n_train"] == 200
    assert res["repeats"] == 2 and res["epochs_per_round"] == 2
    for key in ("elbolab", "plain"):
        runs = res[f"{key}_seconds_per_epoch"]
        assert len(runs) == 2 and all(s > 0 for s in runs)
        assert res[f"{key}_median"] == pytest.approx(sorted(runs)[0] / 2 + sorted(runs)[1] / 2)
        assert math.isfinite(res["final_train_loss"][key]) and res["final_train_loss"][key] > 0
    assert res["ratio"] == pytest.approx(res["elbolab_median"] / res["plain_median"])
    # The trainer ran both timed epochs of each round.
    assert [len(s) for s in res["trainer_epoch_seconds"]] == [2, 2]


def test_vae_epoch_plain_loss_is_the_negative_elbo(one_torch_thread):
    """The plain loop's loss is elbolab's negative ELBO for the same weights and noise."""
    from elbolab.models import VAE
    from elbolab.objectives import elbo

    vae_epoch = _load("vae_epoch")
    plain = vae_epoch.PlainVAE()
    ours = VAE(784, 20, hidden=(200, 200), activation="tanh", generator=0)
    with torch.no_grad():
        for a, b in zip(ours.encoder, plain.encoder, strict=True):
            if isinstance(a, torch.nn.Linear):
                b.weight.copy_(a.weight)
                b.bias.copy_(a.bias)
        for a, b in zip(ours.decoder, plain.decoder, strict=True):
            if isinstance(a, torch.nn.Linear):
                b.weight.copy_(a.weight)
                b.bias.copy_(a.bias)
    x = torch.bernoulli(torch.full((7, 784), 0.2), generator=torch.Generator().manual_seed(3))
    with torch.no_grad():
        want = -elbo(model=ours, x=x, generator=torch.Generator().manual_seed(5))["elbo"]
        got = plain.neg_elbo(x, torch.Generator().manual_seed(5)).sum()
    assert float(got) == pytest.approx(float(want), rel=1e-5)

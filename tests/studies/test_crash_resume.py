"""SIGKILL a study at several points, resume it, and get the uninterrupted numbers.

Each run is a separate ``python -m elbolab.cli`` process killed with SIGKILL (no
cleanup, no ``finally``) once its run directory has reached a given point; the same
command with ``--resume`` must then finish with a ``metrics.json`` equal, bit for bit
apart from timings, to that of a run that was never interrupted. Serial scheduler:
the kill points are checkpoints of the run's own process.

Every study runs on the tiny data root of ``conftest.py`` (so these tests always run);
one LDA kill point also runs on the AP mirror. The VAE studies train for a few epochs
with small minibatches so that a kill can land between two epochs of one model, after
its trainer has checkpointed (``checkpoints/MODEL_trainer/trainer.pt``) and before the
model is finished (``checkpoints/MODEL.pkl``).
"""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

pytestmark = pytest.mark.skipif(sys.platform == "win32", reason="SIGKILL is POSIX")

# --set overrides per study: a VAE trains for several epochs (the smoke preset has one),
# so that there is a "middle of training" to kill it in.
SETTINGS = {
    "lda": (),
    "landscape": (),
    "surgery": ("epochs=4", "batch_size=20"),
    "zoo": ("epochs=3", "iwae_epochs=3", "batch_size=20"),
    "linear": (),
    "fkl": (),
}


def _command(study: str, out: Path, root, *extra: str) -> list[str]:
    command = [
        sys.executable, "-m", "elbolab.cli", "run", study, "--preset", "smoke",
        "--scheduler", "serial", "--out", str(out), "--data", str(root),
    ]  # fmt: skip
    for setting in SETTINGS[study]:
        command += ["--set", setting]
    return command + list(extra)


def _env() -> dict:
    return {**os.environ, "ELBOLAB_NO_PROGRESS": "1"}


def _checkpoints(out: Path) -> int:
    folder = out / "checkpoints"
    return len(list(folder.glob("*.pkl"))) if folder.is_dir() else 0


def _kill_when(command: list[str], reached, timeout: float = 180.0) -> bool:
    """Start ``command``; SIGKILL it as soon as ``reached()`` holds. False if it
    finished first."""
    proc = subprocess.Popen(command, env=_env(), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    deadline = time.monotonic() + timeout
    try:
        while proc.poll() is None:
            if reached():
                proc.send_signal(signal.SIGKILL)
                proc.wait()
                return True
            if time.monotonic() > deadline:
                raise TimeoutError(f"{command} did not reach the kill point")
            time.sleep(0.005)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == 0, proc.stderr.read().decode()
    return False


def _timing_free(obj):
    """metrics without their timings: the ``timings`` block, and every ``*_seconds``
    value kept beside the results it belongs to (an LDA fit's, a VAE's training)."""
    if isinstance(obj, dict):
        return {
            k: _timing_free(v)
            for k, v in obj.items()
            if k != "timings" and not k.endswith("_seconds")
        }
    if isinstance(obj, list):
        return [_timing_free(v) for v in obj]
    return obj


def _metrics(out: Path) -> dict:
    return _timing_free(json.loads((out / "metrics.json").read_text()))


@pytest.fixture(scope="module")
def roots(tiny_data, real_data):
    return lambda data: tiny_data.root if data == "tiny" else real_data("ap")


@pytest.fixture(scope="module")
def reference(tmp_path_factory, roots):
    """``reference(study, data)``: the metrics of an uninterrupted run (computed once)."""
    runs = {}

    def get(study: str, data: str) -> dict:
        if (study, data) not in runs:
            out = tmp_path_factory.mktemp(f"{study}_{data}") / "clean"
            subprocess.run(
                _command(study, out, roots(data)), env=_env(), check=True, capture_output=True
            )
            runs[study, data] = _metrics(out)
        return runs[study, data]

    return get


def _trainer_epochs(out: Path, model: str) -> int:
    """Epochs in a model's trainer checkpoint (a torch file the trainer writes atomically)."""
    state = torch.load(
        out / "checkpoints" / f"{model}_trainer" / "trainer.pt", map_location="cpu",
        weights_only=True,
    )  # fmt: skip
    return len(state["history"]["train_loss"])


def _reached(out: Path, kind: str, arg):
    checkpoints = out / "checkpoints"
    if kind == "config":
        return (out / "config.json").exists
    if kind == "checkpoints":  # at least this many finished units or steps
        return lambda: _checkpoints(out) >= arg
    if kind == "unit":  # this unit finished
        return (checkpoints / f"{arg}.pkl").exists
    if kind == "training":  # this model has checkpointed an epoch and is not finished
        trainer = checkpoints / f"{arg}_trainer" / "trainer.pt"
        return lambda: trainer.exists() and not (checkpoints / f"{arg}.pkl").exists()
    raise ValueError(kind)


# name -> (study, data, what the run directory must show before the kill, its argument)
KILL_POINTS = {
    "lda: config written, nothing computed": ("lda", "tiny", "config", None),
    "lda: first restart checkpointed": ("lda", "tiny", "checkpoints", 1),
    "lda: every restart checkpointed": ("lda", "tiny", "checkpoints", 2),
    "lda on AP: first restart checkpointed": ("lda", "real", "checkpoints", 1),
    "landscape: config written": ("landscape", "tiny", "config", None),
    "landscape: fits done": ("landscape", "tiny", "checkpoints", 3),
    "landscape: some paths done": ("landscape", "tiny", "checkpoints", 6),
    "landscape: sweeps underway": ("landscape", "tiny", "checkpoints", 12),
    "surgery: config written": ("surgery", "tiny", "config", None),
    "surgery: first model mid-training": ("surgery", "tiny", "training", "d2"),
    "surgery: first model done, second mid-training": ("surgery", "tiny", "training", "d3"),
    "zoo: VAE mid-training": ("zoo", "tiny", "training", "vae"),
    "zoo: three models done": ("zoo", "tiny", "checkpoints", 3),
    "zoo: IWAE (warm-started from the VAE) mid-training": ("zoo", "tiny", "training", "iwae_k4"),
    "linear: config written": ("linear", "tiny", "config", None),
    "linear: parts 1-3 done": ("linear", "tiny", "unit", "part3"),
    "linear: part 4 underway": ("linear", "tiny", "unit", "part4_1"),
    "fkl: config written": ("fkl", "tiny", "config", None),
    "fkl: width runs done": ("fkl", "tiny", "unit", "width_16_seed1"),
    "fkl: clustering underway": ("fkl", "tiny", "unit", "cluster_fkl_natural"),
}
# The default run kills each study once, at its richest point (the most state to
# restore); the other points run with ``pytest -m slow``.
DEFAULT_POINTS = {
    "lda: first restart checkpointed",
    "landscape: sweeps underway",
    "surgery: first model done, second mid-training",
    "zoo: IWAE (warm-started from the VAE) mid-training",
    "linear: part 4 underway",
    "fkl: clustering underway",
}


def _params():
    for name in KILL_POINTS:
        marks = [] if name in DEFAULT_POINTS else [pytest.mark.slow]
        yield pytest.param(name, id=name, marks=marks)


@pytest.mark.parametrize("point", list(_params()))
def test_sigkill_then_resume_gives_the_uninterrupted_metrics(point, reference, roots, tmp_path):
    study, data, kind, arg = KILL_POINTS[point]
    root = roots(data)
    out = tmp_path / "run"
    killed = _kill_when(_command(study, out, root), _reached(out, kind, arg))
    assert killed, "the run finished before the kill point; the test no longer tests a kill"
    # Killed mid-run: nothing may look finished.
    assert not (out / "report.html").exists()
    if kind == "training":
        # Really in the middle of the training: some epochs saved, not all of them.
        epochs = {"surgery": 4, "zoo": 3}[study]
        assert 1 <= _trainer_epochs(out, arg) < epochs
        assert not (out / "checkpoints" / f"{arg}.pkl").exists()

    # Without --resume the directory is refused, and left as it was.
    before = sorted(p.name for p in out.rglob("*"))
    refused = subprocess.run(_command(study, out, root), env=_env(), capture_output=True, text=True)
    assert refused.returncode == 2 and "--resume" in refused.stderr
    assert sorted(p.name for p in out.rglob("*")) == before

    subprocess.run(
        _command(study, out, root, "--resume"), env=_env(), check=True, capture_output=True
    )
    assert _metrics(out) == reference(study, data)
    assert (out / "report.html").exists() and not (out / "checkpoints").exists()


# Slow (about 50 s): the single kill of every study above stays in the default run.
@pytest.mark.slow
def test_killed_twice_still_resumes(reference, roots, tmp_path):
    out = tmp_path / "run"
    root = roots("tiny")
    assert _kill_when(_command("landscape", out, root), lambda: _checkpoints(out) >= 4)
    seen = _checkpoints(out)
    assert _kill_when(
        _command("landscape", out, root, "--resume"), lambda: _checkpoints(out) >= seen + 3
    )
    subprocess.run(
        _command("landscape", out, root, "--resume"), env=_env(), check=True, capture_output=True
    )
    assert _metrics(out) == reference("landscape", "tiny")

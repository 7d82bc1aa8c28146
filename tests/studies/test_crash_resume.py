"""SIGKILL a study at several points, resume it, and get the uninterrupted numbers.

Each run is a separate ``python -m elbolab.cli`` process killed with SIGKILL (no
cleanup, no ``finally``) once its run directory has reached a given point; the same
command with ``--resume`` must then finish with a ``metrics.json`` equal, bit for bit
apart from timings, to that of a run that was never interrupted. Serial scheduler:
the kill points are checkpoints of the run's own process.
"""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

pytestmark = pytest.mark.skipif(sys.platform == "win32", reason="SIGKILL is POSIX")


def _data_root() -> str:
    root = os.environ.get("ELBOLAB_DATA")
    if not root or not (Path(root) / "ap" / "ap.dat").exists():
        pytest.skip("ELBOLAB_DATA does not point at the dataset mirror")
    return root


def _command(study: str, out: Path, *extra: str) -> list[str]:
    return [
        sys.executable, "-m", "elbolab.cli", "run", study, "--preset", "smoke",
        "--scheduler", "serial", "--out", str(out), *extra,
    ]  # fmt: skip


def _env() -> dict:
    return {**os.environ, "ELBOLAB_NO_PROGRESS": "1", "ELBOLAB_DATA": _data_root()}


def _checkpoints(out: Path) -> int:
    folder = out / "checkpoints"
    return len(list(folder.glob("*.pkl"))) if folder.is_dir() else 0


def _kill_when(command: list[str], reached, timeout: float = 120.0) -> bool:
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
    assert proc.returncode == 0, proc.stderr.read().decode()
    return False


def _metrics(out: Path) -> dict:
    metrics = json.loads((out / "metrics.json").read_text())
    return {k: v for k, v in metrics.items() if k != "timings"}


def _lda_fit_seconds_free(metrics: dict) -> dict:
    # fit_seconds is a timing kept beside the results it belongs to.
    for result in metrics.get("per_k", {}).values():
        result.pop("fit_seconds", None)
    return metrics


@pytest.fixture(scope="module")
def reference(tmp_path_factory):
    """Uninterrupted runs, one per study."""
    runs = {}
    for study in ("lda", "landscape"):
        out = tmp_path_factory.mktemp(study) / "clean"
        subprocess.run(_command(study, out), env=_env(), check=True, capture_output=True)
        runs[study] = _lda_fit_seconds_free(_metrics(out))
    return runs


# (study, what the run directory must show before the kill)
KILL_POINTS = {
    "lda: config written, nothing computed": ("lda", "config", 0),
    "lda: first restart checkpointed": ("lda", "checkpoints", 1),
    "lda: every restart checkpointed": ("lda", "checkpoints", 2),
    "landscape: config written": ("landscape", "config", 0),
    "landscape: fits done": ("landscape", "checkpoints", 3),
    "landscape: some paths done": ("landscape", "checkpoints", 6),
    "landscape: sweeps underway": ("landscape", "checkpoints", 12),
}


@pytest.mark.parametrize("point", KILL_POINTS)
def test_sigkill_then_resume_gives_the_uninterrupted_metrics(point, reference, tmp_path):
    study, kind, count = KILL_POINTS[point]
    out = tmp_path / "run"
    if kind == "config":
        reached = (out / "config.json").exists
    else:
        reached = lambda: _checkpoints(out) >= count  # noqa: E731
    killed = _kill_when(_command(study, out), reached)
    assert killed, "the run finished before the kill point; the test no longer tests a kill"
    # Killed mid-run: nothing may look finished.
    assert not (out / "metrics.json").exists() or not (out / "report.html").exists()
    assert not (out / "report.html").exists()

    # Without --resume the directory is refused, and left as it was.
    before = sorted(p.name for p in out.rglob("*"))
    refused = subprocess.run(_command(study, out), env=_env(), capture_output=True, text=True)
    assert refused.returncode == 2 and "--resume" in refused.stderr
    assert sorted(p.name for p in out.rglob("*")) == before

    subprocess.run(_command(study, out, "--resume"), env=_env(), check=True, capture_output=True)
    assert _lda_fit_seconds_free(_metrics(out)) == reference[study]
    assert (out / "report.html").exists() and not (out / "checkpoints").exists()


def test_killed_twice_still_resumes(reference, tmp_path):
    out = tmp_path / "run"
    assert _kill_when(_command("landscape", out), lambda: _checkpoints(out) >= 4)
    seen = _checkpoints(out)
    assert _kill_when(_command("landscape", out, "--resume"), lambda: _checkpoints(out) >= seen + 3)
    subprocess.run(
        _command("landscape", out, "--resume"), env=_env(), check=True, capture_output=True
    )
    assert _metrics(out) == reference["landscape"]

"""The ``landscape`` study end to end with its smoke preset on the AP mirror."""

import json
import os
from pathlib import Path

import numpy as np
import pytest

from elbolab import cli
from elbolab.studies import landscape

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def _data_root():
    root = os.environ.get("ELBOLAB_DATA")
    if not root or not (Path(root) / "ap" / "ap.dat").exists():
        pytest.skip("ELBOLAB_DATA does not point at the dataset mirror")
    return root


@pytest.fixture(scope="module")
def smoke_run(tmp_path_factory):
    _data_root()
    out = tmp_path_factory.mktemp("landscape") / "run"
    assert cli.main(["run", "landscape", "--preset", "smoke", "--out", str(out)]) == 0
    return out, json.loads((out / "metrics.json").read_text())


def _without_timings(metrics):
    metrics = dict(metrics)
    metrics.pop("timings")
    return metrics


def test_metrics_carry_every_barrier_and_the_alignment(smoke_run):
    _, m = smoke_run
    keys = {
        "linear_unaligned",
        "linear_aligned",
        "neb_profile",
        "autoneb",
        "bezier",
        "linear_aligned_full",
        "neb_full",
    }
    assert set(m["barrier"]) == keys
    assert all(v >= 0 and np.isfinite(v) for v in m["barrier"].values())
    k = landscape.PRESETS["smoke"].n_topics
    assert sorted(m["alignment"]["permutation"]) == list(range(k))
    assert m["endpoints"]["a"] != m["endpoints"]["b"]
    # The profile ELBO at a fitted lambda and the full ELBO at (lambda, E-step gamma,
    # optimal phi) are the same number.
    assert m["endpoints"]["elbo_a"] == pytest.approx(m["endpoints"]["elbo_full_a"], rel=1e-9)
    n_pivots = landscape.PRESETS["smoke"].n_pivots
    for split in ("test", "train"):
        scores = m["reading"]["heldout_per_token"][split]
        assert len(scores["neb"]) == len(scores["linear"]) == n_pivots
        # Both paths start and end at the same maxima.
        assert scores["neb"][0] == pytest.approx(scores["linear"][0])
        assert scores["neb"][-1] == pytest.approx(scores["linear"][-1])
    assert set(m["sweeps"]) == {"lr", "pivots", "spring", "topics"}
    assert all(
        p["finite"] for name in ("lr", "pivots", "spring") for p in m["sweeps"][name].values()
    )


def test_paths_keep_their_endpoints(smoke_run):
    _, m = smoke_run
    for name in ("neb_profile", "autoneb", "bezier"):
        path = m["paths"][name]
        assert path["f_a"] == m["endpoints"]["elbo_a"]
        assert path["f_b"] == m["endpoints"]["elbo_b"]


def test_report_has_every_figure(smoke_run):
    out, _ = smoke_run
    html = (out / "report.html").read_text()
    names = (
        "fits_alignment",
        "elbo_along_paths",
        "path_optimization",
        "planes",
        "heldout_along_path",
        "sweeps",
        "sweep_topics",
    )
    for name in names:
        assert (out / "figures" / f"{name}.png").is_file()
    assert html.count("data:image/png;base64") == len(names)


def test_an_interrupted_run_resumes_to_the_same_numbers(smoke_run, tmp_path, monkeypatch):
    _, uninterrupted = smoke_run
    out = tmp_path / "run"
    real = landscape._plane

    def crash(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(landscape, "_plane", crash)
    assert cli.main(["run", "landscape", "--preset", "smoke", "--out", str(out)]) != 0
    assert not (out / "metrics.json").exists()
    assert (out / "checkpoints" / "neb_profile.pkl").exists()

    monkeypatch.setattr(landscape, "_plane", real)
    assert cli.main(["run", "landscape", "--preset", "smoke", "--out", str(out), "--resume"]) == 0
    resumed = json.loads((out / "metrics.json").read_text())
    assert _without_timings(resumed) == _without_timings(uninterrupted)

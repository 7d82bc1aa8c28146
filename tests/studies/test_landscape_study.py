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
    args = ["run", "landscape", "--preset", "smoke", "--out", str(out), "--scheduler", "serial"]
    assert cli.main(args) == 0
    return out, json.loads((out / "metrics.json").read_text())


def _without_timings(metrics):
    return {k: v for k, v in metrics.items() if k not in ("timings", "scheduler")}


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


def test_a_local_cluster_gives_the_serial_numbers(smoke_run, tmp_path):
    _, serial = smoke_run
    out = tmp_path / "run"
    args = ["run", "landscape", "--preset", "smoke", "--out", str(out), "--scheduler", "local:2"]
    assert cli.main(args) == 0
    on_cluster = json.loads((out / "metrics.json").read_text())
    assert on_cluster["scheduler"].startswith("local Dask cluster, 2 workers")
    # Numba's parallel reductions in the full-mode objective sum in an order that depends
    # on the worker's threads: equal to ~1e-15 relative, not always bit for bit.
    got, want = _flatten(_without_timings(on_cluster)), _flatten(_without_timings(serial))
    assert got.keys() == want.keys()
    for key, value in want.items():
        if isinstance(value, float):
            assert got[key] == pytest.approx(value, rel=1e-12, abs=1e-12), key
        else:
            assert got[key] == value, key


def _flatten(obj, prefix=""):
    if isinstance(obj, dict):
        return {k: v for key in obj for k, v in _flatten(obj[key], f"{prefix}.{key}").items()}
    if isinstance(obj, list):
        return {k: v for i, x in enumerate(obj) for k, v in _flatten(x, f"{prefix}[{i}]").items()}
    return {prefix: obj}

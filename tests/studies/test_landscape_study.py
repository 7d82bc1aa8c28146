"""The ``landscape`` study end to end with its smoke preset, on a tiny corpus drawn from
known topics (always) and on the AP mirror."""

import json

import numpy as np
import pytest
import torch

from elbolab import cli
from elbolab.diagnostics import topic_coherence
from elbolab.landscape import LDAObjective
from elbolab.studies import landscape
from elbolab.studies.landscape.paths import peak_point

pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture(scope="module", params=["tiny", "real"])
def data_root(request, tiny_data, real_data):
    return tiny_data.root if request.param == "tiny" else real_data("ap")


@pytest.fixture(scope="module")
def smoke_run(request, smoke_runs, data_root, tiny_data):
    return smoke_runs("landscape", "tiny" if data_root == tiny_data.root else "real")


def _without_timings(metrics):
    return {k: v for k, v in metrics.items() if k not in ("timings", "scheduler")}


def test_metrics_carry_every_barrier_and_the_alignment(smoke_run, assert_finite):
    _, m = smoke_run
    assert_finite(m)
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
    assert all(v >= 0 for v in m["barrier"].values())
    k = landscape.PRESETS["smoke"].n_topics
    assert sorted(m["alignment"]["permutation"]) == list(range(k))
    assert m["endpoints"]["a"] != m["endpoints"]["b"]
    # a is the best maximum, b the best distinct other one.
    profile = m["endpoints"]["profile_elbo_restarts"]
    assert m["endpoints"]["a"] == int(np.argmax(profile))
    assert m["endpoints"]["elbo_a"] >= m["endpoints"]["elbo_b"]
    for kk, point in m["sweeps"]["topics"].items():
        assert point["elbo_a"] >= point["elbo_b"], kk
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


def test_paths_keep_their_endpoints(smoke_run, data_root):
    out, m = smoke_run
    ends = m["endpoints"]
    a, b = ends["a"], ends["b"]
    # The maxima's profile ELBOs as _choose_pair evaluated them on the fitted lambdas,
    # before any path existed (b unaligned: the ELBO does not depend on topic labels).
    at_fit = ends["profile_elbo_restarts"]
    for name in ("neb_profile", "autoneb", "bezier"):
        path = m["paths"][name]
        assert path["f_a"] == pytest.approx(at_fit[a], rel=1e-10), name
        assert path["f_b"] == pytest.approx(at_fit[b], rel=1e-10), name
    # Evaluate the saved NEB path's end pivots afresh: they are still the two maxima.
    cfg = landscape.PRESETS["smoke"]
    train = landscape.prepare(cfg, data_root)["train"]
    obj = LDAObjective(train, cfg.n_topics, m["fit"]["alpha"], m["fit"]["eta"], mode="profile")
    pivots = np.load(out / "arrays.npz")["neb_profile_pivots"]
    assert pivots.shape[0] == cfg.n_pivots
    with torch.no_grad():
        values = obj(torch.from_numpy(pivots[[0, -1]])).numpy()
    np.testing.assert_allclose(values, [at_fit[a], at_fit[b]], rtol=1e-10)
    # The profile ELBO maximizes over the local parameters at the fitted lambda, so it is
    # at least the fit's own final ELBO, and close to it at a CAVI fixed point.
    for r in (a, b):
        fit_elbo = m["fit"]["elbo_restarts"][r]
        assert fit_elbo <= at_fit[r] + 1e-9 * abs(at_fit[r])
        assert at_fit[r] - fit_elbo <= 1e-3 * abs(at_fit[r])
    # Word counts are discrete: every ELBO is below log p(w) <= 0.
    assert max(at_fit) < 0 and max(m["fit"]["elbo_restarts"]) < 0


def test_coherence_along_the_path_is_that_of_the_pivots_topics(smoke_run, data_root):
    out, m = smoke_run
    cfg = landscape.PRESETS["smoke"]
    coh = m["coherence"]
    assert coh["top_n"] == cfg.top_words
    arrays = np.load(out / "arrays.npz")
    train = landscape.prepare(cfg, data_root)["train"]
    # The NEB pivots' topics rescored here: lambda is the exp of a pivot's first K*V entries.
    pivots = arrays["neb_profile_pivots"]
    lam = np.exp(pivots[:, : cfg.n_topics * train.n_words]).reshape(len(pivots), cfg.n_topics, -1)
    for measure in ("umass", "npmi"):
        want = [
            topic_coherence(t, train, measure=measure, top_n=cfg.top_words).per_topic for t in lam
        ]
        np.testing.assert_allclose(arrays[f"coherence_neb_{measure}"], want, rtol=0, atol=1e-12)
        means = np.mean(want, axis=1)
        assert coh["neb"][f"{measure}_mean"] == pytest.approx(means.tolist(), abs=1e-12)
        # The straight line joins the same endpoints: the same topics there.
        line = coh["linear"][f"{measure}_mean"]
        assert len(line) == cfg.n_pivots
        assert [line[0], line[-1]] == pytest.approx([means[0], means[-1]], abs=1e-9)
    tokens = m["data"]["n_train_tokens"]
    np.testing.assert_allclose(
        coh["neb"]["elbo_per_token"], arrays["neb_profile_values"] / tokens, rtol=1e-12
    )
    ends = [m["endpoints"]["elbo_a"] / tokens, m["endpoints"]["elbo_b"] / tokens]
    assert [coh["linear"]["elbo_per_token"][i] for i in (0, -1)] == pytest.approx(ends, rel=1e-9)


def test_barriers_follow_from_the_values_along_each_path(smoke_run):
    out, m = smoke_run
    arrays = np.load(out / "arrays.npz")
    for name in ("neb_profile", "autoneb", "bezier", "neb_full"):
        path = m["paths"][name]
        want = max(0.0, min(path["f_a"], path["f_b"]) - path["bottleneck"])
        assert m["barrier"][name] == pytest.approx(want, abs=1e-9), name
        dense = arrays[f"{name}_dense_values"]
        assert dense.min() == pytest.approx(path["bottleneck"], rel=1e-12), name
        assert dense[0] == pytest.approx(path["f_a"], rel=1e-10), name
        assert dense[-1] == pytest.approx(path["f_b"], rel=1e-10), name
    for name in ("linear_unaligned", "linear_aligned", "linear_aligned_full"):
        dense = arrays[f"{name}_dense_values"]
        want = max(0.0, min(dense[0], dense[-1]) - dense.min())
        assert m["barrier"][name] == pytest.approx(want, abs=1e-9), name
    # The straight lines start at maximum a; the aligned one ends at b's profile value.
    at_fit = m["endpoints"]["profile_elbo_restarts"]
    for name in ("linear_unaligned", "linear_aligned"):
        assert arrays[f"{name}_dense_values"][0] == pytest.approx(at_fit[m["endpoints"]["a"]])
        assert arrays[f"{name}_dense_values"][-1] == pytest.approx(at_fit[m["endpoints"]["b"]])
    tokens = m["data"]["n_train_tokens"]
    for name, value in m["barrier"].items():
        assert m["barrier_per_token"][name] == pytest.approx(value / tokens)


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
        "polish",
        "coherence_along_path",
    )
    for name in names:
        assert (out / "figures" / f"{name}.png").is_file()
    assert html.count("data:image/png;base64") == len(names)


def test_polish_records_follow_from_the_pairs_and_paths(smoke_run):
    _, m = smoke_run
    cfg = landscape.PRESETS["smoke"]
    pol = m["polish"]
    rows = pol["pairs"]
    assert len(rows) == cfg.polish_pairs
    # The chosen pair comes first, every pair once, a the higher maximum of its pair.
    ends = m["endpoints"]
    assert (rows[0]["a"], rows[0]["b"]) == (ends["a"], ends["b"])
    assert len({frozenset((r["a"], r["b"])) for r in rows}) == len(rows)
    at_fit = ends["profile_elbo_restarts"]
    for r in rows:
        p, base = r["polished"], r["baseline"]
        assert at_fit[r["a"]] >= at_fit[r["b"]]
        assert p["elbo_a"] == pytest.approx(at_fit[r["a"]], rel=1e-10)
        assert p["elbo_b"] == pytest.approx(at_fit[r["b"]], rel=1e-10)
        # The baseline spends exactly the polish's CAVI iterations.
        assert sum(base["n_iters"]) == p["n_iter"]
        assert base["elbo"] == max(base["elbos"])
        # CAVI does not go down from where it started (up to the E-step tolerance).
        assert p["elbo"] >= p["elbo_start"] - 1e-6 * abs(p["elbo_start"])
        assert p["gain"] == pytest.approx(p["elbo"] - max(p["elbo_a"], p["elbo_b"]))
        assert r["gain_over_best_fitted_restart"] == pytest.approx(p["elbo"] - max(at_fit))
        assert r["path"]["timings"]["cavi_iterations_equivalent"] == pytest.approx(
            r["path"]["wall_seconds"] / pol["timings"]["cavi_iteration_seconds"]
        )
        near = min(p["distance_a"], p["distance_b"])
        assert (p["identity"] == "new") == (near > pol["same_max"])
    # Pair 0 is polished from the NEB path above; its first point is that path's peak,
    # and in profile mode the path's own value there is the starting profile ELBO.
    assert pol["paths"]["neb_profile"]["elbo"] == rows[0]["polished"]["elbo"]
    for name in ("neb_profile", "autoneb", "bezier"):
        path = pol["paths"][name]
        assert path["elbo_start"] == pytest.approx(path["peak_value"], rel=1e-9), name
    # Full mode: the profile ELBO re-optimizes gamma and phi, so it is not lower.
    full = pol["paths"]["neb_full"]
    assert full["elbo_start"] >= full["peak_value"] - 1e-9 * abs(full["peak_value"])
    n_new = sum(r["polished"]["identity"] == "new" and r["polished"]["gain"] > 0 for r in rows)
    assert pol["n_new_above_both"] == n_new
    assert rows[0]["path"]["wall_seconds"] == m["timings"]["neb_profile_seconds"]
    assert pol["fitted_restarts_iterations"] == sum(m["fit"]["n_iter"])
    # The claims table's verdicts come from these numbers.
    verdicts = [c["verdict"] for c in m["claims"]]
    assert len(verdicts) == 3
    removed = m["barrier_removed_fraction"]
    assert (verdicts[1] == "holds") == (min(removed.values()) >= 0.95)


def test_peak_point_is_the_highest_dense_point():
    from elbolab.landscape import Band, Optimizer, bezier, neb

    # A quadratic hill off the straight line between a and b: NEB and Bezier bend toward
    # it, and their highest point lies strictly inside the path.
    c = torch.tensor([0.3, 1.0], dtype=torch.float64)

    def f(x):
        return -((x - c) ** 2).sum(-1)

    a = torch.tensor([-1.0, 0.0], dtype=torch.float64)
    b = torch.tensor([1.0, 0.0], dtype=torch.float64)
    for result in (
        neb(f, a, b, n_pivots=5, steps=5, optimizer=Optimizer(lr=0.05), band=Band(climbing=False)),
        bezier(f, a, b, degree=2, steps=5, optimizer=Optimizer(lr=0.05), n_t=4, n_pivots=5),
    ):
        i = int(result.dense_values.argmax())
        assert 0 < i < result.dense_values.shape[0] - 1
        point = peak_point(result)
        assert f(point).item() == pytest.approx(result.dense_values.max().item(), rel=1e-12)


def test_a_local_cluster_gives_the_serial_numbers(smoke_runs, real_data, tmp_path):
    # On the mirror only: a local cluster costs its start-up on top of the run.
    root = real_data("ap")
    _, serial = smoke_runs("landscape", "real")
    out = tmp_path / "run"
    args = ["run", "landscape", "--preset", "smoke", "--out", str(out), "--data", str(root)]
    args += ["--scheduler", "local:2"]
    assert cli.main(args) == 0
    on_cluster = json.loads((out / "metrics.json").read_text())
    assert on_cluster["scheduler"].startswith("local Dask cluster, 2 workers")
    # Numba's parallel reductions in the full-mode objective sum in an order that depends
    # on the worker's threads: equal to ~1e-15 relative, not always bit for bit.
    got, want = _flatten(_without_timings(on_cluster)), _flatten(_without_timings(serial))
    assert got.keys() == want.keys()
    for key, value in want.items():
        if _is_wall_time(key):
            continue
        if isinstance(value, float):
            assert got[key] == pytest.approx(value, rel=1e-12, abs=1e-12), key
        else:
            assert got[key] == value, key


def _is_wall_time(key: str) -> bool:
    # The polish records carry wall times (and a path's cost in CAVI iterations, derived
    # from them) beside the numbers; those differ between any two runs.
    last = key.rsplit(".", 1)[-1]
    return "seconds" in last or last == "cavi_iterations_equivalent"


def _flatten(obj, prefix=""):
    if isinstance(obj, dict):
        return {k: v for key in obj for k, v in _flatten(obj[key], f"{prefix}.{key}").items()}
    if isinstance(obj, list):
        return {k: v for i, x in enumerate(obj) for k, v in _flatten(x, f"{prefix}[{i}]").items()}
    return {prefix: obj}

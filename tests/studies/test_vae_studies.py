"""The ``surgery`` and ``zoo`` studies end to end with their smoke presets on binarized MNIST."""

import json
import math
import os
from pathlib import Path

import pytest

from elbolab import cli

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def _run(study, tmp_path_factory):
    root = os.environ.get("ELBOLAB_DATA")
    if not root or not (Path(root) / "binarized_mnist").is_dir():
        pytest.skip("ELBOLAB_DATA does not point at the dataset mirror")
    out = tmp_path_factory.mktemp(study) / "run"
    assert (
        cli.main(["run", study, "--preset", "smoke", "--out", str(out), "--scheduler", "serial"])
        == 0
    )
    return out, json.loads((out / "metrics.json").read_text())


@pytest.fixture(scope="module")
def surgery_run(tmp_path_factory):
    return _run("surgery", tmp_path_factory)


@pytest.fixture(scope="module")
def zoo_run(tmp_path_factory):
    return _run("zoo", tmp_path_factory)


def _check_surgery_terms(r, n_train):
    assert r["log_n"] == pytest.approx(math.log(n_train))
    assert 0.0 <= r["mutual_information"] <= r["log_n"]
    assert r["marginal_kl"] >= -4 * r["marginal_kl_se"]
    # Average KL (closed form) = I(n; z) + marginal KL (Monte Carlo) within the MC error.
    se = math.hypot(r["mutual_information_se"], r["marginal_kl_se"])
    assert abs(r["average_kl"] - r["mutual_information"] - r["marginal_kl"]) <= 4 * se + 1e-9
    assert r["train_elbo"] == pytest.approx(r["reconstruction"] - r["average_kl"])


def test_surgery_metrics_per_latent_size(surgery_run):
    out, m = surgery_run
    assert set(m["surgery"]) == {"2", "3"}
    for d, r in m["surgery"].items():
        for key in ("reconstruction", "mutual_information", "marginal_kl", "average_kl", "log_n"):
            assert isinstance(r[key], float)
        for key in ("reconstruction", "mutual_information", "marginal_kl", "average_kl"):
            assert f"{key}_se" in r
        _check_surgery_terms(r, m["data"]["n_train"])
        assert 0 <= r["active_units"] <= int(d)
        # A bound: on the same images the importance-sampled log p(x) is at least the
        # ELBO, up to the Monte Carlo error of both.
        assert r["test_nll"] <= -r["test_elbo_nll_subset"] + 4 * r["test_nll_se_mc"] + 0.5
    for name in ("surgery_terms", "training_and_kl_per_dimension"):
        assert (out / "figures" / f"{name}.png").is_file()


def test_zoo_table_has_every_model(zoo_run):
    out, m = zoo_run
    assert set(m["zoo"]) == {"vae", "beta_2", "iwae_k4", "vamp"}
    for r in m["zoo"].values():
        for key in (
            "test_nll",
            "test_elbo",
            "kl",
            "mutual_information",
            "marginal_kl",
            "active_units",
        ):
            assert key in r
        _check_surgery_terms(r, m["data"]["n_train"])
    assert m["zoo"]["vae"]["published_test_nll"] == 89.9
    assert m["zoo"]["vamp"]["published_test_nll"] == 85.57
    html = (out / "report.html").read_text()
    assert html.count("data:image/png;base64") == 2

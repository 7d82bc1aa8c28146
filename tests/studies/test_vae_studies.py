"""The ``surgery`` and ``zoo`` studies end to end with their smoke presets, on tiny
synthetic binary images (always) and on binarized MNIST (the mirror)."""

import math

import numpy as np
import pytest

from elbolab.studies import surgery, zoo

pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture(scope="module", params=["tiny", "real"])
def data(request):
    return request.param


@pytest.fixture(scope="module")
def surgery_run(smoke_runs, data):
    return smoke_runs("surgery", data)


@pytest.fixture(scope="module")
def zoo_run(smoke_runs, data):
    return smoke_runs("zoo", data)


def _check_surgery_terms(r, n_train):
    assert r["log_n"] == pytest.approx(math.log(n_train))
    assert 0.0 <= r["mutual_information"] <= r["log_n"]
    assert r["marginal_kl"] >= -4 * r["marginal_kl_se"]
    # Average KL (closed form) = I(n; z) + marginal KL (Monte Carlo) within the MC error.
    se = math.hypot(r["mutual_information_se"], r["marginal_kl_se"])
    assert abs(r["average_kl"] - r["mutual_information"] - r["marginal_kl"]) <= 4 * se + 1e-9
    assert r["train_elbo"] == pytest.approx(r["reconstruction"] - r["average_kl"])


def _check_bounds(r, epochs, normal_prior=True):
    """What holds for any trained VAE on binary images (nats per datum)."""
    # Binary pixels: p(x) <= 1, so every ELBO and log-likelihood is <= 0.
    for key in ("test_elbo", "test_reconstruction", "test_elbo_nll_subset", "train_elbo"):
        assert r[key] <= 0, key
    assert r["test_nll"] >= 0
    assert r["test_elbo"] == pytest.approx(r["test_reconstruction"] - r["test_kl"], rel=1e-5)
    if normal_prior:  # closed-form KL to N(0, I); a VampPrior's is a one-sample estimate
        assert r["test_kl"] >= 0 and r["average_kl"] >= 0
    # Importance sampling on the same images: log p(x) estimate >= ELBO (k = nll_k >= 1),
    # up to the Monte Carlo error of the estimate.
    assert -r["test_nll"] >= r["test_elbo_nll_subset"] - 4 * r["test_nll_se_mc"] - 1e-6
    assert 0 < r["nll_n"] <= 50 and r["nll_k"] == 20
    assert r["epochs_run"] == epochs and 0 <= r["best_epoch"] < epochs


def test_surgery_metrics_per_latent_size(surgery_run, assert_finite):
    out, m = surgery_run
    assert_finite(m)
    cfg = surgery.PRESETS["smoke"]
    assert m["data"]["n_train"] == cfg.n_train
    assert set(m["surgery"]) == {"2", "3"}
    arrays = np.load(out / "arrays.npz")
    for d, r in m["surgery"].items():
        for key in ("reconstruction", "mutual_information", "marginal_kl", "average_kl", "log_n"):
            assert isinstance(r[key], float)
        for key in ("reconstruction", "mutual_information", "marginal_kl", "average_kl"):
            assert f"{key}_se" in r
        _check_surgery_terms(r, m["data"]["n_train"])
        _check_bounds(r, cfg.epochs)
        assert 0 <= r["active_units"] <= int(d)
        # The KL per latent dimension (saved array) adds up to the average KL.
        kl_dims = arrays[f"kl_per_dimension_d{d}"]
        assert kl_dims.shape == (int(d),) and (kl_dims >= 0).all()
        assert kl_dims.sum() == pytest.approx(r["average_kl"], rel=1e-6)
        assert len(arrays[f"valid_loss_d{d}"]) == r["epochs_run"]
    for name in ("surgery_terms", "training_and_kl_per_dimension"):
        assert (out / "figures" / f"{name}.png").is_file()
    assert (out / "report.html").read_text().count("data:image/png;base64") == 2


def test_zoo_table_has_every_model(zoo_run, assert_finite):
    out, m = zoo_run
    assert_finite(m)
    cfg = zoo.PRESETS["smoke"]
    assert set(m["zoo"]) == {"vae", "beta_2", "iwae_k4", "vamp"}
    arrays = np.load(out / "arrays.npz")
    for name, r in m["zoo"].items():
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
        epochs = cfg.iwae_epochs if name.startswith("iwae") else cfg.epochs
        _check_bounds(r, epochs, normal_prior=name != "vamp")
        assert 0 <= r["active_units"] <= cfg.latent
        assert r["kl"] == r["test_kl"]
        if name != "vamp":
            kl_dims = arrays[f"kl_per_dimension_{name}"]
            assert kl_dims.sum() == pytest.approx(r["average_kl"], rel=1e-6)
    assert m["zoo"]["vae"]["published_test_nll"] == 89.9
    assert m["zoo"]["vamp"]["published_test_nll"] == 85.57
    html = (out / "report.html").read_text()
    assert html.count("data:image/png;base64") == 2


def test_one_model_gives_the_same_numbers_in_both_studies(surgery_run, zoo_run):
    # zoo's VAE and surgery's d = 3 share architecture, seed, data and training settings.
    assert zoo.PRESETS["smoke"].latent == 3 and 3 in surgery.PRESETS["smoke"].latents
    in_zoo, in_surgery = zoo_run[1]["zoo"]["vae"], surgery_run[1]["surgery"]["3"]
    for key, value in in_surgery.items():
        if not key.endswith("_seconds"):
            assert in_zoo[key] == value, key
